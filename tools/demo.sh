#!/usr/bin/env bash
# coffer's main job, as README command one runs it. Until the serving flow
# exists (issue 7), it is the model owner's first step of both demos: make a
# wrap key, encrypt a model into Gramine's protected-file format, check that
# only the right key and path open it, and that tampering is refused.
# Installs what it needs (tools/packages.txt), builds, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash tools/install-deps.sh
echo "== building coffer (build/release)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
coffer=$root/build/release/src/cli/coffer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

mkdir -p plain enc
head -c $((24 << 20)) /dev/urandom > plain/model.onnx   # stands in for a 24 MiB model
step "the model owner makes a wrap key" "$coffer" pf gen-key -w wrap_key.bin
step "encrypts the model, bound to the path the enclave will open" \
  "$coffer" pf encrypt -w wrap_key.bin -i plain/model.onnx -o enc/model.onnx
ls -l enc/model.onnx
step "decrypts it, checking the bound path (-V), as Gramine does at run time" \
  "$coffer" pf decrypt -V -w wrap_key.bin -i enc/model.onnx -o roundtrip.onnx
cmp plain/model.onnx roundtrip.onnx && echo "round trip: identical ($(stat -c %s roundtrip.onnx) bytes)"

echo; echo "== refusals a user must see"
"$coffer" pf gen-key -w other_key.bin 2>/dev/null
cp enc/model.onnx copy.onnx
if "$coffer" pf decrypt -w other_key.bin -i enc/model.onnx -o x 2>err; then echo "wrong key accepted!"; exit 1; fi
echo "wrong key:   $(tail -1 err)"
if "$coffer" pf decrypt -V -w wrap_key.bin -i copy.onnx -o x 2>err; then echo "wrong path accepted!"; exit 1; fi
echo "moved file:  $(tail -1 err)"
printf '\x01' | dd of=copy.onnx bs=1 seek=$((4096 * 50 + 7)) conv=notrunc status=none
if "$coffer" pf decrypt -w wrap_key.bin -i copy.onnx -o x 2>err; then echo "tampering accepted!"; exit 1; fi
echo "tampered:    $(tail -1 err)"
[ ! -e x ] && echo "no partial plaintext was left behind"
echo; echo "demo: all steps passed"
