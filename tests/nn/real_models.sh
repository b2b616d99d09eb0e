#!/usr/bin/env bash
# The real-model agreement check of the nn issue, as a CTest entry:
# coffer against PyTorch on torchvision models generated at test time.
# usage: real_models.sh COFFER_BINARY
# By default it runs resnet50, mobilenet_v2, one model of every other
# torchvision family (the smallest), and two exports with BatchNormalization
# left in, which keeps the suite within its time budget; with
# COFFER_REAL_MODELS=all it runs every torchvision classification model
# (about half an hour with the reference kernels).
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
models=(resnet50 mobilenet_v2 resnet18_keepbn mobilenet_v2_keepbn
        alexnet convnext_tiny densenet121 efficientnet_b0 efficientnet_v2_s
        googlenet inception_v3 maxvit_t mnasnet0_5 mobilenet_v3_small
        regnet_x_400mf regnet_y_400mf resnet18 resnext50_32x4d
        shufflenet_v2_x0_5 squeezenet1_1 swin_t vgg11 vit_b_32)
if [ "${COFFER_REAL_MODELS:-}" = all ]; then
    models=()
elif [ -n "${COFFER_REAL_MODELS:-}" ]; then
    read -r -a models <<<"$COFFER_REAL_MODELS"
fi
exec bash "$here/tools/nn-real-models.sh" "${1:?usage: real_models.sh COFFER}" "" "${models[@]}"
