#!/usr/bin/env bash
# test_nn.sh — `coffer infer`, `coffer inspect` and `coffer bench` as a user runs them,
# over a model of the ONNX backend test data (libonnx-testdata).
# usage: test_nn.sh COFFER SHARED_DIR
set -u
COFFER=$1
DATA=/usr/share/libonnx-testdata/data
CASE=$DATA/node/test_conv_with_strides_padding
if [ ! -d "$CASE" ]; then
    echo "skip: $CASE missing (install libonnx-testdata)"
    exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

out=$("$COFFER" inspect "$CASE/model.onnx") || fail "inspect exited $?"
for want in "opset:" "Conv" "inputs:" "outputs:" "parameters:" "arena:"; do
    grep -q "$want" <<<"$out" || fail "inspect output lacks '$want'"
done

"$COFFER" infer "$CASE/model.onnx" -i "$CASE/test_data_set_0/input_0.pb" -i "$CASE/test_data_set_0/input_1.pb" \
    -o "$TMP/out" --npy >/dev/null || fail "infer exited $?"
[ -s "$TMP/out/output_0.pb" ] || fail "no output_0.pb"
[ -s "$TMP/out/output_0.npy" ] || fail "no output_0.npy"
head -c 6 "$TMP/out/output_0.npy" | grep -q NUMPY || fail "output_0.npy is not .npy"
# same shape and dtype as the expected TensorProto, so about the same size
# (the values themselves are checked by the conformance test)
want=$(stat -c %s "$CASE/test_data_set_0/output_0.pb")
got=$(stat -c %s "$TMP/out/output_0.pb")
[ "$got" -ge $((want - 16)) ] || fail "output_0.pb has $got bytes, expected about $want"

"$COFFER" infer "$CASE/model.onnx" -o "$TMP/x" 2>/dev/null
[ $? -eq 2 ] || fail "missing inputs should be a usage error (2)"
"$COFFER" infer 2>/dev/null
[ $? -eq 2 ] || fail "no arguments should be a usage error (2)"
echo "not a model" >"$TMP/bad.onnx"
"$COFFER" inspect "$TMP/bad.onnx" 2>"$TMP/err"
[ $? -eq 1 ] || fail "a bad model should fail with 1"
grep -q "coffer inspect" "$TMP/err" || fail "error not reported"
"$COFFER" help infer | grep "usage: coffer infer" >/dev/null || fail "help infer"

# --threads, and the kernels named by inspect
"$COFFER" infer "$CASE/model.onnx" -i "$CASE/test_data_set_0/input_0.pb" -i "$CASE/test_data_set_0/input_1.pb" \
    -o "$TMP/t1" --threads 1 >/dev/null || fail "infer --threads 1 exited $?"
cmp -s "$TMP/out/output_0.pb" "$TMP/t1/output_0.pb" || fail "--threads 1 gave another output"
"$COFFER" infer "$CASE/model.onnx" -o "$TMP/x" --threads 0 2>/dev/null
[ $? -eq 2 ] || fail "--threads 0 should be a usage error (2)"
grep -q "^kernels: " <<<"$out" || fail "inspect does not name the kernels"
COFFER_NN_ISA=ref "$COFFER" inspect "$CASE/model.onnx" | grep "^kernels: ref, 1 thread" >/dev/null || fail "COFFER_NN_ISA=ref not honoured"
COFFER_NN_ISA=nonesuch "$COFFER" inspect "$CASE/model.onnx" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "COFFER_NN_ISA=nonesuch" "$TMP/err" || fail "an unknown COFFER_NN_ISA should fail, naming it"

# bench: one JSON line with the peer script's fields
MLP=$DATA/pytorch-converted/test_Linear
if [ -d "$MLP" ]; then
    line=$("$COFFER" bench "$MLP/model.onnx" --runs 3 --warmup 1 --threads 1) || fail "bench exited $?"
    for f in median_ms min_ms p90_ms ms_per_img img_per_s peak_rss_mb load_ms '"batch":' '"threads":1' isa; do
        grep -q "$f" <<<"$line" || fail "bench output lacks $f: $line"
    done
    [ "$(wc -l <<<"$line")" -eq 1 ] || fail "bench printed more than one line"
    /usr/bin/python3 -c 'import json,sys; json.loads(sys.argv[1])' "$line" 2>/dev/null || \
        { command -v python3 >/dev/null && fail "bench output is not JSON: $line"; }
    # --profile: the JSON line unchanged on stdout, the per-node table on stderr
    line=$("$COFFER" bench "$MLP/model.onnx" --runs 3 --warmup 1 --threads 1 --profile 2>"$TMP/prof") || \
        fail "bench --profile exited $?"
    grep -q median_ms <<<"$line" && [ "$(wc -l <<<"$line")" -eq 1 ] || fail "bench --profile changed stdout: $line"
    grep -q "^profile: [0-9.]* ms per run in nodes" "$TMP/prof" || fail "no profile total: $(head -2 "$TMP/prof")"
    grep -q "^Gemm/" "$TMP/prof" || fail "the profile does not list the Gemm node's op/kernel: $(cat "$TMP/prof")"
    grep -q "^slowest nodes" "$TMP/prof" || fail "no slowest-nodes table"
fi
"$COFFER" bench "$CASE/model.onnx" --runs 0 2>/dev/null
[ $? -eq 2 ] || fail "bench --runs 0 should be a usage error (2)"
# --precision: f32 by default (and in the JSON line); an unknown one is a
# usage error naming it, a bad COFFER_NN_PRECISION fails the load naming
# it; bf16 runs where the CPU has AVX512_BF16 and is refused, naming it,
# where it has not (or with other kernels forced)
if [ -d "$MLP" ]; then
    line=$("$COFFER" bench "$MLP/model.onnx" --runs 2 --warmup 0 --threads 1) || fail "bench exited $?"
    grep -q '"precision":"f32"' <<<"$line" || fail "bench's default precision is not f32: $line"
    "$COFFER" bench "$MLP/model.onnx" --precision bf17 2>"$TMP/err"
    [ $? -eq 2 ] && grep -q "bf17" "$TMP/err" || fail "--precision bf17 should be a usage error naming it"
    COFFER_NN_PRECISION=half "$COFFER" bench "$MLP/model.onnx" --runs 1 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "COFFER_NN_PRECISION=half" "$TMP/err" || fail "COFFER_NN_PRECISION=half should fail, naming it"
    COFFER_NN_ISA=avx2 "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision bf16 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "bf16\|has no avx2" "$TMP/err" || fail "bf16 with the avx2 kernels should fail, naming bf16"
    if grep -qw avx512_bf16 /proc/cpuinfo; then
        line=$("$COFFER" bench "$MLP/model.onnx" --runs 2 --warmup 0 --precision bf16) || fail "bench --precision bf16 exited $?"
        grep -q '"precision":"bf16"' <<<"$line" || fail "bench --precision bf16 did not say bf16: $line"
    else
        "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision bf16 2>"$TMP/err"
        [ $? -eq 1 ] && grep -q "AVX512_BF16" "$TMP/err" || fail "bf16 without AVX512_BF16 should fail, naming it"
    fi
fi
# int8 and coffer calibrate: their usage errors and refusals, each naming
# what was wrong (the positive path, calibrate then infer on real models,
# is the CTest entry nn_real_models_int8)
"$COFFER" calibrate "$CASE/model.onnx" -o "$TMP/t.calib" 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "input" "$TMP/err" || fail "calibrate without --input should be a usage error naming it"
if [ -d "$MLP" ]; then # (a Linear layer: nothing int8 would take)
    head -c 10 /dev/zero >"$TMP/odd.f32"
    "$COFFER" calibrate "$MLP/model.onnx" --input "$TMP/odd.f32" -o "$TMP/t.calib" 2>"$TMP/err"
    [ $? -eq 2 ] && grep -q "not a whole number of items" "$TMP/err" || fail "calibrate on 10 bytes should be a usage error"
    head -c $((4 * 10 * 4)) /dev/zero >"$TMP/four.f32"
    "$COFFER" calibrate "$MLP/model.onnx" --input "$TMP/four.f32" -o "$TMP/t.calib" 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "int8 would take none" "$TMP/err" && [ ! -e "$TMP/t.calib" ] ||
        fail "calibrate of a model int8 takes nothing of should fail, saying so, and write no table"
fi
if grep -qw avx512_vnni /proc/cpuinfo && [ -d "$MLP" ]; then
    "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision int8 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "no calibration table" "$TMP/err" || fail "int8 without a table should fail, saying so"
    printf 'not a table\n' >"$TMP/bad.calib"
    "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision int8 --calibration "$TMP/bad.calib" 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "line 1" "$TMP/err" || fail "a table without its header should fail, naming line 1"
    printf '# coffer calibration table 1\n0 1 nonesuch\n' >"$TMP/bad.calib"
    COFFER_NN_PRECISION=int8 COFFER_NN_CALIBRATION="$TMP/bad.calib" "$COFFER" bench "$MLP/model.onnx" --runs 1 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "line 2: no value 'nonesuch'" "$TMP/err" || fail "a table naming no value of the model should fail, naming it"
    "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision f32 --calibration "$TMP/bad.calib" 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "only int8 reads one" "$TMP/err" || fail "--calibration with f32 should fail, saying so"
    printf '# coffer calibration table 1\n2 1 x\n' >"$TMP/bad.calib"
    "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision int8 --calibration "$TMP/bad.calib" 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "line 2: expected 'LO HI NAME'" "$TMP/err" || fail "a range with LO > HI should fail, naming its line"
elif [ -d "$MLP" ]; then
    printf '# coffer calibration table 1\n0 1 x\n' >"$TMP/t.calib"
    "$COFFER" bench "$MLP/model.onnx" --runs 1 --precision int8 --calibration "$TMP/t.calib" 2>"$TMP/err"
    [ $? -eq 1 ] && grep -q "AVX512_VNNI\|int8" "$TMP/err" || fail "int8 without AVX512_VNNI should fail, naming it"
fi
echo "ok"
