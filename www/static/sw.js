// Demo service worker: keeps a copy of the page, its scripts, the
// WebAssembly modules, model.json and the gallery, so that the page works
// offline after the first visit. Requests go to the network first, and the
// copy serves them only when the network fails. The server returns 304
// Not Modified for repeat requests, so an online visit downloads no body
// twice. The model itself is not handled here: worker.js keeps it in its
// own Cache API cache.
"use strict";

const PAGE_CACHE = "m3ae-page-v1";
const PAGE_FILES = [
  "./",
  "index.html",
  "style.css",
  "app.js",
  "worker.js",
  "wasm_exec.js",
  "m3ae.wasm",
  "model.json",
  "gallery/test.jsonl",
  "gallery/NOTICE.md",
  "gallery/README.md",
];
const SIMD_MODULE = "m3ae-simd.wasm";
const GALLERY_INDEX = "gallery/test.jsonl";
// MODEL_PATH_PREFIX starts the model's URL path, which worker.js caches.
const MODEL_PATH_PREFIX = new URL("model/", self.registration.scope).pathname;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(PAGE_CACHE);
    await cache.addAll(PAGE_FILES);
    // worker.js prefers the SIMD module, which a site built without it
    // lacks, so its absence is no reason to fail the install.
    await cache.add(SIMD_MODULE).catch(() => {});
    const index = await cache.match(GALLERY_INDEX);
    const images = (await index.text()).split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => "gallery/" + JSON.parse(line).image);
    await cache.addAll(images);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("m3ae-page-") && name !== PAGE_CACHE) {
        await caches.delete(name);
      }
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith(MODEL_PATH_PREFIX)) {
    return; // the browser fetches it as if there were no service worker
  }
  event.respondWith(networkFirst(request));
});

// networkFirst returns the network's response, storing it when it differs
// from the stored copy, or the stored copy when the network fails.
async function networkFirst(request) {
  const cache = await caches.open(PAGE_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") {
      const stored = await cache.match(request);
      const etag = response.headers.get("ETag");
      if (!stored || !etag || stored.headers.get("ETag") !== etag) {
        await cache.put(request, response.clone());
      }
    }
    return response;
  } catch (err) {
    const stored = await cache.match(request, { ignoreSearch: true });
    if (stored) {
      return stored;
    }
    throw err;
  }
}
