#!/usr/bin/env bash
# nn-real-models.sh — coffer against PyTorch on torchvision classification
# models (part 5 of the nn issue).
#
# usage: tools/nn-real-models.sh COFFER_BINARY [WORKDIR] [NAME ...]
#
# Exports the models with tools/nn-export-models.py (weights=None, fixed
# seed, opset 13) into WORKDIR (default: a temporary folder, removed after),
# runs `coffer infer` on each, and checks that coffer's output agrees with
# PyTorch's within 1e-4 of the largest logit's magnitude (COFFER_AGREE_TOL
# sets another fraction: bf16, COFFER_NN_PRECISION=bf16 in the environment,
# is checked at 2e-2; with COFFER_NN_PRECISION=int8 each model is first
# calibrated, `coffer calibrate`, on 32 seeded inputs other than the
# checked ones). Prints one line per model (the difference, and
# whether the top class is PyTorch's) and a closing count; exits 1 if any
# exported model fails, and
# 77 (CTest's "skipped") when PyTorch is not installed.
# Needs Debian's python3-torch, python3-torchvision and python3-numpy
# (in tools/packages.txt). NAME_keepbn exports NAME with its
# BatchNormalization nodes left in; the check then also asks that the
# model coffer loaded really has them.
set -u
COFFER=${1:?usage: nn-real-models.sh COFFER [WORKDIR] [NAME ...]}
shift
WORK=${1:-}
[ $# -gt 0 ] && shift
HERE=$(cd "$(dirname "$0")" && pwd)
if ! /usr/bin/python3 -c "import torch, torchvision, numpy" 2>/dev/null; then
    echo "skip: python3-torch, python3-torchvision or python3-numpy is not installed (tools/install-deps.sh)"
    exit 77
fi
CLEAN=0
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d)
    CLEAN=1
fi
trap '[ $CLEAN = 1 ] && rm -rf "$WORK"' EXIT
/usr/bin/python3 "$HERE/nn-export-models.py" "$WORK" "$@" | tee "$WORK/export.log"
pass=0
fail=0
skip=0
for onnx in "$WORK"/*.onnx; do
    [ -e "$onnx" ] || continue
    name=$(basename "$onnx" .onnx)
    rm -rf "$WORK/$name.out"
    if [ "${COFFER_NN_PRECISION:-}" = int8 ]; then
        # int8 needs a calibration table: the model's ranges over
        # COFFER_CALIB_ITEMS seeded normal inputs (default 32), none of
        # them the checked ones (another seed)
        /usr/bin/python3 - "$WORK/${name}_in.npy" "$WORK/${name}_calib.f32" "${COFFER_CALIB_ITEMS:-32}" <<'PY'
import sys
import numpy as np
shape = np.load(sys.argv[1]).shape[1:]
np.random.default_rng(7).standard_normal((int(sys.argv[3]),) + shape).astype(np.float32).tofile(sys.argv[2])
PY
        if ! "$COFFER" calibrate "$onnx" --input "$WORK/${name}_calib.f32" -o "$WORK/$name.calib" --batch 8 \
            2>"$WORK/$name.err" >/dev/null; then
            echo "FAIL $name: calibrate: $(head -c 300 "$WORK/$name.err")"
            fail=$((fail + 1))
            continue
        fi
        export COFFER_NN_CALIBRATION="$WORK/$name.calib"
    fi
    start=$(date +%s%N)
    if ! "$COFFER" infer "$onnx" -i "$WORK/${name}_in.npy" -o "$WORK/$name.out" --npy >/dev/null 2>"$WORK/$name.err"; then
        if grep -q "external data" "$WORK/$name.err"; then
            # over protobuf's 2 GB the exporter moves weights to side files,
            # which coffer refuses by design (the model must be one buffer)
            echo "skip $name: $(head -c 300 "$WORK/$name.err")"
            skip=$((skip + 1))
        else
            echo "FAIL $name: $(head -c 300 "$WORK/$name.err")"
            fail=$((fail + 1))
        fi
        continue
    fi
    ms=$((($(date +%s%N) - start) / 1000000))
    case "$name" in
    *_keepbn)
        if ! "$COFFER" inspect "$onnx" | grep "^  BatchNormalization " >/dev/null; then
            echo "FAIL $name: the export has no BatchNormalization node left"
            fail=$((fail + 1))
            continue
        fi
        ;;
    esac
    verdict=$(/usr/bin/python3 - "$WORK/${name}_out.npy" "$WORK/$name.out/output_0.npy" "${COFFER_AGREE_TOL:-1e-4}" <<'PY'
import sys
import numpy as np
want = np.load(sys.argv[1]).astype(np.float64)
got = np.load(sys.argv[2]).astype(np.float64)
tol = float(sys.argv[3])
if want.shape != got.shape:
    print(f"FAIL shape {got.shape}, expected {want.shape}")
    sys.exit(0)
scale = float(np.abs(want).max())
err = float(np.abs(got - want).max())
ok = err <= tol * scale
w2, g2 = want.reshape(want.shape[0], -1), got.reshape(got.shape[0], -1)
top1 = int((w2.argmax(axis=1) == g2.argmax(axis=1)).sum())
print(f"{'ok' if ok else 'FAIL'} max|diff| {err:.3g} = {err / scale if scale else 0:.2g} of max|logit|"
      f" (tolerance {tol:g}), top-1 as PyTorch's {top1}/{w2.shape[0]}")
PY
)
    echo "$name: $verdict (${ms} ms)"
    case "$verdict" in
    ok*) pass=$((pass + 1)) ;;
    *) fail=$((fail + 1)) ;;
    esac
done
echo "nn real models: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
