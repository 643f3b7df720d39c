// Demo page: the gallery, upload, controls and result views. The model runs
// in worker.js, in one main worker and, while the gallery is embedded, a
// few more; this file only sends them requests and draws the replies.
"use strict";

// Largest upload accepted, in bytes.
const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
// Largest image accepted, in pixels: core.MaxImagePixels, the limit of the
// module's decoder.
const MAX_IMAGE_PIXELS = 40000000;
// Predictions listed per hidden token, and gallery neighbours listed.
const TOP_K = 5;
const NEIGHBOURS = 5;
// Wait after a slider or caption change before reconstructing, in ms, so a
// drag sends one request rather than dozens.
const RECONSTRUCT_DELAY_MS = 150;

const $ = (id) => document.getElementById(id);

const state = {
  gallery: [], // {image, caption, url, bytes, embedding}
  current: null, // {key, name, bytes, galleryIndex, embedding}
  config: null,
  modelReady: false,
  modelCached: false, // whether the Cache API contains the loaded model
  renders: 0,
  reconstructTimer: 0,
  attention: null, // {key, value}: the last attention result and its input
};

// ---------------------------------------------------------------------
// Worker requests.
//
// The main worker lives as long as the page and runs one request at a
// time. Interactive requests run on it alone, ahead of background ones (the
// gallery embeddings), so they wait only for the request that is running
// and for other interactive ones. A new request with the same key replaces
// one that has not started. While the gallery is embedded, a few gallery
// workers take background requests too, each with its own instance of the
// module and its own copy of the model, read from the Cache API that the
// main worker filled. Background requests form one queue, and the main
// worker takes from it whenever no interactive request waits. A gallery
// worker that fails to start or to run a request is terminated and its
// request goes back to the front of the queue, so the other workers, the
// main one among them, embed its share.

// Largest number of workers that embed the gallery by default, the main
// one included, since each keeps its own copy of the model in memory.
const MAX_DEFAULT_GALLERY_WORKERS = 4;
// Largest number of workers that ?workers=N may ask for.
const MAX_GALLERY_WORKERS = 8;

// A worker slot is one worker and the request that it runs: index 0 is
// the main worker and 1 and up are gallery workers, which are ready once
// their model has loaded.
function newSlot(index) {
  return { index, worker: new Worker("worker.js"), job: null, ready: index === 0 };
}

const mainSlot = newSlot(0);
const interactiveJobs = [];
const backgroundJobs = [];
const gallerySlots = [];
let galleryWorkerFailureLogged = false;
let nextID = 1;

// request queues m3ae[method](handle, options) and resolves to {value,
// millis, worker}, where worker is the index of the slot that ran it, or
// to null when a newer request with the same key replaces it.
function request(method, options, { key = null, background = false } = {}) {
  return new Promise((resolve, reject) => {
    if (key !== null) {
      const index = interactiveJobs.findIndex((job) => job.key === key);
      if (index >= 0) {
        interactiveJobs[index].resolve(null);
        interactiveJobs.splice(index, 1);
      }
    }
    const job = { id: 0, method, options, key, resolve, reject };
    (background ? backgroundJobs : interactiveJobs).push(job);
    runNext();
  });
}

function runNext() {
  if (mainSlot.job === null) {
    const job = interactiveJobs.shift() || backgroundJobs.shift();
    if (job) {
      startJob(mainSlot, job);
    }
  }
  for (const slot of gallerySlots) {
    if (backgroundJobs.length === 0) {
      break;
    }
    if (slot.ready && slot.job === null) {
      startJob(slot, backgroundJobs.shift());
    }
  }
}

function startJob(slot, job) {
  job.id = nextID++;
  slot.job = job;
  slot.worker.postMessage({ type: "call", id: job.id, method: job.method, options: job.options });
}

// finishJob settles the slot's request with the worker's result message.
function finishJob(slot, message) {
  const job = slot.job;
  if (job === null || job.id !== message.id) {
    return;
  }
  slot.job = null;
  if (message.error !== undefined) {
    job.reject(new Error(message.error));
  } else {
    job.resolve({ value: message.value, millis: message.millis, worker: slot.index });
  }
  runNext();
}

mainSlot.worker.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case "status":
      $("status-text").textContent = message.text;
      break;
    case "progress":
      showProgress(message.loaded, message.total);
      break;
    case "loaded":
      modelLoaded(message);
      break;
    case "failed":
      loadFailed(message);
      break;
    case "result":
      finishJob(mainSlot, message);
      break;
  }
};

mainSlot.worker.onerror = (event) => {
  event.preventDefault();
  loadFailed({ stage: "module", message: `The worker failed: ${event.message || "a script did not load"}. Check that m3ae.wasm and wasm_exec.js were built (make demo).` });
};

// galleryWorkerCount returns how many workers embed the gallery, the main
// one included. ?workers=N in the page's URL sets it from 1 to
// MAX_GALLERY_WORKERS, and 1 leaves the gallery to the main worker. By
// default it is one per core that navigator.hardwareConcurrency reports,
// from 2 to MAX_DEFAULT_GALLERY_WORKERS: browsers may report fewer cores
// than the machine has, and the main worker also serves the interactive
// requests.
function galleryWorkerCount() {
  const text = new URLSearchParams(location.search).get("workers");
  if (text !== null) {
    const count = Number(text);
    if (/^\d+$/.test(text) && count >= 1 && count <= MAX_GALLERY_WORKERS) {
      return count;
    }
    console.warn(`Ignoring ?workers=${text}: it must be a whole number from 1 to ${MAX_GALLERY_WORKERS}. The page picks the number of gallery workers from the cores instead.`);
  }
  const cores = navigator.hardwareConcurrency || 1;
  return Math.min(Math.max(cores, 2), MAX_DEFAULT_GALLERY_WORKERS);
}

// startGalleryWorkers starts count gallery workers, which load the model
// from the Cache API only, so the model is downloaded once per visit.
function startGalleryWorkers(count) {
  if (count > 0 && !state.modelCached) {
    console.warn("The model is not in the browser cache, so the main worker embeds the gallery alone.");
    return;
  }
  for (let i = 1; i <= count; i++) {
    const slot = newSlot(i);
    slot.worker.onmessage = (event) => galleryWorkerMessage(slot, event.data);
    slot.worker.onerror = (event) => {
      event.preventDefault();
      retireGalleryWorker(slot, event.message || "its script did not load");
    };
    slot.worker.postMessage({ type: "load", cacheOnly: true });
    gallerySlots.push(slot);
  }
}

function galleryWorkerMessage(slot, message) {
  switch (message.type) {
    case "loaded":
      slot.ready = true;
      runNext();
      break;
    case "failed":
      retireGalleryWorker(slot, message.message);
      break;
    case "result":
      if (message.error !== undefined) {
        retireGalleryWorker(slot, message.error);
      } else {
        finishJob(slot, message);
      }
      break;
  }
}

// retireGalleryWorker terminates a gallery worker that failed and puts its
// request back at the front of the background queue. The console notes the
// first failure only.
function retireGalleryWorker(slot, reason) {
  slot.worker.terminate();
  const index = gallerySlots.indexOf(slot);
  if (index >= 0) {
    gallerySlots.splice(index, 1);
  }
  if (slot.job !== null) {
    backgroundJobs.unshift(slot.job);
    slot.job = null;
  }
  if (!galleryWorkerFailureLogged) {
    galleryWorkerFailureLogged = true;
    console.warn(`Gallery worker ${slot.index} failed (${reason}), so the other workers, the main one among them, embed its share of the gallery.`);
  }
  runNext();
}

// stopGalleryWorkers terminates the gallery workers, which returns their
// memory. The gallery calls it once its requests have all settled.
function stopGalleryWorkers() {
  for (const slot of gallerySlots) {
    slot.worker.terminate();
  }
  gallerySlots.length = 0;
}

// ---------------------------------------------------------------------
// Model loading and status.

function formatMB(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function showProgress(loaded, total) {
  const bar = $("download-progress");
  bar.hidden = false;
  bar.max = total;
  bar.value = loaded;
  const percent = total > 0 ? Math.floor((100 * loaded) / total) : 0;
  $("status-text").textContent = `Downloading the model: ${formatMB(loaded)} of ${formatMB(total)} (${percent} %)`;
}

function modelLoaded(message) {
  state.config = message.config;
  state.modelReady = true;
  state.modelCached = message.cached;
  document.body.dataset.state = "ready";
  document.body.dataset.modelSource = message.source;
  document.body.dataset.module = message.module;
  $("download-progress").hidden = true;
  $("status-error").hidden = true;
  $("retry").hidden = true;
  const from = message.source === "cache" ? "read from the browser cache" : "downloaded";
  const cacheNote = message.source === "network" && !message.cached
    ? " It could not be cached, so the next visit downloads it again." : "";
  $("status-text").textContent =
    `Model ${message.name} (${formatMB(message.bytes)}) ${from} and loaded in ${Math.round(message.millis)} ms.${cacheNote}`;
  const c = message.config;
  const kernels = message.module === "m3ae-simd.wasm" ? "WebAssembly SIMD kernels" : "scalar kernels";
  $("model-info").textContent =
    `Model: ${message.name}, ${c.imageSize}×${c.imageSize} images in ${c.patchSize}×${c.patchSize} patches, ` +
    `${c.textLength} text positions, encoder width ${c.embedDim} and depth ${c.depth}, ` +
    `run by ${message.module} (${kernels}).`;
  $("text-ratio-hint").textContent =
    `Fraction of the caption's ${c.textLength} positions hidden, padding included, so a short caption may keep all its words.`;
  fillLayerOptions(c.depth);
  if (state.current === null && state.gallery.length > 0) {
    selectGallery(0);
  } else {
    scheduleReconstruct(0);
  }
  embedGallery();
}

function loadFailed(message) {
  document.body.dataset.state = "error";
  $("download-progress").hidden = true;
  const headlines = {
    module: "The WebAssembly module could not start.",
    exited: "The WebAssembly module stopped.",
    model: "The model could not be loaded.",
  };
  $("status-text").textContent = headlines[message.stage];
  const error = $("status-error");
  error.textContent = message.message;
  error.hidden = false;
  const retry = $("retry");
  retry.hidden = false;
  retry.onclick = () => {
    retry.hidden = true;
    error.hidden = true;
    if (message.stage !== "model") {
      location.reload();
    } else {
      document.body.dataset.state = "loading";
      mainSlot.worker.postMessage({ type: "load" });
    }
  };
}

// ---------------------------------------------------------------------
// Gallery and uploads.

async function loadGallery() {
  let text;
  try {
    const response = await fetch("gallery/test.jsonl");
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    text = await response.text();
  } catch (err) {
    inputError(`The gallery could not be loaded (${err.message}); you can still upload an image.`);
    return;
  }
  const list = $("gallery");
  for (const line of text.split("\n")) {
    if (line.trim() === "") {
      continue;
    }
    const pair = JSON.parse(line);
    const entry = { image: pair.image, caption: pair.caption, url: `gallery/${pair.image}`, bytes: null, embedding: null };
    const index = state.gallery.push(entry) - 1;
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.dataset.index = String(index);
    button.title = pair.caption;
    const img = document.createElement("img");
    img.src = entry.url;
    img.alt = "";
    const caption = document.createElement("span");
    caption.textContent = pair.caption;
    button.append(img, caption);
    button.addEventListener("click", () => selectGallery(index));
    item.append(button);
    list.append(item);
  }
  if (state.modelReady && state.current === null && state.gallery.length > 0) {
    selectGallery(0);
    embedGallery();
  }
}

async function galleryBytes(entry) {
  if (entry.bytes === null) {
    const response = await fetch(entry.url);
    if (!response.ok) {
      throw new Error(`${entry.url}: HTTP ${response.status}`);
    }
    entry.bytes = new Uint8Array(await response.arrayBuffer());
  }
  return entry.bytes;
}

async function selectGallery(index) {
  const entry = state.gallery[index];
  inputError(null);
  let bytes;
  try {
    bytes = await galleryBytes(entry);
  } catch (err) {
    inputError(`The gallery image could not be loaded: ${err.message}.`);
    return;
  }
  $("caption").value = entry.caption;
  setCurrent({ key: entry.url, name: entry.caption, bytes, galleryIndex: index, embedding: null });
}

function setCurrent(current) {
  state.current = current;
  for (const button of $("gallery").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === current.galleryIndex));
  }
  scheduleReconstruct(0);
  showNeighbours();
}

function inputError(text) {
  const error = $("input-error");
  error.textContent = text || "";
  error.hidden = !text;
}

// sniffFormat names an image format from the file's first bytes.
function sniffFormat(bytes) {
  const starts = (...prefix) => prefix.every((b, i) => bytes[i] === b);
  const ascii = (start, end) => String.fromCharCode(...bytes.subarray(start, end));
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
  if (starts(0xff, 0xd8, 0xff)) return "jpeg";
  if (ascii(0, 4) === "GIF8") return "GIF";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "WebP";
  if (ascii(0, 2) === "BM") return "BMP";
  if (ascii(4, 8) === "ftyp") return "HEIF or AVIF";
  if (ascii(0, 5) === "<?xml" || ascii(0, 4) === "<svg") return "SVG";
  return null;
}

// imageSize reads the width and height from a PNG's IHDR chunk or a JPEG's
// start-of-frame segment, or returns null when it cannot.
function imageSize(bytes, format) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "png") {
    return bytes.length >= 24 ? { width: view.getUint32(16), height: view.getUint32(20) } : null;
  }
  // JPEG: walk the segments to the first SOFn marker (C0 to CF, except
  // C4 DHT, C8 JPG and CC DAC), whose payload stores height then width.
  let offset = 2;
  while (offset + 9 < bytes.length) {
    if (bytes[offset] !== 0xff) {
      return null;
    }
    const marker = bytes[offset + 1];
    if (marker === 0xff) {
      offset++; // fill byte
      continue;
    }
    const length = view.getUint16(offset + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: view.getUint16(offset + 7), height: view.getUint16(offset + 5) };
    }
    offset += 2 + length;
  }
  return null;
}

async function handleFile(file) {
  inputError(null);
  if (!file) {
    return;
  }
  // A rejected upload clears the error that the output area showed before.
  outputError(null);
  if (file.size === 0) {
    inputError(`${file.name} is empty (0 bytes). Pick a PNG or JPEG image.`);
    return;
  }
  if (file.size > MAX_UPLOAD_BYTES) {
    inputError(`${file.name} is ${formatMB(file.size)}; the demo takes files up to ${formatMB(MAX_UPLOAD_BYTES)}. Pick a smaller image.`);
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const format = sniffFormat(bytes);
  if (format !== "png" && format !== "jpeg") {
    const kind = format ? `a ${format} file` : `not an image the demo knows${file.type ? ` (${file.type})` : ""}`;
    inputError(`${file.name} is ${kind}: the demo reads PNG and JPEG only. Convert it to PNG or JPEG and try again.`);
    return;
  }
  const size = imageSize(bytes, format);
  if (size && size.width * size.height > MAX_IMAGE_PIXELS) {
    const megapixels = ((size.width * size.height) / 1e6).toFixed(1);
    inputError(`${file.name} is ${size.width} × ${size.height} pixels (${megapixels} megapixels); the demo takes images up to ${MAX_IMAGE_PIXELS / 1e6} megapixels. Scale it down and try again.`);
    return;
  }
  setCurrent({ key: `upload:${file.name}:${file.size}:${file.lastModified}`, name: file.name, bytes, galleryIndex: -1, embedding: null });
}

function bindUpload() {
  $("file-input").addEventListener("change", (event) => {
    handleFile(event.target.files[0]);
    event.target.value = "";
  });
  const zone = $("drop-zone");
  // Keep a file dropped anywhere on the page from replacing the page.
  for (const type of ["dragover", "drop"]) {
    document.addEventListener(type, (event) => event.preventDefault());
  }
  zone.addEventListener("dragenter", () => zone.classList.add("dragging"));
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("dragging");
    const files = event.dataTransfer.files;
    if (files.length === 0) {
      inputError("The drop held no file: drop a PNG or JPEG file.");
      return;
    }
    handleFile(files[0]);
  });
}

// ---------------------------------------------------------------------
// Controls and reconstruction.

function ratioValue(id) {
  return Number($(id).value);
}

// seedValue returns the seed field as a safe integer, or null.
function seedValue() {
  const text = $("seed").value.trim();
  if (!/^\d+$/.test(text)) {
    return null;
  }
  const seed = Number(text);
  return Number.isSafeInteger(seed) ? seed : null;
}

function bindControls() {
  for (const id of ["image-ratio", "text-ratio"]) {
    const show = () => { $(`${id}-value`).textContent = ratioValue(id).toFixed(2); };
    show();
    $(id).addEventListener("input", () => {
      show();
      scheduleReconstruct(RECONSTRUCT_DELAY_MS);
    });
  }
  $("caption").addEventListener("input", () => scheduleReconstruct(RECONSTRUCT_DELAY_MS));
  $("seed").addEventListener("input", () => scheduleReconstruct(RECONSTRUCT_DELAY_MS));
  $("show-attention").addEventListener("change", updateAttention);
  $("attention-layer").addEventListener("change", drawAttention);
  $("new-mask").addEventListener("click", () => {
    const word = new Uint32Array(1);
    crypto.getRandomValues(word);
    $("seed").value = String(word[0]);
    scheduleReconstruct(0);
  });
}

function scheduleReconstruct(delay) {
  clearTimeout(state.reconstructTimer);
  state.reconstructTimer = setTimeout(reconstruct, delay);
}

function outputError(text) {
  const error = $("output-error");
  error.textContent = text || "";
  error.hidden = !text;
}

// clearOutput hides the last reconstruction and its neighbours, so that a
// failed input never leaves another image's results under its error.
function clearOutput() {
  for (const id of ["output-images", "text-output", "neighbours-output", "ood-output", "attention-summary"]) {
    $(id).hidden = true;
  }
  $("output-timing").textContent = "";
}

async function reconstruct() {
  if (!state.modelReady) {
    return;
  }
  const caption = $("caption").value;
  const current = state.current;
  if (current === null && caption.trim() === "") {
    return;
  }

  const seed = seedValue();
  if (seed === null) {
    outputError("The seed must be a whole number from 0 to 9007199254740991.");
    return;
  }
  const options = {
    text: caption,
    imageMaskRatio: ratioValue("image-ratio"),
    textMaskRatio: ratioValue("text-ratio"),
    seed,
    topK: TOP_K,
  };
  if (current !== null) {
    options.image = current.bytes;
  }

  let reply;
  try {
    reply = await request("reconstruct", options, { key: "reconstruct" });
  } catch (err) {
    const subject = current === null ? "the caption" : current.name;
    clearOutput();
    outputError(`The model could not reconstruct ${subject}: ${err.message}`);
    return;
  }
  if (reply === null) {
    return; // a newer request replaced this one
  }
  outputError(null);
  renderReconstruction(reply.value, reply.millis, current, seed);
  updateAttention();
}

function drawImage(canvasID, image) {
  const canvas = $(canvasID);
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").putImageData(new ImageData(image.data, image.width, image.height), 0, 0);
}

function countHidden(mask) {
  return mask ? mask.reduce((n, hidden) => n + (hidden ? 1 : 0), 0) : 0;
}

function renderReconstruction(result, millis, current, seed) {
  $("output-placeholder").hidden = true;
  const hasImage = result.original !== null;
  $("output-images").hidden = !hasImage;
  const facts = [`seed ${seed}`];
  if (hasImage) {
    drawImage("original", result.original);
    drawImage("masked", result.masked);
    drawImage("reconstructed", result.reconstructed);
    facts.push(`${countHidden(result.imageMask)} of ${result.imageMask.length} patches hidden`);
  }
  if (result.textMask) {
    facts.push(`${result.predictions.length} of ${result.tokens.length} caption tokens hidden`);
  }
  $("output-timing").textContent = `Reconstructed in ${Math.round(millis)} ms: ${facts.join(", ")}.`;
  renderText(result);
  drawAttention();

  const output = $("output");
  state.renders++;
  output.dataset.seq = String(state.renders);
  output.dataset.image = current ? current.key : "";
  output.dataset.seed = String(seed);
}

// formatPercent shows a probability as a percentage with one decimal, or
// two significant digits below 1 %, since an undertrained model spreads
// its guesses over the whole 30522-token vocabulary.
function formatPercent(prob) {
  const percent = 100 * prob;
  return `${percent >= 1 ? percent.toFixed(1) : percent.toPrecision(2)} %`;
}

function renderText(result) {
  const section = $("text-output");
  section.hidden = result.tokens.length === 0;
  const tokens = $("tokens");
  const predictions = $("predictions");
  tokens.replaceChildren();
  predictions.replaceChildren();
  result.tokens.forEach((token, i) => {
    const item = document.createElement("li");
    item.textContent = token;
    if (result.hidden[i]) {
      item.className = "hidden";
      item.title = "hidden from the model";
    }
    tokens.append(item);
  });
  for (const prediction of result.predictions) {
    const item = document.createElement("li");
    const heading = document.createElement("div");
    heading.className = "original";
    heading.textContent = `hidden token “${prediction.original}” at position ${prediction.position}`;
    const list = document.createElement("ol");
    list.className = "candidates";
    for (const candidate of prediction.candidates) {
      const row = document.createElement("li");
      if (candidate.token === prediction.original) {
        row.className = "match";
      }
      const word = document.createElement("span");
      word.className = "word";
      word.textContent = candidate.token;
      const prob = document.createElement("span");
      prob.className = "prob";
      prob.textContent = formatPercent(candidate.prob);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(0, Math.min(100, 100 * candidate.prob))}%`;
      row.append(word, prob, bar);
      list.append(row);
    }
    item.append(heading, list);
    predictions.append(item);
  }
}

// ---------------------------------------------------------------------
// Nearest gallery captions.

// embedGallery embeds every gallery image in the background, then lists
// the current image's neighbours.
let galleryEmbedding = null;
function embedGallery() {
  if (galleryEmbedding !== null || state.gallery.length === 0) {
    return galleryEmbedding;
  }
  galleryEmbedding = embedGalleryImages().then(showNeighbours, (err) => {
    galleryEmbedding = null;
    $("neighbours-output").hidden = true;
    inputError(`The gallery embeddings failed: ${err.message}`);
  });
  return galleryEmbedding;
}

// embedGalleryImages embeds the gallery on the main worker and the gallery
// workers and stores each embedding at its image's index, in whatever
// order the workers finish. It records how many workers took part and how
// long it took on the neighbours section.
async function embedGalleryImages() {
  const started = performance.now();
  const extra = Math.min(galleryWorkerCount() - 1, state.gallery.length);
  startGalleryWorkers(extra);
  const replies = await Promise.allSettled(state.gallery.map(async (entry) => {
    const bytes = await galleryBytes(entry);
    return request("embed", { image: bytes }, { background: true });
  }));
  stopGalleryWorkers();
  const failed = replies.find((reply) => reply.status === "rejected");
  if (failed) {
    throw failed.reason;
  }

  replies.forEach((reply, index) => {
    state.gallery[index].embedding = reply.value.value;
  });
  const workers = new Set(replies.map((reply) => reply.value.worker)).size;
  const millis = Math.round(performance.now() - started);
  const section = $("neighbours-output");
  section.dataset.galleryWorkers = String(workers);
  section.dataset.galleryMillis = String(millis);
  $("gallery-timing").textContent =
    `The page embedded the ${state.gallery.length} gallery emoji in ${millis} ms on ${workers} Web Worker${workers === 1 ? "" : "s"}.`;
}

function cosine(a, b) {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    normA += a[i] * a[i];
    normB += b[i] * b[i];
  }
  return normA > 0 && normB > 0 ? dot / Math.sqrt(normA * normB) : 0;
}

async function showNeighbours() {
  const current = state.current;
  if (current === null || !state.modelReady || state.gallery.some((entry) => entry.embedding === null)) {
    return;
  }
  if (current.embedding === null) {
    if (current.galleryIndex >= 0) {
      current.embedding = state.gallery[current.galleryIndex].embedding;
    } else {
      let reply;
      try {
        reply = await request("embed", { image: current.bytes }, { key: "embed-current" });
      } catch (err) {
        $("neighbours-output").hidden = true;
        return; // reconstruct reports the image's error
      }
      if (reply === null) {
        return;
      }
      current.embedding = reply.value;
    }
  }
  if (state.current !== current) {
    return; // the user picked another image meanwhile
  }
  const ranked = state.gallery
    .map((entry, index) => ({ entry, index, score: cosine(current.embedding, entry.embedding) }))
    .filter((row) => row.index !== current.galleryIndex)
    .sort((a, b) => b.score - a.score)
    .slice(0, NEIGHBOURS);
  const list = $("neighbours");
  list.replaceChildren();
  for (const row of ranked) {
    const item = document.createElement("li");
    const img = document.createElement("img");
    img.src = row.entry.url;
    img.alt = "";
    const caption = document.createElement("span");
    caption.textContent = row.entry.caption;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = ` cosine ${row.score.toFixed(3)}`;
    item.append(img, caption, score);
    list.append(item);
  }
  $("neighbours-output").hidden = false;
  $("neighbours-output").dataset.image = current.key;
  showOOD(current);
}

// ---------------------------------------------------------------------
// Attention: what the encoder's CLS token attends to on the unmasked input,
// drawn as a heat overlay over the original image and as tinted caption
// tokens.

// Largest opacity of the heat overlay, for the patch with the most weight.
const OVERLAY_MAX_ALPHA = 0.75;

function fillLayerOptions(depth) {
  const select = $("attention-layer");
  const selected = select.value;
  select.replaceChildren();
  const rollout = document.createElement("option");
  rollout.value = "rollout";
  rollout.textContent = "the rollout over all blocks";
  select.append(rollout);
  for (let layer = 0; layer < depth; layer++) {
    const option = document.createElement("option");
    option.value = String(layer);
    option.textContent = `block ${layer + 1} of ${depth} (mean of its heads)`;
    select.append(option);
  }
  select.value = Number(selected) < depth ? selected : "rollout";
}

// attentionKey names the input that an attention result belongs to: the
// image and the caption, since the masks do not change it.
function attentionKey() {
  const image = state.current ? state.current.key : "";
  return `${image}\n${$("caption").value}`;
}

// updateAttention requests the current input's attention from the worker
// when the switch is on and the last result is for another input.
async function updateAttention() {
  const on = $("show-attention").checked;
  $("attention-hint").hidden = !on;
  if (!on || !state.modelReady) {
    drawAttention();
    return;
  }

  const key = attentionKey();
  if (state.attention !== null && state.attention.key === key) {
    drawAttention();
    return;
  }
  const caption = $("caption").value;
  const current = state.current;
  if (current === null && caption.trim() === "") {
    return;
  }
  const options = { text: caption };
  if (current !== null) {
    options.image = current.bytes;
  }

  let reply;
  try {
    reply = await request("attention", options, { key: "attention" });
  } catch (err) {
    state.attention = null;
    drawAttention();
    const summary = $("attention-summary");
    summary.textContent = `The attention could not be computed: ${err.message}`;
    summary.hidden = false;
    return;
  }
  if (reply === null) {
    return; // a newer request replaced this one
  }
  state.attention = { key, value: reply.value };
  drawAttention();
}

function selectedAttentionMap(value) {
  const layer = $("attention-layer").value;
  if (layer === "rollout" || value.layers[Number(layer)] === undefined) {
    return { map: value.rollout, label: "the rollout over all blocks" };
  }
  return { map: value.layers[Number(layer)].mean, label: `block ${Number(layer) + 1}, mean of ${value.numHeads} heads` };
}

function sum(values) {
  let total = 0;
  for (const v of values || []) {
    total += v;
  }
  return total;
}

function maxOf(values) {
  let largest = 0;
  for (const v of values || []) {
    largest = Math.max(largest, v);
  }
  return largest;
}

// drawAttention shows the last attention result when the switch is on and
// the result belongs to the current input, and hides it otherwise.
function drawAttention() {
  const overlay = $("attention-overlay");
  const summary = $("attention-summary");
  const output = $("output");
  const tokens = Array.from($("tokens").children);
  const result = state.attention;
  if (!$("show-attention").checked || result === null || result.key !== attentionKey()) {
    overlay.hidden = true;
    $("original-caption").textContent = "original";
    for (const item of tokens) {
      item.style.backgroundColor = "";
      delete item.dataset.attention;
      item.removeAttribute("title");
      if (item.classList.contains("hidden")) {
        item.title = "hidden from the model";
      }
    }
    if (!$("show-attention").checked || result !== null) {
      summary.hidden = true;
    }
    delete output.dataset.attention;
    return;
  }

  const value = result.value;
  const { map, label } = selectedAttentionMap(value);
  // One colour scale for patches and tokens, so their tints compare.
  const maxWeight = Math.max(maxOf(map.patches), maxOf(map.text));
  if (map.patches) {
    drawOverlay(overlay, map.patches, value.gridSize, maxWeight);
    overlay.hidden = false;
    $("original-caption").textContent = "original with attention";
  } else {
    overlay.hidden = true;
  }

  // Tint the caption's tokens when the list shows the same tokens.
  const sameTokens = map.text !== null && tokens.length === value.tokens.length &&
    tokens.every((item, i) => item.textContent === value.tokens[i]);
  tokens.forEach((item, i) => {
    if (!sameTokens) {
      return;
    }
    const weight = map.text[i];
    const alpha = maxWeight > 0 ? OVERLAY_MAX_ALPHA * (weight / maxWeight) : 0;
    item.style.backgroundColor = `rgba(220, 50, 30, ${alpha.toFixed(3)})`;
    item.dataset.attention = weight.toFixed(6);
    item.title = `CLS attention ${formatPercent(weight)}` + (item.classList.contains("hidden") ? "; hidden from the model" : "");
  });

  const parts = [];
  if (map.patches) {
    parts.push(`${formatPercent(sum(map.patches))} on the image patches`);
  }
  if (map.text) {
    parts.push(`${formatPercent(sum(map.text))} on the caption tokens`);
  }
  parts.push(`${formatPercent(map.cls)} on itself`);
  summary.textContent = `From ${label}, CLS puts ${parts.join(", ")}.`;
  summary.hidden = false;
  output.dataset.attention = result.key;
}

// drawOverlay paints one pixel per patch, yellow to red, with an opacity
// that grows with the patch's weight relative to maxWeight, the largest
// weight on a patch or token. CSS scales the canvas over the original
// image without smoothing, so each patch shows as a square.
function drawOverlay(canvas, patches, gridSize, maxWeight) {
  canvas.width = gridSize;
  canvas.height = gridSize;
  const pixels = new Uint8ClampedArray(4 * gridSize * gridSize);
  for (let n = 0; n < patches.length; n++) {
    const w = maxWeight > 0 ? patches[n] / maxWeight : 0;
    pixels[4 * n] = 255;
    pixels[4 * n + 1] = Math.round(200 * (1 - w)); // yellow to red
    pixels[4 * n + 2] = 0;
    pixels[4 * n + 3] = Math.round(255 * OVERLAY_MAX_ALPHA * w);
  }
  canvas.getContext("2d").putImageData(new ImageData(pixels, gridSize, gridSize), 0, 0);
}

// ---------------------------------------------------------------------
// Out-of-distribution score against the gallery.

// oodWords reads a score in plain words from its percentile among the
// gallery's leave-one-out scores.
function oodWords(reading, galleryCount, isGallery) {
  const others = isGallery ? galleryCount - 1 : galleryCount;
  const percent = Math.round(reading.percentile);
  const highest = Math.max(...reading.referenceScores);
  if (!isGallery && reading.score > highest) {
    return `further from the gallery than any of its ${galleryCount} emoji is from the others, so the model sees it as unlike the gallery.`;
  }
  const rank = `more unusual than ${percent} % of the ${others} ${isGallery ? "other " : ""}gallery emoji`;
  if (reading.percentile >= 90) {
    return `${rank}: at the edge of what the gallery covers.`;
  }
  if (reading.percentile >= 50) {
    return `${rank}: within the gallery's range.`;
  }
  return `${rank}: typical of the gallery.`;
}

async function showOOD(current) {
  const section = $("ood-output");
  if (current.embedding === null) {
    section.hidden = true;
    return;
  }

  const isGallery = current.galleryIndex >= 0;
  const options = { reference: state.gallery.map((entry) => entry.embedding) };
  if (isGallery) {
    options.referenceIndex = current.galleryIndex;
  } else {
    options.input = current.embedding;
  }

  let reply;
  try {
    reply = await request("ood", options, { key: "ood" });
  } catch (err) {
    $("ood-score").textContent = "";
    $("ood-words").textContent = `the score could not be computed: ${err.message}`;
    section.hidden = false;
    return;
  }
  if (reply === null || state.current !== current) {
    return;
  }

  const reading = reply.value;
  const count = state.gallery.length;
  $("ood-score").textContent = reading.score.toFixed(2);
  $("ood-score").title = "Mahalanobis distance to the gallery's mean";
  $("ood-words").textContent = oodWords(reading, count, isGallery);
  $("ood-hint").textContent =
    `The page fits one Gaussian to the image embeddings (the CLS output) of the ${count} gallery emoji ` +
    `and scores this image by the Mahalanobis distance of its embedding from the gallery's mean. ` +
    `${count} points in ${current.embedding.length} dimensions make the sample covariance singular, ` +
    `so the fit shrinks it toward a multiple of the identity by Ledoit-Wolf shrinkage, ` +
    `with the weight that the Ledoit-Wolf formula estimates from the gallery: ${reading.shrinkage.toFixed(3)}. ` +
    `Each gallery emoji is scored against a fit of the other ${count - 1}, and the percentile ranks ` +
    `this image among those scores${isGallery ? " (a gallery emoji among the others')" : ""}.`;
  section.hidden = false;
  section.dataset.image = current.key;
}

// ---------------------------------------------------------------------
// Start.

function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) {
    document.body.dataset.offline = "unsupported";
    return;
  }
  navigator.serviceWorker.register("sw.js").then(
    () => navigator.serviceWorker.ready.then(() => { document.body.dataset.offline = "ready"; }),
    (err) => {
      document.body.dataset.offline = "failed";
      console.warn("The service worker did not register, so the page will not work offline:", err);
    });
}

bindControls();
bindUpload();
registerServiceWorker();
loadGallery();
mainSlot.worker.postMessage({ type: "load" });
