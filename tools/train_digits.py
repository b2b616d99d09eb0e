#!/usr/bin/python3
"""Train coffer's default demo model: a small CNN on the handwritten digits
that Debian's python3-sklearn ships (sklearn.datasets.load_digits: 1797
8x8 grey images, values 0..16), and export it to ONNX (opset 13, batch
dimension "N"). Nothing is downloaded; seeds are fixed.

Writes into models/digits/ (committed; all small):
  model.onnx          input "image" float32 [N,1,8,8] (pixel/16), output
                      "probabilities" float32 [N,10] (softmax)
  labels.txt          one class name per line (0..9)
  heldout_images.npy  uint8 [M,8,8], the held-out 20 % (never trained on)
  heldout_labels.npy  int64 [M]
  samples/*.png       a few held-out images, 8-bit grey PNG, named
                      <index>_<label>.png
  README.md           the accuracy measured here, and how to regenerate

Run with Debian's /usr/bin/python3 (python3-torch, python3-sklearn,
python3-onnx, python3-numpy):  /usr/bin/python3 tools/train_digits.py
"""
import os
import struct
import sys
import zlib

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "digits")


class DigitsCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
        )
        self.classifier = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(32 * 4 * 4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class WithSoftmax(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.softmax(self.net(image), dim=1)


def write_png(path, img):
    """8-bit greyscale PNG, written with zlib only."""
    h, w = img.shape
    raw = b"".join(b"\x00" + bytes(img[y].tolist()) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(2)
    digits = load_digits()
    images = digits.images.astype(np.uint8)  # values 0..16
    labels = digits.target.astype(np.int64)
    tr_x, te_x, tr_y, te_y = train_test_split(images, labels, test_size=0.2, random_state=0, stratify=labels)

    def tensor(x):
        return torch.from_numpy(x.astype(np.float32) / 16.0).unsqueeze(1)

    net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = tensor(tr_x), torch.from_numpy(tr_y)
    for epoch in range(40):
        net.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(tensor(te_x)).argmax(1).numpy()
    acc = float((pred == te_y).mean())
    print(f"held-out accuracy (PyTorch): {acc:.4f} on {len(te_y)} images", file=sys.stderr)

    os.makedirs(os.path.join(OUT, "samples"), exist_ok=True)
    model = WithSoftmax(net).eval()
    torch.onnx.export(model, tensor(te_x[:1]), os.path.join(OUT, "model.onnx"), opset_version=13,
                      input_names=["image"], output_names=["probabilities"],
                      dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}}, do_constant_folding=True)
    with open(os.path.join(OUT, "labels.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in range(10)))
    np.save(os.path.join(OUT, "heldout_images.npy"), te_x)
    np.save(os.path.join(OUT, "heldout_labels.npy"), te_y)
    for name in os.listdir(os.path.join(OUT, "samples")):
        os.remove(os.path.join(OUT, "samples", name))
    for i in range(10):
        idx = int(np.where(te_y == i)[0][0])
        write_png(os.path.join(OUT, "samples", f"{idx:03d}_{i}.png"), (te_x[idx] * 15).clip(0, 255).astype(np.uint8))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(f"""# digits: coffer's default demo model

A small CNN (two 3x3 convolutions with batch normalisation, max pooling,
two dense layers, softmax) trained on the handwritten digits that Debian's
python3-sklearn ships (`sklearn.datasets.load_digits`), by
`tools/train_digits.py` (fixed seeds, nothing downloaded).

- input `image`: float32 `[N, 1, 8, 8]`, pixel value / 16 (pixels are 0..16)
- output `probabilities`: float32 `[N, 10]`, classes in `labels.txt`
- held-out set: `heldout_images.npy` (uint8 `[{len(te_y)}, 8, 8]`, values 0..16) and
  `heldout_labels.npy`, 20 % of the data, stratified, never trained on
- `samples/INDEX_LABEL.png`: one held-out image per class, 8-bit grey,
  scaled x15 for viewing (the client scales it back with `--scale`)

Held-out accuracy measured by PyTorch at export: **{acc * 100:.2f} %**
({int((pred == te_y).sum())} of {len(te_y)}).

Regenerate: `/usr/bin/python3 tools/train_digits.py`
""")


if __name__ == "__main__":
    main()
