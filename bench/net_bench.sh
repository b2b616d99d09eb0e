#!/usr/bin/env bash
# The serving limit, in one run: coffer's bench_net and nginx (Debian's,
# 2 workers, access_log off, `return 200 '<36-byte JSON>'`) answering the
# same fixed body over TLS with keep-alive, both on 127.0.0.1 free ports with
# the same P-256 certificate, loaded in turn with `wrk -t2 -c32 -d10s`,
# ROUNDS times, alternating which goes first. With H2=1, also h2load over
# HTTP/2 (-c32 -m10 -D10). With SHARED=1, a third side: bench_net with one
# shared listening socket instead of one SO_REUSEPORT socket per thread.
# With COORD=1, another side: `coffer coordinator --simulation` answering
# GET /api/v2/status (its JSend status body, over TLS with its own P-256
# root certificate, one access-log line per request to /dev/null), same
# threads (issue 5's target: >= 0.5x nginx).
# Prints each side's best round and the ratio.
#   bash bench/net_bench.sh [ROUNDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
threads=${2:-2}
bash tools/install-deps.sh
cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench --target bench_net >/dev/null
if [ "${COORD:-0}" = 1 ]; then cmake --build build/bench --target coffer >/dev/null; fi
tmp=$(mktemp -d)
chmod 755 "$tmp"
cpid=""
npid=""
spid=""
kpid=""
cleanup() {
  [ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
  [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  [ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh
bench_cert
body='{"status":"ok","model":"benchmarks"}'
[ ${#body} -eq 36 ] || { echo "body is not 36 bytes" >&2; exit 1; }
bench_nginx "$threads" "$body"
./build/bench/bench/bench_net --cert "$tmp/cert.pem" --key "$tmp/key.pem" --threads "$threads" >"$tmp/port" &
cpid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
cport=$(sed -n 's/^port=//p' "$tmp/port")
sides="n c"
if [ "${SHARED:-0}" = 1 ]; then
  ./build/bench/bench/bench_net --cert "$tmp/cert.pem" --key "$tmp/key.pem" --threads "$threads" \
    --shared-listener >"$tmp/sport" &
  spid=$!
  for _ in $(seq 50); do [ -s "$tmp/sport" ] && break; sleep 0.1; done
  sport=$(sed -n 's/^port=//p' "$tmp/sport")
  sides="n c s"
fi
if [ "${COORD:-0}" = 1 ]; then
  kport=$(free_port)
  kmesh=$(free_port)
  COFFER_SIM_PLATFORM_KEY=$tmp/sim-key.pem ./build/bench/src/cli/coffer coordinator --simulation \
    --client-addr "127.0.0.1:$kport" --mesh-addr "127.0.0.1:$kmesh" --seal-dir "$tmp/seal" \
    --threads "$threads" >/dev/null 2>&1 &
  kpid=$!
  for _ in $(seq 100); do curl -sk "https://127.0.0.1:$kport/api/v2/status" | grep -q '"success"' && break; sleep 0.1; done
  sides="$sides k"
fi
sleep 0.5
# sanity: both answer the same body
for p in "$cport" "$nport" ${sport:-}; do
  got=$(curl -s --cacert "$tmp/cert.pem" "https://127.0.0.1:$p/")
  [ "$got" = "$body" ] || { echo "port $p answered '$got'" >&2; exit 1; }
done
if [ -n "${kport:-}" ]; then
  curl -sk "https://127.0.0.1:$kport/api/v2/status" | grep -q '"status":"success"' || { echo "coordinator status failed" >&2; exit 1; }
fi
for r in $(seq 1 "$rounds"); do
  printf '\rround %d/%d' "$r" "$rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then order=$sides; else order=$(echo "$sides" | rev); fi
  for side in $order; do
    port=$nport; [ "$side" = c ] && port=$cport; [ "$side" = s ] && port=$sport
    if [ "$side" = k ]; then run_wrk "https://127.0.0.1:$kport/api/v2/status" >>"$tmp/wrk_k"; continue; fi
    run_wrk "https://127.0.0.1:$port/" >>"$tmp/wrk_$side"
    if [ "${H2:-0}" = 1 ]; then run_h2 "https://127.0.0.1:$port/" -c32 -m10 >>"$tmp/h2_$side"; fi
  done
done
echo >&2
/usr/bin/python3 - "$tmp" "$rounds" "$threads" <<'PY'
import os, sys
d, rounds, threads = sys.argv[1], sys.argv[2], sys.argv[3]
def best(name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    vals = [float(x) for x in open(p) if x.strip()]
    return max(vals) if vals else None
print(f"{rounds} rounds, {threads} threads/workers each, best round per side")
for name in sorted(os.listdir(d)):
    if name.startswith(("wrk_", "h2_")):
        print(f"  {name}: " + " ".join(f"{float(x):,.0f}" for x in open(os.path.join(d, name)) if x.strip()))
for proto, label in (("wrk", "HTTP/1.1 wrk -t2 -c32 -d10s"), ("h2", "HTTP/2 h2load -c32 -m10 -D10")):
    c, n = best(proto + "_c"), best(proto + "_n")
    if c is None or n is None:
        continue
    print(f"{label}: coffer {c:,.0f} req/s, nginx {n:,.0f} req/s, ratio {c / n:.2f}")
    k = best(proto + "_k")
    if k is not None:
        print(f"  coffer coordinator GET /api/v2/status: {k:,.0f} req/s, ratio to nginx {k / n:.2f}")
    sh = best(proto + "_s")
    if sh is not None:
        print(f"  coffer with one shared listener: {sh:,.0f} req/s, {sh / c:.2f} of SO_REUSEPORT")
PY
