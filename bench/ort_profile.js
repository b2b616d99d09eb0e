// ONNX Runtime's own per-node times (enableProfiling), for comparing with
// `coffer bench --profile` layer by layer. Not a benchmark of its own: the
// whole-model ratios come from nn_bench.sh.
//
// Usage (after nn_bench.sh has installed onnxruntime-node and exported the
// models):
//   ORT_PATH=$PWD/build/ortnode/node_modules/onnxruntime-node \
//     node bench/ort_profile.js build/nn-bench-models/resnet50_dyn.onnx 8 [threads=2] [runs=30]
// Prints one line per node, slowest first: the median of its kernel time over
// the runs after the first fifth (warm-up), in ms, then the sum. ORT names a
// node by its output after its NCHWc rewrite: "/layer1/layer1.0/relu_1/
// Relu_output_0_nchwc" is layer1.0's conv2 (with its Relu fused), "relu" its
// conv1, "conv3/Conv_output_0_nchwc" its conv3 (with the residual add).
const fs = require('fs');
const os = require('os');
const path = require('path');
(async () => {
  const [model, bs, th = '2', rn = '30'] = process.argv.slice(2);
  if (!model || !bs) {
    console.error('usage: node ort_profile.js MODEL BATCH [THREADS] [RUNS]');
    process.exit(2);
  }
  const ort = require(process.env.ORT_PATH || 'onnxruntime-node');
  const batch = +bs, runs = +rn;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ortprof-'));
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: +th, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all',
    enableProfiling: true, profileFilePrefix: path.join(dir, 'p'),
  });
  const isMlp = model.includes('mlp');
  const per = isMlp ? 784 : 3 * 224 * 224;
  const dims = isMlp ? [batch, 784] : [batch, 3, 224, 224];
  const data = new Float32Array(per * batch);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 0.5;
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < runs; i++) await sess.run(feeds);
  sess.endProfiling(); // (onnxruntime-node returns no name: the one file under dir)
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  fs.rmSync(dir, { recursive: true, force: true });
  const byNode = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    if (!byNode.has(name)) byNode.set(name, []);
    byNode.get(name).push(e.dur);
  }
  const rows = [];
  for (const [name, durs] of byNode) {
    const kept = durs.slice(Math.floor(durs.length / 5)).sort((a, b) => a - b);
    rows.push([kept[Math.floor(kept.length / 2)] / 1000, name]);
  }
  rows.sort((a, b) => b[0] - a[0]);
  let sum = 0;
  for (const [ms, name] of rows) {
    sum += ms;
    console.log(ms.toFixed(3).padStart(9) + '  ' + name);
  }
  console.log(sum.toFixed(3).padStart(9) + '  (sum of node medians, ms)');
})();
