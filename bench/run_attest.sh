#!/usr/bin/env bash
# run_attest.sh — SGX quote verifications per second on N cores (default 2),
# next to `openssl speed ecdsap256` on the same cores in the same run, so the
# figure can be read as a ratio that survives a change of machine or load.
#   bench/run_attest.sh [BUILD_DIR] [CORES] [SECONDS]
set -eu
B=${1:-build/bench}
N=${2:-2}
S=${3:-5}
CPUS=$(seq -s, 0 $((N - 1)))
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(openssl version)"
Q=$(taskset -c "$CPUS" "$B/bench/bench_attest" --threads "$N" --seconds "$S")
echo "$Q"
echo "# load after the 2-core run: $(cut -d' ' -f1-3 /proc/loadavg)"
O=$(taskset -c "$CPUS" openssl speed -seconds "$S" -multi "$N" ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {v=$NF} END {print v}')
Q1=$(taskset -c 0 "$B/bench/bench_attest" --threads 1 --seconds "$S")
QC=$(taskset -c "$CPUS" "$B/bench/bench_attest" --threads "$N" --seconds "$S" --cold)
O1=$(taskset -c 0 openssl speed -seconds "$S" ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {v=$NF} END {print v}')
python3 - "$Q" "$O" "$Q1" "$O1" "$N" "$QC" <<'P'
import json, sys
q, o, q1, o1, n = json.loads(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
qc = json.loads(sys.argv[6])
print(f"quotes/s on {n} cores: {q['per_second']:.0f}; openssl ecdsap256 verify/s on {n} cores: {o:.0f}; ratio {q['per_second']/o:.3f}")
print(f"quotes/s on 1 core: {q1['per_second']:.0f}; openssl ecdsap256 verify/s on 1 core: {o1:.0f}; ratio {q1['per_second']/o1:.3f}")
print(f"cold (memos cleared before every quote), {n} cores: {qc['per_second']:.0f} quotes/s; ratio {qc['per_second']/o:.3f}")
P
