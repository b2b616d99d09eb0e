"""interop.py — Python protobuf (the runtime TF Serving clients use) against
coffer's protobuf-c messages. Run by test_proto.c's interop test:

    interop.py PB2_DIR WORK_DIR

Reads what coffer wrote in WORK_DIR (response.typed.pb, response.content.pb,
metadata.pb, status.pb), checks every field a client reads, and writes
request.pb the way tf.make_tensor_proto fills a request (tensor_content for
numeric arrays, string_val for bytes, half_val for float16, a one-value
float_val broadcast by the fill rule). Exits non-zero on any mismatch.
"""
import math
import struct
import sys

sys.path.insert(0, sys.argv[1])
work = sys.argv[2]

from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,  # noqa: E402
                                     predict_pb2)


def read(name, msg):
    with open(f"{work}/{name}", "rb") as f:
        msg.ParseFromString(f.read())
    return msg


def check(cond, what):
    if not cond:
        print(f"interop: FAILED: {what}")
        sys.exit(1)


want = [0.25, -1.5, 3.0, float("inf"), 1e-7, 42.0]
for form in ("typed", "content"):
    r = read(f"response.{form}.pb", predict_pb2.PredictResponse())
    check(r.model_spec.name == "resnet", "model_spec.name")
    check(r.model_spec.version.value == 7, "model_spec.version")
    check(r.model_spec.signature_name == "serving_default", "model_spec.signature_name")
    t = r.outputs["probs"]
    check(t.dtype == types_pb2.DT_FLOAT, "dtype")
    check([d.size for d in t.tensor_shape.dim] == [2, 3], "shape")
    if form == "typed":
        check(len(t.tensor_content) == 0, "typed: no tensor_content")
        got = list(t.float_val)
    else:
        check(len(t.float_val) == 0, "content: no float_val")
        got = list(struct.unpack("<6f", t.tensor_content))
    check(len(got) == 6 and all(math.isclose(a, b, rel_tol=1e-6) or a == b for a, b in zip(got, want)),
          f"{form} values {got}")
    s = r.outputs["label_bytes"]
    check(s.dtype == types_pb2.DT_STRING and list(s.string_val) == [b"\x00\xffcat", b""], "strings")

m = read("metadata.pb", get_model_metadata_pb2.GetModelMetadataResponse())
check(m.model_spec.version.value == 7, "metadata version")
any_ = m.metadata["signature_def"]
check(any_.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap", "Any type_url")
sdm = get_model_metadata_pb2.SignatureDefMap()
check(any_.Unpack(sdm), "Any unpacks as SignatureDefMap")
sd = sdm.signature_def["serving_default"]
check(sd.method_name == "tensorflow/serving/predict", "method_name")
ti = sd.inputs["input"]
check(ti.name == "input:0" and ti.dtype == types_pb2.DT_FLOAT, "input TensorInfo")
check([d.size for d in ti.tensor_shape.dim] == [-1, 224, 224, 3], "input dims with -1")
check(sd.outputs["probs"].dtype == types_pb2.DT_FLOAT, "output TensorInfo")

st = read("status.pb", get_model_status_pb2.GetModelStatusResponse())
check(len(st.model_version_status) == 2, "status count")
v = st.model_version_status[1]
check(v.version == 1 and v.state == get_model_status_pb2.ModelVersionStatus.END, "status state")
check(v.status.error_code == 13 and v.status.error_message == "load failed", "status error")

# A request as tf.make_tensor_proto would fill it.
req = predict_pb2.PredictRequest()
req.model_spec.name = "resnet50-v15-fp32"
req.model_spec.signature_name = "serving_default"
req.model_spec.version_label = "canary"
req.output_filter.append("probs")


def shape(*dims):
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


x = req.inputs["input"]
x.dtype = types_pb2.DT_FLOAT
x.tensor_shape.CopyFrom(shape(2, 3))
x.tensor_content = struct.pack("<6f", *[i * 0.5 for i in range(6)])
f = req.inputs["fill"]
f.dtype = types_pb2.DT_FLOAT
f.tensor_shape.CopyFrom(shape(1, 4, 4, 3))
f.float_val.append(0.75)
s = req.inputs["s"]
s.dtype = types_pb2.DT_STRING
s.tensor_shape.CopyFrom(shape(2))
s.string_val.extend([b"\x89PNG", b"jpeg"])
h = req.inputs["h"]
h.dtype = types_pb2.DT_HALF
h.tensor_shape.CopyFrom(shape(2))
h.half_val.extend([0x3C00, 0xC000])
i = req.inputs["i"]
i.dtype = types_pb2.DT_INT64
i.tensor_shape.CopyFrom(shape(3))
i.tensor_content = struct.pack("<3q", -1, 0, 2**40)
with open(f"{work}/request.pb", "wb") as out:
    out.write(req.SerializeToString())

# A request with numeric tensor_content inputs only, as a numpy array
# through tf.make_tensor_proto gives it: what coffer decodes in place.
req = predict_pb2.PredictRequest()
req.model_spec.name = "resnet50-v15-fp32"
req.model_spec.version.value = 3
req.output_filter.append("probs")
x = req.inputs["input"]
x.dtype = types_pb2.DT_FLOAT
x.tensor_shape.CopyFrom(shape(1, 2, 2, 3))
x.tensor_content = struct.pack("<12f", *[i / 3.0 for i in range(12)])
i = req.inputs["ids"]
i.dtype = types_pb2.DT_INT64
i.tensor_shape.CopyFrom(shape(2))
i.tensor_content = struct.pack("<2q", -7, 2**40)
with open(f"{work}/request_content.pb", "wb") as out:
    out.write(req.SerializeToString())
print("interop: python side OK")
