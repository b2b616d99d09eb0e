#!/usr/bin/env bash
# run_attest.sh — SGX quote verifications per second on N cores (default 2)
# next to `openssl speed ecdsap256` verify on the same cores, interleaved
# round by round so both see the same machine load; prints each round and the
# medians. The ratio is the portable figure: quotes/s ÷ ECDSA P-256 verify/s.
#   bench/run_attest.sh [BUILD_DIR] [CORES] [SECONDS] [ROUNDS]
set -eu
B=${1:-build/bench}
N=${2:-2}
S=${3:-3}
R=${4:-3}
CPUS=$(seq -s, 0 $((N - 1)))
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs; $(openssl version)"
ossl() { # ossl CPUS MULTI -> verify/s
    taskset -c "$1" openssl speed -seconds "$S" -multi "$2" ecdsap256 2>/dev/null |
        awk '/256 bits ecdsa/ {v=$NF} END {print v}'
}
ours() { # ours CPUS THREADS [--cold] -> quotes/s
    taskset -c "$1" "$B/bench/bench_attest" --threads "$2" --seconds "$S" ${3:-} |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"]))'
}
rows=()
for i in $(seq 1 "$R"); do
    l=$(cut -d' ' -f1 /proc/loadavg)
    o2=$(ossl "$CPUS" "$N"); q2=$(ours "$CPUS" "$N"); c2=$(ours "$CPUS" "$N" --cold)
    o1=$(ossl 0 1); q1=$(ours 0 1)
    echo "round $i (load $l): $N cores: quotes/s $q2, cold $c2, ecdsa verify/s $o2 | 1 core: quotes/s $q1, ecdsa verify/s $o1"
    rows+=("$q2 $c2 $o2 $q1 $o1")
done
printf '%s\n' "${rows[@]}" | python3 -c '
import sys, statistics as st
r = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
m = lambda i: st.median(x[i] for x in r)
rat = lambda a, b: st.median(x[a] / x[b] for x in r)
n = sys.argv[1]
print(f"median, {n} cores: {m(0):.0f} quotes/s (ratio to ECDSA verify {rat(0,2):.3f}); cold {m(1):.0f} quotes/s (ratio {rat(1,2):.3f}); openssl {m(2):.0f} verify/s")
print(f"median, 1 core: {m(3):.0f} quotes/s (ratio {rat(3,4):.3f}); openssl {m(4):.0f} verify/s")
' "$N"
