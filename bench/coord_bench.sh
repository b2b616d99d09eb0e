#!/usr/bin/env bash
# Activations per second, in one run: `coffer coordinator --simulation` on
# 127.0.0.1 (seal folder on this machine's disk: every activation is
# fdatasync'ed to the audit log before it is answered; concurrent ones share
# a sync), a manifest with one Simulation marble, and bench_coord making
# marbles activate over keep-alive HTTPS for 10 s, ROUNDS times. Prints each
# round, the best, and the log syncs per activation the coordinator reports
# at exit (group commit). No peer runs here: MarbleRun is not packaged for
# Debian; the target is absolute (>= 1,000/s on 2 cores). With
# BEFORE=/path/to/an/older/coffer, that coordinator runs beside this one in
# every round (same client, alternating which goes first) for a before/after.
#   [BEFORE=coffer] bash bench/coord_bench.sh [ROUNDS] [SERVER_THREADS] [CLIENT_THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
sthreads=${2:-4}
cthreads=${3:-16}
bash tools/install-deps.sh
cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench --target coffer bench_coord >/dev/null
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export COFFER_SIM_PLATFORM_KEY=$tmp/sim-key.pem
coffer=./build/bench/src/cli/coffer
printf 'the marble executable' > "$tmp/exe"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$tmp/manifest.json" <<JSON
{"Packages": {"bench": {"TEE": "Simulation", "UniqueID": "$(sha256sum "$tmp/exe" | cut -d' ' -f1)"}},
 "Marbles": {"bench": {"Package": "bench", "Parameters": {"Env": {"ROLE": "bench"}}}}}
JSON
sides=(after)
[ -n "${BEFORE:-}" ] && sides=(after before)
one() { # SIDE ROUND
  local bin=$coffer
  [ "$1" = before ] && bin=$BEFORE
  cp=$(port); mp=$(port)
  rm -rf "$tmp/seal"
  "$bin" coordinator --simulation --client-addr "127.0.0.1:$cp" --mesh-addr "127.0.0.1:$mp" \
    --seal-dir "$tmp/seal" --threads "$sthreads" >/dev/null 2>"$tmp/coord.log" &
  pid=$!
  for _ in $(seq 300); do grep -q "client API on port" "$tmp/coord.log" && break; sleep 0.1; done
  if ! "$coffer" manifest set "$tmp/manifest.json" "127.0.0.1:$cp" --simulation --coordinator-cert "$tmp/cc.pem" \
      2>"$tmp/set.err"; then
    echo "round $2 $1: the coordinator did not take the manifest:" >&2
    tail -3 "$tmp/set.err" "$tmp/coord.log" >&2
    return 1
  fi
  out=$(./build/bench/bench/bench_coord --mesh "127.0.0.1:$mp" --exe "$tmp/exe" --threads "$cthreads" --seconds 10)
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  syncs=$(sed -n 's/.*audit entries written with \([0-9]*\) log syncs.*/\1/p' "$tmp/coord.log" | tail -1)
  acts=$(sed -n 's/.*activations=\([0-9]*\).*/\1/p' <<<"$out")
  echo "round $2 $1: $out log_syncs=${syncs:-?} syncs_per_activation=$(/usr/bin/python3 -c "print(f'{${syncs:-0}/max(${acts:-1},1):.2f}')")"
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order=("${sides[@]}"); else order=($(printf '%s\n' "${sides[@]}" | tac)); fi
  for side in "${order[@]}"; do one "$side" "$r"; done
done | tee "$tmp/rounds"
/usr/bin/python3 - "$tmp/rounds" "$sthreads" "$cthreads" <<'PY'
import re, sys, statistics
rates = {}
for l in open(sys.argv[1]):
    m = re.search(r"round \d+ (\w+): .*per_second=([0-9.]+)", l)
    if m:
        rates.setdefault(m.group(1), []).append(float(m.group(2)))
for side, rs in rates.items():
    print(f"{side}: {len(rs)} rounds, coordinator --threads {sys.argv[2]}, {sys.argv[3]} client threads: "
          f"best {max(rs):,.0f} activations/s, median {statistics.median(rs):,.0f}")
if "before" in rates:
    print(f"after/before (best rounds): {max(rates['after']) / max(rates['before']):.2f}")
PY
