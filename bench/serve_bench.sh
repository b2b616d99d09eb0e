#!/usr/bin/env bash
# `coffer serve` on a tiny model beside the serving limit, in one run: the
# MLP of ../shared/bench (784-512-256-10, exported by its export_models.py
# with Debian's python, dynamic batch), encrypted as a protected file and
# served standalone over TLS; nginx answering a fixed 36-byte JSON body over
# TLS (bench/lib.sh, as in net_bench.sh). The server runs an instance of the
# model per thread, each on one thread (--model_instances THREADS
# --model_threads 1). Per round, alternating the order:
#   n      nginx, wrk -t2 -c32 -d10s over HTTP/1.1 keep-alive
#   rest   REST :predict of one 784-float instance, wrk the same way
#   grpc   gRPC Predict of the same input (tensor_content), h2load -c32 -m1
#   h2n    nginx over HTTP/2, h2load -c32 -m1 (the HTTP/2 limit, for gRPC)
#   grpcm  gRPC Predict as gRPC clients send calls: the same 32 under way,
#          4 on each of 8 connections (h2load -c8 -m4; a gRPC channel
#          multiplexes its calls on one connection)
#   h2nm   nginx over HTTP/2 the same way (h2load -c8 -m4)
# With BATCH=1 the server runs with --enable_batching (max_batch_size 32,
# num_batch_threads = THREADS, batch_timeout_micros 0, no
# allowed_batch_sizes: as TF Serving, batches of any size, not padded; the
# MLP's packed weights are kept when nn re-plans for a new size), and the
# batch sizes it made are printed. ALLOWED="1, 2, 4, 8, 16, 32" adds that
# allowed_batch_sizes list (runs padded to those sizes).
# Prints every round, each side's best round, p50/p99 latency of that round,
# the CPU a request took (the server's from /proc, the load generator's from
# GNU time; medians of the rounds) and the rate the machine's CPUs would allow at that
# cost with nothing else running, and the ratios REST/nginx and gRPC/REST.
#   bash bench/serve_bench.sh [ROUNDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
threads=${2:-2}
shared=${COFFER_SHARED_DIR:-$(cd .. && pwd)/shared}
bash tools/install-deps.sh
cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench --target coffer >/dev/null
coffer=$PWD/build/bench/src/cli/coffer
tmp=$(mktemp -d)
chmod 755 "$tmp"
npid=""
spid=""
cleanup() {
  for p in $spid $npid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh
bench_cert
body='{"status":"ok","model":"benchmarks"}'
bench_nginx "$threads" "$body"

# the model, as the server keeps it: BASE/1/model.onnx, a protected file
/usr/bin/python3 -c "import sys; sys.argv = ['x', '$tmp/export']; sys.path.insert(0, '$shared/bench');
import export_models; export_models.export('mlp')" >/dev/null
"$coffer" pf gen-key -w "$tmp/model.key" 2>/dev/null
(cd "$tmp" && "$coffer" pf encrypt -w model.key -i export/mlp_dyn.onnx -o models/mlp/1/model.onnx 2>/dev/null)

# the requests: one instance of 784 values, as JSON and as a framed PredictRequest
/usr/bin/python3 - "$tmp" <<'PY'
import json, random, struct, sys
d = sys.argv[1]
random.seed(3)
x = [round(random.random(), 4) for _ in range(784)]
json.dump({"instances": [x]}, open(f"{d}/predict.json", "w"))
open(f"{d}/post.lua", "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    f'local f = io.open("{d}/predict.json", "r")\nwrk.body = f:read("*a")\nf:close()\n')
open(f"{d}/input.f32", "wb").write(struct.pack("<784f", *x))
PY
/usr/bin/python3 bench/grpc_request.py "$tmp/predict.grpc" mlp input 1,784 "$tmp/input.f32"

gport=$(free_port)
rport=$(free_port)
extra=(--model_instances "$threads" --model_threads 1)
if [ "${BATCH:-0}" = 1 ]; then
  printf 'max_batch_size { value: 32 }\nnum_batch_threads { value: %d }\nbatch_timeout_micros { value: 0 }\n' \
    "$threads" >"$tmp/batching.cfg"
  [ -z "${ALLOWED:-}" ] || echo "allowed_batch_sizes: [$ALLOWED]" >>"$tmp/batching.cfg"
  extra=(--model_threads 1 --enable_batching --batching_parameters_file "$tmp/batching.cfg")
fi
# the access log is one line per request, as nginx's is off here: keep it at warn
(cd "$tmp" && exec env COFFER_LOG_LEVEL=warn "$coffer" serve --model_base_path models/mlp --model_name mlp \
  --tls-cert cert.pem --tls-key key.pem --model-key model.key --host 127.0.0.1 --port "$gport" \
  --rest_api_port "$rport" --threads "$threads" "${extra[@]}" >"$tmp/serve.log" 2>&1) &
spid=$!
for _ in $(seq 100); do
  curl -s --cacert "$tmp/cert.pem" "https://127.0.0.1:$rport/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 0.3
# sanity: every side answers what it should
got=$(curl -s --cacert "$tmp/cert.pem" "https://127.0.0.1:$nport/")
[ "$got" = "$body" ] || { echo "nginx answered '$got'" >&2; exit 1; }
got=$(curl -s --cacert "$tmp/cert.pem" -d @"$tmp/predict.json" "https://127.0.0.1:$rport/v1/models/mlp:predict")
grep -q '"predictions"' <<<"$got" || { echo "REST predict answered '$got'" >&2; cat "$tmp/serve.log" >&2; exit 1; }
timeout 20 h2load -n1 -c1 -d "$tmp/predict.grpc" -H 'content-type: application/grpc' -H 'te: trailers' \
  "https://127.0.0.1:$gport/tensorflow.serving.PredictionService/Predict" 2>/dev/null | grep '1 succeeded' >/dev/null ||
  { echo "gRPC predict failed" >&2; exit 1; }
grpc_h2() {
  run_h2 "https://127.0.0.1:$gport/tensorflow.serving.PredictionService/Predict" "$@" -d "$tmp/predict.grpc" \
    -H 'content-type: application/grpc' -H 'te: trailers'
}
sides="n rest grpc h2n grpcm h2nm"
ngx=$(nginx_pids)
for r in $(seq 1 "$rounds"); do
  printf '\rround %d/%d' "$r" "$rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then order=$sides; else order=$(echo "$sides" | tr ' ' '\n' | tac | tr '\n' ' '); fi
  for side in $order; do
    case $side in n | h2n | h2nm) pids=$ngx ;; *) pids=$spid ;; esac
    export CPU_PIDS=$pids CPU_LOG=$tmp/cpu_$side
    case $side in
    n) WRK_LATENCY="$tmp/lat_n" run_wrk "https://127.0.0.1:$nport/" >>"$tmp/rps_n" ;;
    rest) WRK_LATENCY="$tmp/lat_rest" run_wrk "https://127.0.0.1:$rport/v1/models/mlp:predict" -s "$tmp/post.lua" \
            >>"$tmp/rps_rest" ;;
    grpc) H2_LATENCY="$tmp/lat_grpc" grpc_h2 -c32 -m1 >>"$tmp/rps_grpc" ;;
    h2n) H2_LATENCY="$tmp/lat_h2n" run_h2 "https://127.0.0.1:$nport/" -c32 -m1 >>"$tmp/rps_h2n" ;;
    grpcm) H2_LATENCY="$tmp/lat_grpcm" grpc_h2 -c8 -m4 >>"$tmp/rps_grpcm" ;;
    h2nm) H2_LATENCY="$tmp/lat_h2nm" run_h2 "https://127.0.0.1:$nport/" -c8 -m4 >>"$tmp/rps_h2nm" ;;
    esac
  done
done
echo >&2
# every request was answered (gRPC status 0 only: h2load counts HTTP 200s)
curl -s --cacert "$tmp/cert.pem" "https://127.0.0.1:$rport/monitoring/prometheus/metrics" |
  grep -E '^coffer_serve_requests_total|^coffer_serve_batch_size_(sum|count)' >&2
/usr/bin/python3 - "$tmp" "$rounds" "$threads" "${BATCH:-0}" <<'PY'
import os, statistics, sys
d, rounds, threads, batch = sys.argv[1:5]
def col(name):
    p = os.path.join(d, name)
    return [line.split() for line in open(p) if line.strip()] if os.path.exists(p) else []
print(f"{rounds} rounds, {threads} threads/workers each, batching {'on' if batch == '1' else 'off'}")
best = {}
for side, label in (("n", "nginx fixed body, wrk HTTP/1.1"), ("rest", "coffer REST :predict, wrk HTTP/1.1"),
                    ("grpc", "coffer gRPC Predict, h2load -m1"), ("h2n", "nginx fixed body, h2load -m1"),
                    ("grpcm", "coffer gRPC Predict, h2load -c8 -m4"), ("h2nm", "nginx fixed body, h2load -c8 -m4")):
    rps = [float(x[0]) for x in col("rps_" + side)]
    lat = col("lat_" + side)
    if not rps:
        continue
    i = max(range(len(rps)), key=lambda k: rps[k])
    best[side] = rps[i]
    print(f"  {label}: rounds " + " ".join(f"{x:,.0f}" for x in rps))
    print(f"    best {rps[i]:,.0f} req/s, p50 {float(lat[i][0]):.2f} ms, p99 {float(lat[i][1]):.2f} ms")
    cpu = col("cpu_" + side)
    if cpu:
        srv = statistics.median(float(x[0]) for x in cpu)
        cli = statistics.median(float(x[1]) for x in cpu)
        print(f"    CPU a request (medians of the rounds): server {srv:.1f} us, load generator {cli:.1f} us;"
              f" the {os.cpu_count()} CPUs could do at most {os.cpu_count() * 1e6 / (srv + cli):,.0f} req/s")
for a, b, label in (("rest", "n", "REST predict / nginx (HTTP/1.1)"), ("grpc", "rest", "gRPC predict / REST predict"),
                    ("grpc", "h2n", "gRPC predict / nginx (HTTP/2)"),
                    ("grpcm", "rest", "gRPC predict, 4 calls a connection / REST predict"),
                    ("grpcm", "n", "gRPC predict, 4 calls a connection / nginx (HTTP/1.1)"),
                    ("grpcm", "h2nm", "gRPC predict, 4 calls a connection / nginx (HTTP/2, the same)")):
    if a in best and b in best:
        print(f"{label}: {best[a] / best[b]:.2f}")
PY
