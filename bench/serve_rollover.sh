#!/usr/bin/env bash
# Memory and availability of a version roll-over in `coffer serve` (issue 6:
# TF Serving needs twice a model's memory on a reload; an enclave has a fixed
# budget). One server per round serves MODEL (build/nn-bench-models/
# MODEL_dyn.onnx, exported as bench/nn_bench.sh does) as a protected file,
# version 1, answers one REST predict, then version 2 is dropped into its
# base path. Read from /proc: resident memory before, the process's peak
# (VmHWM) once version 1 is unloaded and version 2 has answered a predict.
# Read from the server's log: how long no version was AVAILABLE (from
# "version 1 retired" to "version 2 AVAILABLE"; 0 when version 2 came
# first). The two --aspired_version_policy values alternate, ROUNDS each.
#   bash bench/serve_rollover.sh [ROUNDS] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
model=${2:-resnet50}
. bench/lib.sh
bench_coffer_models "$model" serve_rollover
case $model in
  resnet50 | mobilenet_v2) shape='[[[[0.5]*224]*224]*3]' ;;
  mlp) shape='[[0.5]*784]' ;;
  *) echo "serve_rollover.sh: the input shape of $model is not known here" >&2; exit 2 ;;
esac
bench_scratch
bench_cert
"$coffer" pf gen-key -w "$tmp/model.key" 2>/dev/null
for v in 1 2; do
  (cd "$tmp" && "$coffer" pf encrypt -w model.key -i "$models/${model}_dyn.onnx" -o "m/$v/model.onnx" 2>/dev/null)
done
mv "$tmp/m/2" "$tmp/v2"
/usr/bin/python3 -c "import json; print(json.dumps({'instances': $shape}))" >"$tmp/in.json"
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$spid/status"; }
# seconds between the first lines matching $2 and $3 in log $1 (0 when $3 comes first)
gap() {
  /usr/bin/python3 - "$@" <<'PY'
import re, sys, datetime
log, a, b = sys.argv[1:4]
t = {}
for line in open(log):
    for k, p in (("a", a), ("b", b)):
        if k not in t and p in line:
            t[k] = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
d = (t["b"] - t["a"]).total_seconds() if "a" in t and "b" in t else float("nan")
print("%.0f" % max(d * 1000, 0))
PY
}
round() {
  local mode=$1 log=$tmp/$1.log
  local gport rport
  gport=$(free_port)
  rport=$(free_port)
  (cd "$tmp" && exec "$coffer" serve --model_base_path m --model_name "$model" --tls-cert cert.pem --tls-key key.pem \
    --model-key model.key --aspired_version_policy "$mode" --file_system_poll_wait_seconds 1 --host 127.0.0.1 \
    --port "$gport" --rest_api_port "$rport" --threads 1 >"$log" 2>&1) &
  spid=$!
  for _ in $(seq 600); do grep -q "gRPC on port" "$log" && break; sleep 0.1; done
  local url="https://127.0.0.1:$rport/v1/models/$model:predict"
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" -d @"$tmp/in.json" "$url")" = 200 ] ||
    { echo "predict on version 1 failed" >&2; cat "$log" >&2; exit 1; }
  local before peak after
  before=$(kib VmRSS)
  mv "$tmp/v2" "$tmp/m/2"
  for _ in $(seq 1200); do
    grep -q "version 2 AVAILABLE" "$log" && grep -q "version 1 unloaded" "$log" && break
    sleep 0.05
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" -d @"$tmp/in.json" "$url")" = 200 ] ||
    { echo "predict on version 2 failed" >&2; cat "$log" >&2; exit 1; }
  peak=$(kib VmHWM)
  after=$(kib VmRSS)
  kill -TERM "$spid"
  wait "$spid" || true
  spid=""
  mv "$tmp/m/2" "$tmp/v2"
  printf '%s %d %d %d %s\n' "$mode" $((before / 1024)) $((peak / 1024)) $((after / 1024)) \
    "$(gap "$log" "version 1 retired" "version 2 AVAILABLE")" | tee -a "$tmp/rows" >&2
}
echo "mode rss_before_MiB peak_MiB rss_after_MiB unavailable_ms" >&2
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    round availability_preserving; round resource_preserving
  else
    round resource_preserving; round availability_preserving
  fi
done
awk -v m="$model" '{ n[$1]++; b[$1] += $2; if ($3 > p[$1]) p[$1] = $3; g[$1] += $5 }
  END {
    printf "%s roll-over, %d rounds each:\n", m, n["availability_preserving"]
    for (k in n) printf "  %-24s resident before %.0f MiB, peak %d MiB (the most of the rounds), no version for %.0f ms (mean)\n",
      k, b[k] / n[k], p[k], g[k] / n[k]
    printf "peak resource / availability: %.2f\n", p["resource_preserving"] / p["availability_preserving"] }' "$tmp/rows"
