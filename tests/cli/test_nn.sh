#!/usr/bin/env bash
# test_nn.sh — `coffer infer` and `coffer inspect` as a user runs them,
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
"$COFFER" help infer | grep -q "usage: coffer infer" || fail "help infer"
echo "ok"
