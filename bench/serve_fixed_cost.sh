#!/usr/bin/env bash
# What `coffer serve` costs around a model run, without the run: the
# resnet50-sized gRPC Predict of bench/serve_overhead.sh (a [1, 3, 224, 224]
# float tensor_content, 602 kB, over TLS and HTTP/2, one request in flight)
# answered by a model that does almost nothing (one GlobalAveragePool,
# written here with Debian's python3-onnx). Its latency is the server's
# fixed cost per request (transport both ways, decoding, encoding), which
# the overhead target's noisy 30 ms inference hides: rounds agree within
# ~0.01 ms on an idle machine. With two binaries it is an A/B: each serves
# the same model on its own port, the order alternating per round.
#   bash bench/serve_fixed_cost.sh [ROUNDS] [RUNS] [COFFER_A [COFFER_B]]
# (no binary: build/bench's coffer, built Release here).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
runs=${2:-200}
a=${3:-}
b=${4:-}
if [ -z "$a" ]; then
  cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/bench --target coffer >"${TMPDIR:-/tmp}/serve_fixed_cost_build.log" ||
    { cat "${TMPDIR:-/tmp}/serve_fixed_cost_build.log" >&2; exit 1; }
  a=$PWD/build/bench/src/cli/coffer
fi
a=$(realpath "$a")
[ -z "$b" ] || b=$(realpath "$b")
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh
bench_cert
/usr/bin/python3 - "$tmp/gap.onnx" <<'PY'
import sys
from onnx import helper, TensorProto, save
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 1, 1])
g = helper.make_graph([helper.make_node("GlobalAveragePool", ["input"], ["output"])], "gap", [x], [y])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
"$a" pf gen-key -w "$tmp/model.key" 2>/dev/null
(cd "$tmp" && "$a" pf encrypt -w model.key -i gap.onnx -o models/gap/1/model.onnx 2>/dev/null)
head -c $((3 * 224 * 224 * 4)) /dev/urandom >"$tmp/in.f32"
/usr/bin/python3 bench/grpc_request.py "$tmp/predict.grpc" gap input 1,3,224,224 "$tmp/in.f32"
start() { # BIN PORT LOG: the same flags as serve_overhead.sh
  (cd "$tmp" && exec env COFFER_LOG_LEVEL=warn "$1" serve --model_base_path models/gap --model_name gap \
    --tls-cert cert.pem --tls-key key.pem --model-key model.key --host 127.0.0.1 --port "$2" --rest_api_port 0 \
    --threads 1 --model_instances 1 --model_threads 2 >"$3" 2>&1) &
  pids+=($!)
}
h2() { h2load -t1 -c1 -m1 -d "$tmp/predict.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "$@"; }
sides="a"
pa=$(free_port)
start "$a" "$pa" "$tmp/a.log"
if [ -n "$b" ]; then
  sides="a b"
  pb=$(free_port)
  start "$b" "$pb" "$tmp/b.log"
fi
url() { echo "https://127.0.0.1:$([ "$1" = a ] && echo "$pa" || echo "$pb")/tensorflow.serving.PredictionService/Predict"; }
for s in $sides; do
  for _ in $(seq 600); do h2 -n1 "$(url "$s")" 2>/dev/null | grep -q '1 succeeded' && break; sleep 0.1; done
  h2 -n1 "$(url "$s")" 2>/dev/null | grep -q '1 succeeded' || { echo "side $s: gRPC predict failed" >&2; cat "$tmp/$s.log" >&2; exit 1; }
done
one() { # SIDE: median ms of RUNS sequential predicts after 20 warm-up ones
  h2 -n20 "$(url "$1")" >/dev/null 2>&1
  rm -f "$tmp/h2.log"
  local o
  o=$(h2 -n "$runs" --log-file="$tmp/h2.log" "$(url "$1")" 2>/dev/null)
  grep -q "$runs succeeded" <<<"$o" || { echo "h2load: $(grep requests: <<<"$o")" >&2; exit 1; }
  sort -n -k3 "$tmp/h2.log" | awk '{d[NR] = $3} END {printf "%.3f\n", d[int((NR + 1) / 2)] / 1000}'
}
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the first round; $(nproc) CPUs" >&2
for r in $(seq 1 "$rounds"); do
  order=$sides
  [ $((r % 2)) -eq 0 ] && [ -n "$b" ] && order="b a"
  line="round $r:"
  for s in $order; do
    m=$(one "$s")
    echo "$m" >>"$tmp/$s.ms"
    line="$line $s $m ms"
  done
  echo "$line" >&2
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the last round" >&2
grep -q 'grpc_status=[1-9]' "$tmp"/*.log && { echo "some predicts failed" >&2; exit 1; }
for s in $sides; do
  printf 'side %s: best round median %s ms, median round %s ms\n' "$s" "$(sort -g "$tmp/$s.ms" | head -1)" \
    "$(sort -g "$tmp/$s.ms" | awk '{d[NR] = $1} END {print d[int((NR + 1) / 2)]}')"
done
