// Times the core's forward pass, built for GOOS=js from testdata/forward,
// on the spec that the browser group of cmd/m3ae-bench posts:
//
//   {module: URL, wasmExec: URL, model: URL, inputs: URL prefix,
//    ops: [{name: "embed" | "reconstruct"}], warmup: N, runs: N}
//
// module is one flavor of forward.wasm and wasmExec the wasm_exec.js of the
// toolchain that built it. The worker posts back {ok: true, results:
// [{name, millis: [..], output: [..]}]} with the output of the last call,
// or {ok: false, error}.

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

// check throws the Error that a function of m3aeForward returned.
function check(value) {
  if (value instanceof Error) {
    throw value;
  }
  return value;
}

async function startModule(spec) {
  // A classic worker may import scripts at any time, and each spec runs in
  // a fresh worker, so every flavor gets its own wasm_exec.js.
  importScripts(spec.wasmExec);
  const go = new Go();
  const { instance } = await WebAssembly.instantiateStreaming(fetch(spec.module), go.importObject);
  go.run(instance);
  if (!globalThis.m3aeForward) {
    throw new Error(`${spec.module} did not define globalThis.m3aeForward`);
  }
}

onmessage = async (event) => {
  try {
    const spec = event.data;
    await startModule(spec);
    check(m3aeForward.load(await fetchBytes(spec.model)));
    const names = ["patches", "tokens", "image_mask", "text_mask"];
    const inputs = await Promise.all(names.map((name) => fetchBytes(spec.inputs + name)));
    check(m3aeForward.setInputs(...inputs));
    const results = [];
    for (const op of spec.ops) {
      const call = m3aeForward[op.name];
      let output;
      for (let i = 0; i < spec.warmup; i++) {
        await nextTask();
        output = check(call());
      }
      const millis = [];
      for (let i = 0; i < spec.runs; i++) {
        await nextTask();
        const start = performance.now();
        output = check(call());
        millis.push(performance.now() - start);
      }
      results.push({ name: op.name, millis, output: Array.from(output) });
    }
    postMessage({ ok: true, results });
  } catch (err) {
    postMessage({ ok: false, error: String((err && err.message) || err) });
  }
};
