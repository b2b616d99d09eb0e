#!/usr/bin/env bash
# Inference speed against ONNX Runtime, in one run: `coffer bench` and the
# peer script ../shared/bench/bench_ort.js (onnxruntime-node, CPU, graph
# optimisation "all") on the same exported models (resnet50, mobilenet_v2,
# the 784-512-256-10 MLP; export_models.py: weights=None, seed 0, opset
# 13), same thread count, batches 1 and 8, interleaved over ROUNDS rounds
# with the order alternating. Prints every round, then per model and batch
# each side's best-round median and the ratio coffer / ORT (below 1: coffer
# is faster), plus coffer's peak RSS and load time beside ORT's.
#   [CASES="resnet50:8 mlp:1"] [PRECISION=bf16|int8] bash bench/nn_bench.sh [ROUNDS] [RUNS] [WARMUP]
# PRECISION=bf16 runs coffer with --precision bf16 (ORT stays float32);
# PRECISION=int8 with --precision int8, each model calibrated first
# (`coffer calibrate` on 32 seeded normal inputs; the MLP, which has no
# convolution int8 takes, is left out of the default cases).
# Needs /usr/bin/python3 with python3-torch and python3-torchvision (to
# export), node and npm (onnxruntime-node is installed into build/ortnode).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
runs=${2:-20}
warmup=${3:-5}
threads=${THREADS:-2}
precision=${PRECISION:-f32}
shared=${COFFER_SHARED_DIR:-$(cd .. && pwd)/shared}
[ -f "$shared/bench/bench_ort.js" ] || shared=/work/shared
cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench --target coffer >/dev/null
coffer=build/bench/src/cli/coffer
models=build/nn-bench-models
if [ ! -f "$models/mlp_out.f32" ]; then
  mkdir -p "$models"
  /usr/bin/python3 "$shared/bench/export_models.py" "$models" >/dev/null
fi
if [ ! -d build/ortnode/node_modules/onnxruntime-node ]; then
  mkdir -p build/ortnode
  (cd build/ortnode && npm install --silent --onnxruntime-node-install=skip onnxruntime-node >/dev/null)
fi
export ORT_PATH=$PWD/build/ortnode/node_modules/onnxruntime-node
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ort_rss() { # peak RSS (MiB) of one ORT run, from GNU time
  /usr/bin/time -f "%M" -o "$out/rss" node "$shared/bench/bench_ort.js" "$@" >/dev/null 2>&1 || true
  awk '{printf "%.1f", $1 / 1024}' "$out/rss"
}
run_coffer() {
  local cal=()
  [ "$precision" = int8 ] && cal=(--calibration "$out/$1.calib")
  "$coffer" bench "$models/${1}_dyn.onnx" --batch "$2" --threads "$threads" --runs "$runs" --warmup "$warmup" \
    --input "$models/${1}_in.f32" --precision "$precision" "${cal[@]}"
}
run_ort() {
  node "$shared/bench/bench_ort.js" "$models/${1}_dyn.onnx" "$2" "$threads" "$warmup" "$runs" "$models/${1}_in.f32"
}
cases=${CASES:-"resnet50:1 resnet50:8 mobilenet_v2:1 mobilenet_v2:8 mlp:1 mlp:8"} # CASES="resnet50:8" for one
if [ "$precision" = int8 ]; then
  cases=${CASES:-"resnet50:1 resnet50:8 mobilenet_v2:1 mobilenet_v2:8"}
  for m in $(for c in $cases; do echo "${c%:*}"; done | sort -u); do
    /usr/bin/python3 -c "import numpy as np, sys; n = np.fromfile(sys.argv[1], np.float32).size
np.random.default_rng(7).standard_normal(32 * n).astype(np.float32).tofile(sys.argv[2])" \
      "$models/${m}_in.f32" "$out/$m.calib.f32"
    "$coffer" calibrate "$models/${m}_dyn.onnx" --input "$out/$m.calib.f32" -o "$out/$m.calib" --batch 8 \
      --threads "$threads"
  done
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the first round; $(nproc) CPUs; coffer in $precision" >&2
for r in $(seq 1 "$rounds"); do
  for c in $cases; do
    m=${c%:*}
    b=${c#*:}
    if [ $((r % 2)) -eq 1 ]; then
      run_coffer "$m" "$b" >>"$out/coffer.$m.$b"
      run_ort "$m" "$b" >>"$out/ort.$m.$b"
    else
      run_ort "$m" "$b" >>"$out/ort.$m.$b"
      run_coffer "$m" "$b" >>"$out/coffer.$m.$b"
    fi
    printf 'round %d %s b%s: coffer %s ms, ort %s ms\n' "$r" "$m" "$b" \
      "$(tail -1 "$out/coffer.$m.$b" | sed 's/.*"median_ms":\([0-9.]*\).*/\1/')" \
      "$(tail -1 "$out/ort.$m.$b" | sed 's/.*"median_ms":\([0-9.]*\).*/\1/')"
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the last round" >&2
best() { sed 's/.*"median_ms":\([0-9.]*\).*/\1/' "$1" | sort -g | head -1; }
largest() { sed "s/.*\"$2\":\\([0-9.]*\\).*/\\1/" "$1" | sort -g | tail -1; }
# min / median / max of a field over the rounds (a load's time varies with
# how the OS finds fresh memory for the packed weights: report its spread)
spread() {
  sed "s/.*\"$2\":\\([0-9.]*\\).*/\\1/" "$1" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%s / %s / %s", v[1], v[int((NR + 1) / 2)], v[NR] }'
}
echo
echo "| model | batch | coffer ms/batch | ORT ms/batch | coffer / ORT (latency) | ORT / coffer (throughput) | coffer peak RSS MiB (max) | ORT peak RSS MiB | coffer load ms (min / median / max) |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in $cases; do
  m=${c%:*}
  b=${c#*:}
  cb=$(best "$out/coffer.$m.$b")
  ob=$(best "$out/ort.$m.$b")
  rss=$(largest "$out/coffer.$m.$b" peak_rss_mb)
  load=$(spread "$out/coffer.$m.$b" load_ms)
  orss=$(ort_rss "$models/${m}_dyn.onnx" "$b" "$threads" 1 3 "$models/${m}_in.f32")
  awk -v m="$m" -v b="$b" -v c="$cb" -v o="$ob" -v rss="$rss" -v orss="$orss" -v load="$load" \
    'BEGIN { printf "| %s | %s | %.3f | %.3f | %.2f | %.2f | %s | %s | %s |\n", m, b, c, o, c / o, o / c, rss, orss, load }'
done
