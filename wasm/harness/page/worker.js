// Harness worker: starts m3ae.wasm, runs the cases of a spec through
// globalThis.m3ae, and posts back every output (typed arrays as base64) and
// the time of each call in milliseconds.
importScripts("/wasm_exec.js");

const ready = (async () => {
  const go = new Go();
  const { instance } = await WebAssembly.instantiateStreaming(fetch("/m3ae.wasm"), go.importObject);
  go.run(instance);
  if (!globalThis.m3ae) {
    throw new Error("m3ae.wasm did not define globalThis.m3ae");
  }
})();

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`GET ${url}: status ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

function base64(view) {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function imageJSON(image) {
  if (image === null) {
    return null;
  }
  return { width: image.width, height: image.height, data: base64(image.data) };
}

async function callOptions(c) {
  const options = { text: c.text };
  if (c.image && c.pixels) {
    const data = await fetchBytes(`/pixels/${c.image}`);
    options.pixels = { data: new Uint8ClampedArray(data.buffer), width: c.width, height: c.height };
  } else if (c.image) {
    options.image = await fetchBytes(`/inputs/${c.image}`);
  }
  if (c.op === "embed") {
    if (c.pooling) {
      options.pooling = c.pooling;
    }
    return options;
  }
  options.imageMaskRatio = c.imageMaskRatio;
  options.textMaskRatio = c.textMaskRatio;
  options.topK = c.topK;
  options.seed = c.seedAsBigInt ? BigInt(c.seed) : Number(c.seed);
  return options;
}

function outputJSON(op, result) {
  if (op === "embed") {
    return { embedding: base64(result) };
  }
  return {
    reconstruction: {
      imageMask: result.imageMask === null ? null : base64(result.imageMask),
      textMask: result.textMask === null ? null : base64(result.textMask),
      original: imageJSON(result.original),
      masked: imageJSON(result.masked),
      reconstructed: imageJSON(result.reconstructed),
      pixelPred: result.pixelPred === null ? null : base64(result.pixelPred),
      tokens: result.tokens,
      hidden: result.hidden,
      predictions: result.predictions,
    },
  };
}

// nextTask resolves in a new task of the worker's event loop. Calls that
// await only the module's promises never return to the event loop. In
// Chromium 156 the SIMD module then ran about 3x slower, from roughly a
// second into such a run until the loop turned again. So each call starts
// from a fresh task, as the demo's calls do, which arrive as messages.
function nextTask() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function runCase(handle, c, warmup, repeat) {
  const options = await callOptions(c);
  const call = c.op === "embed" ? m3ae.embed : m3ae.reconstruct;
  const millis = [];
  let result;
  for (let i = 0; i < warmup + repeat; i++) {
    await nextTask();
    const start = performance.now();
    try {
      result = await call(handle, options);
    } catch (err) {
      return { name: c.name, error: err instanceof Error ? err.message : `not an Error: ${err}` };
    }
    if (i >= warmup) {
      millis.push(performance.now() - start);
    }
  }
  return { name: c.name, millis, ...outputJSON(c.op, result) };
}

// apiChecks calls the API with invalid arguments and records how each call
// ended, for the Go test to compare with what the API documents.
async function apiChecks(handle) {
  const outcome = async (promise) => {
    try {
      const value = await promise;
      return { value: JSON.stringify(value, (key, v) => (typeof v === "bigint" ? String(v) : v)) };
    } catch (err) {
      return { error: err instanceof Error ? err.message : `not an Error: ${err}` };
    }
  };
  const checks = {};
  checks.unknownHandle = await outcome(m3ae.embed(987654, { text: "a cat" }));
  checks.negativeSeed = await outcome(m3ae.reconstruct(handle, { text: "a cat", seed: -1 }));
  checks.unsafeSeed = await outcome(m3ae.reconstruct(handle, { text: "a cat", seed: 2 ** 60 }));
  checks.bigSeed = await outcome(m3ae.reconstruct(handle, { text: "a cat", seed: 2n ** 64n }));
  checks.maxSeed = await outcome(m3ae.reconstruct(handle, { text: "a cat", seed: 2n ** 64n - 1n }).then(() => "ok"));
  checks.imageNotBytes = await outcome(m3ae.embed(handle, { image: "not bytes" }));
  checks.imageAndPixels = await outcome(m3ae.embed(handle, { image: new Uint8Array(4), pixels: {} }));
  checks.pixelsWrongLength = await outcome(m3ae.embed(handle, { pixels: { data: new Uint8ClampedArray(3), width: 1, height: 1 } }));
  checks.badPooling = await outcome(m3ae.embed(handle, { text: "a cat", pooling: "max" }));
  checks.noInput = await outcome(m3ae.embed(handle, {}));
  checks.noOptions = await outcome(m3ae.embed(handle));
  checks.throwingGetter = await outcome(m3ae.embed(handle, { get text() { throw new Error("getter throws"); } }));
  checks.customMasks = await outcome(
    m3ae.reconstruct(handle, { text: "a red apple", textMask: new Uint8Array(16).fill(1) })
      .then((r) => Array.from(r.textMask).join("")));
  checks.config = await outcome(m3ae.config(handle));
  checks.loadGarbage = await outcome(m3ae.load(new Uint8Array([1, 2, 3])));
  checks.releaseUnknown = { value: String(m3ae.release(987654)) };
  checks.stillServing = await outcome(m3ae.embed(handle, { text: "a cat" }).then((e) => e.length));
  return checks;
}

onmessage = async (event) => {
  try {
    await ready;
    const spec = event.data;
    const model = await fetchBytes("/model");
    const loadStart = performance.now();
    const handle = await m3ae.load(model);
    const loadMillis = performance.now() - loadStart;
    const results = [];
    for (const c of spec.cases) {
      results.push(await runCase(handle, c, spec.warmup, spec.repeat));
    }
    const checks = spec.apiChecks ? await apiChecks(handle) : null;
    const released = m3ae.release(handle);
    postMessage({ ok: true, loadMillis, results, checks, released });
  } catch (err) {
    postMessage({ ok: false, error: String((err && err.message) || err) });
  }
};
