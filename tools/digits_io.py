#!/usr/bin/env python3
"""Held-out digits as model inputs, and scoring of model outputs, with the
Python standard library only (no numpy), for the demos and tests.

  digits_io.py inputs DIR [N]     write DIR/img000.npy ... : float32 [1,1,8,8]
                                  (pixel / 16) for the first N held-out images
                                  (all 360 by default), and DIR/../labels.txt
  digits_io.py score DIR LABELS   read DIR/*.npy outputs (float32 [1,10]),
                                  print predictions and accuracy
"""
import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "models", "digits")


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    hlen = struct.unpack("<H", data[8:10])[0] if major == 1 else struct.unpack("<I", data[8:12])[0]
    start = (10 if major == 1 else 12) + hlen
    header = data[start - hlen:start].decode("latin1")
    shape = tuple(int(x) for x in header.split("'shape':")[1].split("(")[1].split(")")[0].split(",") if x.strip())
    return header, shape, data[start:]


def write_npy(path, shape, floats):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%df" % len(floats), *floats))


def inputs(out_dir, n=None):
    _, shape, pixels = read_npy(os.path.join(DIGITS, "heldout_images.npy"))
    hdr, _, labels_raw = read_npy(os.path.join(DIGITS, "heldout_labels.npy"))
    labels = struct.unpack("<%dq" % shape[0], labels_raw)
    count = shape[0] if n is None else min(n, shape[0])
    os.makedirs(out_dir, exist_ok=True)
    for i in range(count):
        img = pixels[i * 64:(i + 1) * 64]
        write_npy(os.path.join(out_dir, f"img{i:03d}.npy"), (1, 1, 8, 8), [p / 16.0 for p in img])
    with open(os.path.join(os.path.dirname(os.path.abspath(out_dir)), "labels.txt"), "w") as f:
        f.write("".join(f"{labels[i]}\n" for i in range(count)))
    print(f"{count} held-out images written to {out_dir}", file=sys.stderr)


def score(out_dir, labels_path):
    labels = [int(x) for x in open(labels_path).read().split()]
    files = sorted(glob.glob(os.path.join(out_dir, "*.npy")))
    if len(files) != len(labels):
        print(f"{len(files)} outputs for {len(labels)} labels", file=sys.stderr)
        return 1
    right = 0
    preds = []
    for path, want in zip(files, labels):
        _, shape, raw = read_npy(path)
        probs = struct.unpack("<%df" % (len(raw) // 4), raw)
        pred = max(range(len(probs)), key=lambda k: probs[k])
        preds.append(pred)
        right += pred == want
    print("predictions: " + " ".join(str(p) for p in preds[:20]) + (" ..." if len(preds) > 20 else ""))
    print(f"accuracy: {right}/{len(labels)} = {100.0 * right / len(labels):.2f} %")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "inputs":
        inputs(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif len(sys.argv) == 4 and sys.argv[1] == "score":
        sys.exit(score(sys.argv[2], sys.argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
