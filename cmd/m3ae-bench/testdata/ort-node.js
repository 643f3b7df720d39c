// Times one ONNX model in onnxruntime-node for the onnx-node group of
// cmd/m3ae-bench, which embeds this file and runs it as
//
//   NODE_PATH=DIR/node_modules node ort-node.js < request.json
//
// The request on stdin is one JSON object:
//
//   {"model": "PATH.onnx", "inputs": {NAME: TENSOR}, "threads": [1, 2],
//    "warmup": 50, "runs": 30, "output": "cls_embedding"}
//
// For each entry of threads it creates a session with that many intra-op
// threads (one inter-op thread, sequential execution, default graph
// optimizations), makes warmup untimed runs and then runs timed ones, each
// timed around session.run alone. The response on stdout is
//
//   {"version": "1.30.0", "results": [{"threads": 1, "millis": [..],
//    "output": TENSOR}]}
//
// with the named output of the last run. A TENSOR is {"type": "float32" |
// "int32", "dims": [..], "data": BASE64}, the little-endian bytes of the
// elements in row-major order.
'use strict';

const ort = require('onnxruntime-node');

const arrayTypes = { float32: Float32Array, int32: Int32Array };

function decodeTensor(name, tensor) {
  const ArrayType = arrayTypes[tensor.type];
  if (!ArrayType) {
    throw new Error(`input ${name}: type ${tensor.type} is not supported: use float32 or int32`);
  }
  const bytes = Buffer.from(tensor.data, 'base64');
  // Copy into a fresh buffer, because a typed array needs an aligned offset.
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  return new ort.Tensor(tensor.type, new ArrayType(aligned.buffer), tensor.dims);
}

function encodeTensor(tensor) {
  const data = tensor.data;
  return {
    type: tensor.type,
    dims: Array.from(tensor.dims),
    data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
  };
}

async function timeSession(request, feeds, threads) {
  const session = await ort.InferenceSession.create(request.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  try {
    let results;
    for (let i = 0; i < request.warmup; i++) {
      results = await session.run(feeds);
    }
    const millis = [];
    for (let i = 0; i < request.runs; i++) {
      const start = process.hrtime.bigint();
      results = await session.run(feeds);
      millis.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const output = results[request.output];
    if (!output) {
      throw new Error(`model ${request.model} has no output ${request.output}`);
    }
    return { threads, millis, output: encodeTensor(output) };
  } finally {
    await session.release();
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (!(request.runs >= 1)) {
    throw new Error(`runs is ${request.runs}: ask for at least 1 timed run`);
  }
  const feeds = {};
  for (const [name, tensor] of Object.entries(request.inputs)) {
    feeds[name] = decodeTensor(name, tensor);
  }
  const results = [];
  for (const threads of request.threads) {
    results.push(await timeSession(request, feeds, threads));
  }
  process.stdout.write(JSON.stringify({ version: ort.env.versions.node, results }));
}

main().catch((err) => {
  process.stderr.write(`ort-node.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
