// Times ONNX models in onnxruntime-web's wasm backend (SIMD, 1 thread) on
// the spec that the browser group of cmd/m3ae-bench posts:
//
//   {inputs: URL prefix, warmup: N, runs: N,
//    ops: [{name, model: URL, output: NAME,
//           feeds: [{name, type: "float32" | "int32", dims: [..]}]}]}
//
// Each feed's little-endian bytes are at the inputs prefix plus its name.
// For each op it creates a session, makes warmup untimed runs and then
// runs timed ones, each timed around session.run alone, and releases the
// session. It posts back {ok: true, version, results: [{name, millis: [..],
// output: [..]}]} with the named output of the last run, or
// {ok: false, error}.
importScripts("/ort/ort.wasm.min.js");

ort.env.wasm.wasmPaths = "/ort/";
ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.wasm.proxy = false;

const arrayTypes = { float32: Float32Array, int32: Int32Array };

// nextTask resolves in a new task of the worker's event loop, so that each
// call starts from a fresh task, as a page's calls do, which arrive as
// messages. Both workers take the same turn between calls, outside the
// timed part.
function nextTask() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`GET ${url}: status ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function timeOp(spec, op) {
  const feeds = {};
  for (const feed of op.feeds) {
    const ArrayType = arrayTypes[feed.type];
    if (!ArrayType) {
      throw new Error(`feed ${feed.name}: type ${feed.type} is not supported: use float32 or int32`);
    }
    const bytes = await fetchBytes(spec.inputs + feed.name);
    feeds[feed.name] = new ort.Tensor(feed.type, new ArrayType(bytes.buffer), feed.dims);
  }
  const session = await ort.InferenceSession.create(await fetchBytes(op.model), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  try {
    let results;
    for (let i = 0; i < spec.warmup; i++) {
      await nextTask();
      results = await session.run(feeds);
    }
    const millis = [];
    for (let i = 0; i < spec.runs; i++) {
      await nextTask();
      const start = performance.now();
      results = await session.run(feeds);
      millis.push(performance.now() - start);
    }
    const output = results[op.output];
    if (!output) {
      throw new Error(`model ${op.model} has no output ${op.output}`);
    }
    return { name: op.name, millis, output: Array.from(output.data) };
  } finally {
    await session.release();
  }
}

onmessage = async (event) => {
  try {
    const spec = event.data;
    const results = [];
    for (const op of spec.ops) {
      results.push(await timeOp(spec, op));
    }
    postMessage({ ok: true, version: ort.env.versions.web, results });
  } catch (err) {
    postMessage({ ok: false, error: String((err && err.message) || err) });
  }
};
