#!/usr/bin/env bash
# What allowed_batch_sizes costs a batching server in memory, load time and
# throughput, in one run: `coffer serve` with a CNN (MODEL, default
# resnet50, from build/nn-bench-models as bench/nn_bench.sh exports it; a
# protected file with a TF Serving warm-up file of one 1-item Predict, so
# every batch thread's instance is made and warmed at load), --enable_batching
# with num_batch_threads THREADS, --model_threads 1, batch_timeout_micros 0,
# max_batch_size the list's last entry, and either
#   list    allowed_batch_sizes: [LIST] (default 1, 2, 4, 8)
#   none    no allowed_batch_sizes (batches of any size, not padded)
# Per round, the order alternating: start the server, read its load and
# warm-up times from its log and its peak RSS (VmHWM) once it is up, then
# CONNS connections (default 3) send gRPC Predicts for SECONDS (h2load -m1;
# batches of 1 to CONNS items, so several sizes), and the peak RSS again.
# Prints every round and each side's best round (least RSS, most req/s).
# A server with the list runs each batch at the next listed size; one
# model instance per batch thread serves every size (nn re-plans for a new
# size and keeps the packed weights of the sizes it ran).
#   bash bench/serve_batch_memory.sh [ROUNDS] [THREADS] [CONNS] [SECONDS] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
conns=${3:-3}
secs=${4:-10}
model=${5:-resnet50}
list=${LIST:-1, 2, 4, 8}
. bench/lib.sh
bench_coffer_models "$model" serve_batch_memory
bench_scratch
bench_cert
case $model in
  resnet50 | mobilenet_v2) shape=1,3,224,224 ;;
  mlp) shape=1,784 ;;
  *) echo "serve_batch_memory.sh: the input shape of $model is not known here" >&2; exit 2 ;;
esac
"$coffer" pf gen-key -w "$tmp/model.key" 2>/dev/null
(cd "$tmp" && "$coffer" pf encrypt -w model.key -i "$models/${model}_dyn.onnx" -o "models/$model/1/model.onnx" 2>/dev/null)
# the request (a framed PredictRequest of the model's input file) and the
# warm-up file: that request, unframed, as a TFRecord of one PredictionLog
/usr/bin/python3 bench/grpc_request.py "$tmp/predict.grpc" "$model" input "$shape" "$models/${model}_in.f32"
/usr/bin/python3 - "$tmp" <<'PY'
import struct, sys
d = sys.argv[1]
req = open(f"{d}/predict.grpc", "rb").read()[5:]
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])
def ld(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF
mask = lambda c: (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
rec = ld(6, ld(1, req))  # PredictionLog { predict_log { request } }
n = struct.pack("<Q", len(rec))
open(f"{d}/warmup", "wb").write(n + struct.pack("<I", mask(crc32c(n))) + rec + struct.pack("<I", mask(crc32c(rec))))
PY
mkdir -p "$tmp/models/$model/1/assets.extra"
(cd "$tmp" && "$coffer" pf encrypt -w model.key -i warmup -o "models/$model/1/assets.extra/tf_serving_warmup_requests" \
  2>/dev/null)
max=$(tr ',' '\n' <<<"$list" | tail -1 | tr -d ' ')
for side in list none; do
  printf 'max_batch_size { value: %d }\nnum_batch_threads { value: %d }\nbatch_timeout_micros { value: 0 }\n' \
    "$max" "$threads" >"$tmp/$side.cfg"
done
echo "allowed_batch_sizes: [$list]" >>"$tmp/list.cfg"

# one_round SIDE: a server, its times and RSS, the load; appends a line to $tmp/res_SIDE
one_round() {
  local side=$1 gport rport load warm rss0 rps rss1
  gport=$(free_port)
  rport=$(free_port)
  (cd "$tmp" && exec env COFFER_LOG_LEVEL=info "$coffer" serve --model_base_path "models/$model" --model_name "$model" \
    --tls-cert cert.pem --tls-key key.pem --model-key model.key --host 127.0.0.1 --port "$gport" \
    --rest_api_port "$rport" --threads 2 --model_threads 1 --enable_batching --batching_parameters_file "$side.cfg" \
    >"$tmp/serve.log" 2>&1) &
  spid=$!
  for _ in $(seq 600); do
    curl -s --cacert "$tmp/cert.pem" "https://127.0.0.1:$rport/healthz" >/dev/null 2>&1 && break
    kill -0 "$spid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
    sleep 0.2
  done
  load=$(sed -n 's/.* loaded in \([0-9.]*\) ms.*/\1/p' "$tmp/serve.log")
  warm=$(sed -n 's/.* warmed up with .* in \([0-9.]*\) ms (\(.*\)).*/\1 ms (\2)/p' "$tmp/serve.log")
  rss0=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$spid/status")
  rps=$(run_h2 "https://127.0.0.1:$gport/tensorflow.serving.PredictionService/Predict" -D"$secs" -c"$conns" -m1 \
    -d "$tmp/predict.grpc" -H 'content-type: application/grpc' -H 'te: trailers')
  rss1=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$spid/status")
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  spid=""
  echo "$rss0 $rss1 $rps $load $warm" >>"$tmp/res_$side"
}
for r in $(seq 1 "$rounds"); do
  printf '\rround %d/%d' "$r" "$rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then order="list none"; else order="none list"; fi
  for side in $order; do one_round "$side"; done
done
echo >&2
echo "$model, $threads batch threads (--model_threads 1), warm-up of one 1-item Predict, $conns connections for ${secs} s"
for side in list none; do
  case $side in
    list) echo "allowed_batch_sizes [$list]:" ;;
    none) echo "no allowed_batch_sizes:" ;;
  esac
  awk '{printf "  RSS after warm-up %s MiB, after the load %s MiB, %s req/s, load %s ms, warm-up %s\n", $1, $2, $3, $4,
        substr($0, index($0, $5))}' "$tmp/res_$side"
  sort -n -k1 "$tmp/res_$side" | head -1 | awk '{printf "  best: RSS after warm-up %s MiB", $1}'
  sort -n -k2 "$tmp/res_$side" | head -1 | awk '{printf ", after the load %s MiB", $2}'
  sort -g -r -k3 "$tmp/res_$side" | head -1 | awk '{printf ", %s req/s\n", $3}'
done
