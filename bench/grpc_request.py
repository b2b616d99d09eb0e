"""grpc_request.py — a framed gRPC PredictRequest for h2load -d, written by
hand (no generated code): the input as a float tensor in tensor_content.
Field numbers from predict.proto / tensor.proto: 1 model_spec {1 name},
2 inputs map entry {1 key, 2 TensorProto {1 dtype, 2 shape {2 dim {1 size}},
4 tensor_content}}. Used by bench/serve_bench.sh and bench/serve_overhead.sh.

    /usr/bin/python3 bench/grpc_request.py OUT MODEL INPUT_NAME DIM,DIM,... FLOATS.f32
"""
import struct
import sys


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


out, model, name, shape, raw = sys.argv[1:6]
dims = [int(d) for d in shape.split(",")]
data = open(raw, "rb").read()
count = 1
for d in dims:
    count *= d
if len(data) != 4 * count:
    sys.exit(f"grpc_request.py: {raw} holds {len(data)} bytes, not {count} floats of shape {dims}")
tensor = varint(1 << 3) + varint(1) + ld(2, b"".join(ld(2, varint(1 << 3) + varint(d)) for d in dims)) + ld(4, data)
msg = ld(1, ld(1, model.encode())) + ld(2, ld(1, name.encode()) + ld(2, tensor))
with open(out, "wb") as f:
    f.write(b"\0" + struct.pack(">I", len(msg)) + msg)
