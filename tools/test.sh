#!/usr/bin/env bash
# All of coffer's tests: the suite in a normal build, the same suite under
# AddressSanitizer + UBSan, a warning-free Release build (with the
# benchmarks), and every libFuzzer target run briefly over its seeds. Installs what it needs first (tools/packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
jobs=$(nproc)
gen=(-G Ninja)
run_suite() { # name, build dir, extra cmake args...
  local name=$1 dir=$2; shift 2
  echo "=== $name: configure and build ($dir)"
  cmake -S . -B "$dir" "${gen[@]}" -DCOFFER_TESTING=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== $name: tests"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600)
  # the summaries tests print (conformance counts, CLI checks), hidden by CTest when they pass
  grep -ahE "^(nn conformance( \([a-z0-9]+ kernels\))?: [0-9]+ passed|nn real models: [0-9]+ passed|[a-z ]+cli: [0-9]+ passed|deploy [a-z0-9 ]+: [0-9]+ passed)" "$dir/Testing/Temporary/LastTest.log" \
    | sed "s/^/  /" || true
}
run_suite "suite" build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "suite under ASan+UBSan" build/asan -DCMAKE_BUILD_TYPE=Debug -DCOFFER_SANITIZE=ON
echo "=== release build (GCC at -O3 warns about more than -O2; warnings are errors)"
cmake -S . -B build/release-check "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCOFFER_BENCH=ON >/dev/null
cmake --build build/release-check -j "$jobs"
echo "=== fuzz targets: build with clang-14 and run over the seeds"
cmake -S . -B build/fuzz "${gen[@]}" -DCMAKE_C_COMPILER=clang-14 -DCOFFER_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/fuzz -j "$jobs"
(cd build/fuzz && ctest --output-on-failure -j "$jobs" --timeout 600)
echo "=== all tests passed"
