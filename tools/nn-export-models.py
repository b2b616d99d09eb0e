#!/usr/bin/python3
"""Export torchvision classification models to ONNX for coffer's real-model check.

usage: /usr/bin/python3 tools/nn-export-models.py OUTDIR [NAME ...]

For each model (default: every torchvision classification model; resnet50
is v1.5 in torchvision), with weights=None and a fixed seed, writes
  OUTDIR/NAME.onnx      the model exported at opset 13 (batch dimension "N")
  OUTDIR/NAME_in.npy    a fixed input (seeded normal, Bx3xHxW; B from
                        COFFER_EXPORT_BATCH, default 1)
  OUTDIR/NAME_out.npy   PyTorch's output for it (eval mode)
and prints one line per model: "exported NAME" or "skip NAME: reason".
A NAME ending in "_keepbn" (say resnet18_keepbn) exports that model with its
BatchNormalization nodes left in (training mode preserved, no constant
folding), so the runtime's own BatchNormalization is what gets checked.
Needs Debian's python3-torch, python3-torchvision (and python3-onnx for the
exporter's checks); nothing here is committed: models are generated at test
time.
"""
import os
import sys

import numpy as np
import torch
import torchvision

OPSET = 13

# Input sizes that differ from 224 (the models' own minimum or default).
SIZES = {"inception_v3": 299}


def classification_models():
    names = None
    try:
        names = torchvision.models.list_models(module=torchvision.models)
    except (AttributeError, TypeError):
        pass
    if not names:
        names = sorted(n for n, f in vars(torchvision.models).items()
                       if callable(f) and n.islower() and not n.startswith("_")
                       and n not in ("get_model", "get_weight", "list_models", "get_model_weights",
                                     "get_model_builder"))
    return names


KEEPBN = "_keepbn"


def build(name):
    if name.endswith(KEEPBN):
        name = name[: -len(KEEPBN)]
    torch.manual_seed(0)
    kwargs = {"weights": None}
    if name in ("inception_v3", "googlenet"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
    fn = getattr(torchvision.models, name)
    return fn(**kwargs).eval()


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = sys.argv[2:] or classification_models()
    for name in names:
        try:
            model = build(name)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"skip {name}: cannot build: {e}".splitlines()[0])
            continue
        base = name[: -len(KEEPBN)] if name.endswith(KEEPBN) else name
        size = SIZES.get(base, 224)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(int(os.environ.get("COFFER_EXPORT_BATCH", "1")), 3, size, size, generator=gen)
        path = os.path.join(out, name + ".onnx")
        try:
            with torch.no_grad():
                y = model(x)
                if float(y.abs().max()) == 0.0:
                    # some heads start at zero (the ViTs'): every logit is 0
                    # and the comparison would prove nothing, so give the
                    # zero-initialised Linear layers seeded random weights
                    torch.manual_seed(2)
                    for mod in model.modules():
                        if isinstance(mod, torch.nn.Linear) and float(mod.weight.abs().max()) == 0.0:
                            torch.nn.init.normal_(mod.weight, std=0.02)
                    y = model(x)
                    print(f"note {name}: zero-initialised head given seeded random weights")
            # exported with autograd on: under no_grad, nn.MultiheadAttention
            # takes a fused fast path (aten::_native_multi_head_attention)
            # that has no ONNX export, which would rule out the ViTs
            keepbn = name.endswith(KEEPBN)
            mode = torch.onnx.TrainingMode.PRESERVE if keepbn else torch.onnx.TrainingMode.EVAL
            torch.onnx.export(model, x, path, opset_version=OPSET, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                              training=mode, do_constant_folding=not keepbn)
        except Exception as e:  # noqa: BLE001
            print(f"skip {name}: does not export at opset {OPSET}: {e}".splitlines()[0])
            if os.path.exists(path):
                os.remove(path)
            continue
        np.save(os.path.join(out, name + "_in.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(out, name + "_out.npy"), y.numpy().astype(np.float32))
        print(f"exported {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
