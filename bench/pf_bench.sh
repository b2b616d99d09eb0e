#!/usr/bin/env bash
# Protected-file throughput beside its limit, in one run: coffer's bench_pf
# (256 MiB) interleaved with `openssl speed -evp aes-128-gcm -bytes 4096`
# on one core and on all cores, ROUNDS times, alternating which goes first.
# Prints each side's best round median and the ratios.
#   bash bench/pf_bench.sh [ROUNDS] [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
mib=${2:-256}
cores=$(nproc)
bash tools/install-deps.sh
cmake -S . -B build/bench -G Ninja -DCOFFER_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench --target bench_pf >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ossl() { # cores -> MB/s (10^6 bytes/s) for 4 KiB AES-128-GCM blocks
  local m=()
  [ "$1" -gt 1 ] && m=(-multi "$1")
  openssl speed "${m[@]}" -evp aes-128-gcm -bytes 4096 -seconds 2 2>/dev/null |
    awk '/^(aes-128-gcm|AES-128-GCM)/ {v=$NF} END {sub("k","",v); printf "%.1f\n", v/1000}'
}
for r in $(seq 1 "$rounds"); do
  printf '\rround %d/%d' "$r" "$rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then
    ossl 1 >>"$out/ossl1"; ossl "$cores" >>"$out/osslN"
    ./build/bench/bench/bench_pf --mib "$mib" --runs 5 >>"$out/coffer"
  else
    ./build/bench/bench/bench_pf --mib "$mib" --runs 5 >>"$out/coffer"
    ossl 1 >>"$out/ossl1"; ossl "$cores" >>"$out/osslN"
  fi
done
echo >&2
/usr/bin/python3 - "$out" "$cores" <<'PY'
import json, sys, os
d, cores = sys.argv[1], int(sys.argv[2])
o1 = max(float(x) for x in open(os.path.join(d, "ossl1")))
oN = max(float(x) for x in open(os.path.join(d, "osslN")))
best = {}
for line in open(os.path.join(d, "coffer")):
    j = json.loads(line)
    k = (j["op"], j["threads"])
    best[k] = max(best.get(k, 0), j["median_mb_s"])
print(f"openssl speed AES-128-GCM 4 KiB: 1 core {o1:.0f} MB/s, {cores} cores {oN:.0f} MB/s")
print(f"{'operation':<22}{'threads':>8}{'MB/s':>10}{'/ 1-core limit':>16}{'/ all-core limit':>18}")
for (op, t), v in sorted(best.items()):
    print(f"{op:<22}{t:>8}{v:>10.0f}{v / o1:>16.2f}{v / oN:>18.2f}")
PY
