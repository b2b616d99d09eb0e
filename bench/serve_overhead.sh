#!/usr/bin/env bash
# The model server's overhead over bare inference (issue 6: at most 5 % for
# resnet50 at batch 1), in one run: `coffer bench` on
# build/nn-bench-models/MODEL_dyn.onnx (exported by ../shared/bench/
# export_models.py, as bench/nn_bench.sh does) beside `coffer serve` with the
# same model (a protected file, standalone TLS, one instance, the same
# kernel threads: --model_threads THREADS) answering sequential gRPC Predict
# requests at batch 1 (h2load -c1 -m1: one connection, one request in
# flight; the request is the model's input file as tensor_content, the
# answer TF's typed float_val). Per round, the order alternating: coffer
# bench --runs RUNS after 5 warm-up runs, and RUNS requests after 5 warm-up
# requests; each side's median per round; each side's best round; the ratio
# serve / bench (the client-observed latency, TLS, HTTP/2, protobuf and all,
# over the bare run).
#   bash bench/serve_overhead.sh [ROUNDS] [RUNS] [THREADS] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
runs=${2:-20}
threads=${3:-2}
model=${4:-resnet50}
. bench/lib.sh
bench_coffer_models "$model" serve_overhead
bench_scratch
bench_cert
"$coffer" pf gen-key -w "$tmp/model.key" 2>/dev/null
(cd "$tmp" && "$coffer" pf encrypt -w model.key -i "$models/${model}_dyn.onnx" -o "models/$model/1/model.onnx" 2>/dev/null)

gport=$(free_port)
(cd "$tmp" && exec env COFFER_LOG_LEVEL=warn "$coffer" serve --model_base_path "models/$model" --model_name "$model" \
  --tls-cert cert.pem --tls-key key.pem --model-key model.key --host 127.0.0.1 --port "$gport" --rest_api_port 0 \
  --threads 1 --model_instances 1 --model_threads "$threads" >"$tmp/serve.log" 2>&1) &
spid=$!
# the request: a framed PredictRequest, the input file as a [1, ...] float tensor
case $model in
  resnet50 | mobilenet_v2) shape=1,3,224,224 ;;
  mlp) shape=1,784 ;;
  *) echo "serve_overhead.sh: the input shape of $model is not known here" >&2; exit 2 ;;
esac
/usr/bin/python3 bench/grpc_request.py "$tmp/predict.grpc" "$model" input "$shape" "$models/${model}_in.f32"
url="https://127.0.0.1:$gport/tensorflow.serving.PredictionService/Predict"
h2() { h2load -t1 -c1 -m1 -d "$tmp/predict.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "$@" "$url"; }
for _ in $(seq 600); do
  h2 -n1 2>/dev/null | grep '1 succeeded' >/dev/null && break
  kill -0 "$spid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
  sleep 0.1
done
h2 -n1 2>/dev/null | grep '1 succeeded' >/dev/null || { echo "gRPC predict failed" >&2; cat "$tmp/serve.log" >&2; exit 1; }
run_bench() {
  "$coffer" bench "$models/${model}_dyn.onnx" --batch 1 --threads "$threads" --runs "$runs" --warmup 5 \
    --input "$models/${model}_in.f32" | sed 's/.*"median_ms":\([0-9.]*\).*/\1/'
}
run_serve() {
  h2 -n5 >/dev/null 2>&1
  rm -f "$tmp/h2.log"
  local o
  o=$(h2 -n "$runs" --log-file="$tmp/h2.log" 2>/dev/null)
  grep -q "$runs succeeded" <<<"$o" || { echo "h2load: $(grep requests: <<<"$o")" >&2; exit 1; }
  # per-request times (µs, third column); h2load counts HTTP 200s, so check grpc-status in the metrics below
  sort -n -k3 "$tmp/h2.log" | awk '{d[NR] = $3} END {printf "%.3f\n", d[int((NR + 1) / 2)] / 1000}'
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the first round; $(nproc) CPUs" >&2
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    b=$(run_bench); s=$(run_serve)
  else
    s=$(run_serve); b=$(run_bench)
  fi
  echo "$b" >>"$tmp/bench"
  echo "$s" >>"$tmp/serve"
  printf 'round %d: coffer bench median %s ms, coffer serve gRPC median %s ms\n' "$r" "$b" "$s" >&2
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the last round" >&2
grep -q 'grpc_status=[1-9]' "$tmp/serve.log" && { echo "some predicts failed" >&2; exit 1; }
b=$(sort -g "$tmp/bench" | head -1)
s=$(sort -g "$tmp/serve" | head -1)
awk -v m="$model" -v t="$threads" -v b="$b" -v s="$s" -v r="$rounds" -v n="$runs" 'BEGIN {
  printf "%s batch 1, %d threads, %d rounds of %d: bare coffer bench %.3f ms, coffer serve gRPC Predict %.3f ms\n",
    m, t, r, n, b, s
  printf "serve / bench: %.3f (overhead %+.1f %%)\n", s / b, (s / b - 1) * 100 }'
