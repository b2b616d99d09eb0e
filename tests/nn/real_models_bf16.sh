#!/usr/bin/env bash
# The real-model agreement check with the bf16 kernels (coffer infer under
# COFFER_NN_PRECISION=bf16) as a CTest entry: coffer against PyTorch's
# float32 within 2e-2 of the largest logit (bf16 keeps 8 bits of each
# input and weight of the direct convolutions; docs/nn.md has the measured
# agreement), on 8 seeded inputs a model (the top class of each compared
# too). Skipped (77) where the CPU lacks AVX512_BF16.
# usage: real_models_bf16.sh COFFER_BINARY
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
if ! grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then
    echo "skip: this CPU has no AVX512_BF16"
    exit 77
fi
models=(resnet50 mobilenet_v2 resnet18_keepbn efficientnet_b0 regnet_y_400mf)
[ -n "${COFFER_REAL_MODELS:-}" ] && read -r -a models <<<"$COFFER_REAL_MODELS"
COFFER_NN_PRECISION=bf16 COFFER_AGREE_TOL=${COFFER_AGREE_TOL:-2e-2} COFFER_EXPORT_BATCH=8 \
    exec bash "$here/tools/nn-real-models.sh" "${1:?usage: real_models_bf16.sh COFFER}" "" "${models[@]}"
