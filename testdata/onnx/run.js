// Runs ONNX models with onnxruntime-node for the parity test of
// export/onnx.
//
// Usage: NODE_PATH=DIR/node_modules node testdata/onnx/run.js < request.json
//
// It loads onnxruntime-node with its native CPU backend, or the package
// that M3AE_ONNXRUNTIME_PACKAGE names: onnxruntime-web runs its wasm
// backend in Node.
//
// The request on stdin is one JSON object:
//
//   {"threads": 1, "runs": [{"model": "PATH.onnx", "inputs": {NAME: TENSOR}}]}
//
// and the response on stdout is {"package": "onnxruntime-node", "version":
// "1.30.0", "runs": [{"outputs": {NAME: TENSOR}}]} with every output of each
// model. A TENSOR is
// {"type": "float32" | "int32", "dims": [..], "data": BASE64}, the data
// being the little-endian bytes of the elements in row-major order, so
// float32 values cross the process boundary without rounding.
'use strict';

const packageName = process.env.M3AE_ONNXRUNTIME_PACKAGE || 'onnxruntime-node';
const ort = require(packageName);
const isWeb = packageName === 'onnxruntime-web';

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

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const threads = request.threads || 1;
  let options;
  if (isWeb) {
    ort.env.wasm.numThreads = threads;
    options = { executionProviders: ['wasm'] };
  } else {
    options = { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 };
  }

  const sessions = new Map();
  const runs = [];
  for (const run of request.runs) {
    let session = sessions.get(run.model);
    if (!session) {
      session = await ort.InferenceSession.create(run.model, options);
      sessions.set(run.model, session);
    }
    const feeds = {};
    for (const [name, tensor] of Object.entries(run.inputs)) {
      feeds[name] = decodeTensor(name, tensor);
    }
    const results = await session.run(feeds);
    const outputs = {};
    for (const [name, tensor] of Object.entries(results)) {
      outputs[name] = encodeTensor(tensor);
    }
    runs.push({ outputs });
  }
  const version = isWeb ? ort.env.versions.web : ort.env.versions.node;
  process.stdout.write(JSON.stringify({ package: packageName, version, runs }));
}

main().catch((err) => {
  process.stderr.write(`run.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
