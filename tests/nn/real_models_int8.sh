#!/usr/bin/env bash
# The real-model agreement check with the int8 kernels as a CTest entry:
# each model calibrated first (`coffer calibrate` on 32 seeded inputs other
# than the checked ones), then `coffer infer` under
# COFFER_NN_PRECISION=int8 against PyTorch's float32 within 5e-2 of the
# largest logit (8-bit inputs and weights of the direct convolutions;
# docs/nn.md has the measured agreement), on 8 seeded inputs a model (the
# top class of each compared too). regnet_y_400mf is left out: int8 takes
# none of its layers (its convolutions do not read the blocked layout).
# Skipped (77) where the CPU lacks AVX512_VNNI.
# usage: real_models_int8.sh COFFER_BINARY
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
if ! grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null; then
    echo "skip: this CPU has no AVX512_VNNI"
    exit 77
fi
models=(resnet50 mobilenet_v2 resnet18_keepbn efficientnet_b0)
[ -n "${COFFER_REAL_MODELS:-}" ] && read -r -a models <<<"$COFFER_REAL_MODELS"
COFFER_NN_PRECISION=int8 COFFER_AGREE_TOL=${COFFER_AGREE_TOL:-5e-2} COFFER_EXPORT_BATCH=8 \
    exec bash "$here/tools/nn-real-models.sh" "${1:?usage: real_models_int8.sh COFFER}" "" "${models[@]}"
