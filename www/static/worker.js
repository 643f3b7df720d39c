// Demo worker: starts the WebAssembly module, loads the model, and runs the
// page's requests off the main thread, one at a time. The page starts one
// such worker for the whole visit, which downloads the model once into the
// Cache API, and, while it embeds the gallery, a few more that load the
// model from that cache only. Each worker runs its own instance of the
// module with its own copy of the model. The module is m3ae-simd.wasm, whose
// kernels use WebAssembly SIMD, where the engine supports SIMD and the
// server has that file, and m3ae.wasm otherwise. Both give the same bits.
//
// Messages from the page:
//   {type: "load", cacheOnly?}: read model.json, take the model from the
//     cache or download it, and load it. With cacheOnly true a model that
//     is missing from the cache fails the load instead of downloading.
//   {type: "call", id, method: "embed" | "reconstruct" | "attention",
//     options}: call m3ae[method](handle, options).
//   {type: "call", id, method: "ood", options}: call m3ae.ood(options),
//     which needs no model.
// Messages to the page:
//   {type: "status", text}
//   {type: "progress", loaded, total}: model download, in bytes.
//   {type: "loaded", name, bytes, source: "cache" | "network", cached,
//     millis, config, module: "m3ae-simd.wasm" | "m3ae.wasm"}
//   {type: "failed", stage: "module" | "model" | "exited", message}: the
//     module did not start, the model did not load, or the Go program
//     exited after it started (for example when it ran out of memory), in
//     which case every later call fails too.
//   {type: "result", id, value, millis} or {type: "result", id, error}
"use strict";

importScripts("wasm_exec.js");

// MODEL_CACHE is the Cache API cache that stores model files, keyed by their
// content-addressed URL, so a new model never hits an old entry.
const MODEL_CACHE = "m3ae-models";
// PROGRESS_INTERVAL_MS spaces out progress messages during a download.
const PROGRESS_INTERVAL_MS = 100;

// MODEL_FREE_METHODS are the module's functions that take no model handle.
const MODEL_FREE_METHODS = new Set(["ood"]);

// SIMD_PROBE is a module whose one function runs i8x16.splat, a SIMD
// instruction, so WebAssembly.validate accepts it only in an engine with
// WebAssembly SIMD.
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, // code section: one body, no locals
  0x41, 0x00, 0xfd, 0x0f, 0x0b, // i32.const 0, i8x16.splat, end
]);

// moduleFiles returns the builds of the module to try, fastest first.
function moduleFiles() {
  let simd = false;
  try {
    simd = WebAssembly.validate(SIMD_PROBE);
  } catch (err) {
    simd = false;
  }
  return simd ? ["m3ae-simd.wasm", "m3ae.wasm"] : ["m3ae.wasm"];
}

let handle = null;
let moduleFile = null;
// exitReason is null while the Go program runs, and the reason for its
// exit once it has exited.
let exitReason = null;
// inFlight contains the ids of the calls that have not posted a result,
// so that an exit can fail them instead of leaving the page waiting.
const inFlight = new Set();

const moduleReady = (async () => {
  post({ type: "status", text: "Starting the WebAssembly module…" });
  const go = new Go();
  const failures = [];
  let instance = null;
  for (const file of moduleFiles()) {
    try {
      instance = await instantiate(file, go.importObject);
      moduleFile = file;
      break;
    } catch (err) {
      // A site built without the SIMD module returns 404 for it, and an
      // offline page has only the files that it fetched before.
      failures.push(errorText(err));
    }
  }
  if (instance === null) {
    throw new Error(failures.join("; "));
  }
  if (failures.length > 0) {
    console.info(`m3ae: ${failures.join("; ")}; running ${moduleFile} instead.`);
  }
  // go.run defines globalThis.m3ae before it returns its promise, which
  // settles when the Go program exits.
  go.run(instance).then(
    () => moduleExited(`${moduleFile} exited`),
    (err) => moduleExited(`${moduleFile} failed: ${errorText(err)}`));
  if (!globalThis.m3ae) {
    throw new Error(`${moduleFile} did not define globalThis.m3ae`);
  }
})();

// instantiate fetches and compiles one build of the module.
async function instantiate(file, importObject) {
  const response = await fetch(file);
  if (!response.ok) {
    throw new Error(`${file}: HTTP ${response.status} ${response.statusText}`);
  }
  const { instance } = await WebAssembly.instantiateStreaming(response, importObject);
  return instance;
}

// moduleExited fails the calls in flight, since their promises never
// settle once the Go program has exited, and posts a failed message.
function moduleExited(reason) {
  if (exitReason !== null) {
    return;
  }
  exitReason = reason;
  handle = null;
  for (const id of inFlight) {
    post({ type: "result", id, error: `The WebAssembly module stopped during this call: ${reason}.` });
  }
  inFlight.clear();
  post({ type: "failed", stage: "exited", message: `The WebAssembly module stopped (${reason}), for example because it ran out of memory. Reload the page.` });
}

function post(message, transfer) {
  self.postMessage(message, transfer || []);
}

function errorText(err) {
  return err && err.message ? err.message : String(err);
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "load") {
    await loadModel(message.cacheOnly === true);
  } else if (message.type === "call") {
    await call(message);
  }
};

async function loadModel(cacheOnly) {
  try {
    await moduleReady;
  } catch (err) {
    post({ type: "failed", stage: "module", message: `The WebAssembly module did not start: ${errorText(err)}` });
    return;
  }
  if (exitReason !== null) {
    post({ type: "failed", stage: "exited", message: `The WebAssembly module stopped (${exitReason}). Reload the page.` });
    return;
  }
  try {
    const started = performance.now();
    const info = await fetchModelInfo();
    const { bytes, source, cached } = await modelBytes(info, cacheOnly);
    post({ type: "status", text: `Loading ${info.name} into the module…` });
    if (handle !== null) {
      m3ae.release(handle);
      handle = null;
    }
    handle = await m3ae.load(bytes);
    const config = await m3ae.config(handle);
    post({
      type: "loaded", name: info.name, bytes: info.bytes, source, cached,
      millis: performance.now() - started, config, module: moduleFile,
    });
  } catch (err) {
    post({ type: "failed", stage: "model", message: errorText(err) });
  }
}

// fetchModelInfo reads model.json: {name, url, bytes, sha256}.
async function fetchModelInfo() {
  let response;
  try {
    response = await fetch("model.json", { cache: "no-cache" });
  } catch (err) {
    throw new Error(`Could not reach the server for model.json (${errorText(err)}): check that m3ae-edge serve is running.`);
  }
  if (!response.ok) {
    throw new Error(`model.json: HTTP ${response.status} ${response.statusText}.`);
  }
  const info = await response.json();
  if (typeof info.url !== "string" || !Number.isSafeInteger(info.bytes) || info.bytes <= 0) {
    throw new Error("model.json lacks a url or a positive bytes count.");
  }
  // info.url is relative to the page, which is the worker's folder too.
  info.url = new URL(info.url, self.location.href).href;
  return info;
}

// modelBytes returns the model file from the cache or, on a miss or a
// damaged entry, from the network, and stores a download in the cache.
// With cacheOnly it throws instead of downloading.
async function modelBytes(info, cacheOnly) {
  const cache = await openModelCache();
  if (cache) {
    const hit = await cache.match(info.url);
    if (hit) {
      post({ type: "status", text: `Reading ${info.name} from the browser cache…` });
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (await matchesDigest(bytes, info)) {
        return { bytes, source: "cache", cached: true };
      }
      await cache.delete(info.url);
    }
  }
  if (cacheOnly) {
    throw new Error(`${info.name} is not in the browser cache, and this worker loads it only from there.`);
  }

  const bytes = await download(info);
  if (!(await matchesDigest(bytes, info))) {
    throw new Error(`The downloaded ${info.name} does not match its SHA-256 in model.json: reload the page to download it again.`);
  }
  let cached = false;
  if (cache) {
    try {
      await cache.put(info.url, new Response(bytes, {
        headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
      }));
      cached = true;
      // Drop the files of models that this server no longer serves.
      for (const request of await cache.keys()) {
        if (request.url !== info.url) {
          await cache.delete(request);
        }
      }
    } catch (err) {
      post({ type: "status", text: `The model could not be cached (${errorText(err)}); the next visit downloads it again.` });
    }
  }
  return { bytes, source: "network", cached };
}

// openModelCache returns the model cache, or null where the Cache API is
// missing: pages served over plain HTTP from another host are not a
// secure context.
async function openModelCache() {
  if (typeof caches === "undefined") {
    return null;
  }
  try {
    return await caches.open(MODEL_CACHE);
  } catch (err) {
    return null;
  }
}

// matchesDigest checks bytes against the size and SHA-256 in model.json.
// Without crypto.subtle (not a secure context) it checks the size only.
async function matchesDigest(bytes, info) {
  if (bytes.length !== info.bytes) {
    return false;
  }
  if (!self.crypto || !self.crypto.subtle || typeof info.sha256 !== "string") {
    return true;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  return hex === info.sha256;
}

// download fetches the model, posting progress messages.
async function download(info) {
  post({ type: "status", text: `Downloading ${info.name}…` });
  post({ type: "progress", loaded: 0, total: info.bytes });
  let response;
  try {
    response = await fetch(info.url);
  } catch (err) {
    throw new Error(`The model download failed (${errorText(err)}): check that m3ae-edge serve is running, then retry.`);
  }
  if (!response.ok) {
    throw new Error(`The model download failed: HTTP ${response.status} ${response.statusText} for ${info.url}. Reload the page; if it persists, restart m3ae-edge serve.`);
  }

  const bytes = new Uint8Array(info.bytes);
  let loaded = 0;
  let lastPost = 0;
  const reader = response.body.getReader();
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw new Error(`The model download stopped after ${loaded} of ${info.bytes} bytes (${errorText(err)}): retry.`);
    }
    if (chunk.done) {
      break;
    }
    if (loaded + chunk.value.length > bytes.length) {
      throw new Error(`The model download is longer than the ${info.bytes} bytes that model.json gives: reload the page.`);
    }
    bytes.set(chunk.value, loaded);
    loaded += chunk.value.length;
    const now = performance.now();
    if (now - lastPost >= PROGRESS_INTERVAL_MS) {
      lastPost = now;
      post({ type: "progress", loaded, total: info.bytes });
    }
  }
  post({ type: "progress", loaded, total: info.bytes });

  if (loaded !== info.bytes) {
    throw new Error(`The model download stopped after ${loaded} of ${info.bytes} bytes: retry.`);
  }
  return bytes;
}

// call runs one request and posts its result. Image buffers in the result
// are transferred, not copied.
async function call(message) {
  if (exitReason !== null) {
    post({ type: "result", id: message.id, error: `The WebAssembly module stopped (${exitReason}). Reload the page.` });
    return;
  }
  const modelFree = MODEL_FREE_METHODS.has(message.method);
  if (handle === null && !modelFree) {
    post({ type: "result", id: message.id, error: "The model is not loaded yet." });
    return;
  }
  inFlight.add(message.id);
  try {
    const started = performance.now();
    const value = modelFree
      ? await m3ae[message.method](message.options)
      : await m3ae[message.method](handle, message.options);
    const millis = performance.now() - started;
    const transfer = [];
    if (value instanceof Float32Array) {
      transfer.push(value.buffer);
    } else if (value && value.original) {
      for (const image of [value.original, value.masked, value.reconstructed]) {
        transfer.push(image.data.buffer);
      }
    }
    if (inFlight.delete(message.id)) {
      post({ type: "result", id: message.id, value, millis }, transfer);
    }
  } catch (err) {
    if (inFlight.delete(message.id)) {
      post({ type: "result", id: message.id, error: errorText(err) });
    }
  }
}
