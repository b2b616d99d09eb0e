"""grpc_client.py — a TF Serving gRPC client against `coffer serve`, with the
stubs generated at test time from the shared protos by Debian's protoc and
grpc_python_plugin (never committed). Run by tests/cli/test_serve_models.sh:

    /usr/bin/python3 grpc_client.py PROTO_DIR WORK_DIR HOST:PORT CA CERT KEY MODE

MODE "models": Predict (tensor_content and float_val), GetModelMetadata,
GetModelStatus across two models, versions and labels, gzip, every error
path (unknown model, version, label, signature, inputs, dtypes, shapes,
output filter, missing fields, Classify/Regress on a model without such
signatures, unknown method, malformed
messages), grpc.health.v1 Check and Watch, HandleReloadConfigRequest refused, a 5 MB Predict (over gRPC's common 4 MiB cap), 16 concurrent clients, and a client without a
certificate. MODE "warmupfile:OUT:KIND" writes a TF Serving warm-up file (TFRecord of
PredictionLogs; KIND good, badinput, classify or examples). MODE
"b64examples:X1,X2,X3/K;..." prints base64 serialized tf.Examples, one a line. MODE "examples": Classify, Regress and MultiInference on the
model of example_model.py ("tiny"), Predict on its classification and
regression signatures (serialized tf.Examples), their errors and its metadata. MODE "reload": HandleReloadConfigRequest against a server started with
--allow_reload_config (models dropped, added, new policy and labels, errors).
MODE "oversize": against a
server with a 1 MiB message cap, a bigger Predict is RESOURCE_EXHAUSTED and a
smaller one answered. MODE "wait:MODEL:VERSION": wait (bounded) until the version is
the one Predict gets. MODE "flood:MODEL:N": N concurrent predicts; prints how
many succeeded and how many were refused with RESOURCE_EXHAUSTED.
Prints one line per failed check and exits 1 if any failed.
"""
import glob
import os
import queue
import struct
import subprocess
import sys
import threading
import time

proto_dir, work, target, ca, cert, key, mode = sys.argv[1:8]
gen = os.path.join(work, "gen")
if not os.path.exists(os.path.join(gen, "tensorflow_serving", "apis", "prediction_service_pb2_grpc.py")):
    os.makedirs(gen, exist_ok=True)
    protos = sorted(os.path.relpath(p, proto_dir) for p in glob.glob(f"{proto_dir}/**/*.proto", recursive=True))
    subprocess.run(["protoc", f"-I{proto_dir}", "-I/usr/include", f"--python_out={gen}", f"--grpc_python_out={gen}",
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + protos, check=True)
sys.path.insert(0, gen)

import grpc  # noqa: E402
from google.protobuf.internal.encoder import _VarintBytes  # noqa: E402
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,  # noqa: E402
                                     get_model_status_pb2, inference_pb2, model_management_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc,
                                     regression_pb2)

failures = 0
passes = 0


def check(cond, what):
    global failures, passes
    if cond:
        passes += 1
    else:
        failures += 1
        print(f"grpc_client: FAILED: {what}")


def read(p):
    with open(p, "rb") as f:
        return f.read()


creds = grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))
opts = [("grpc.ssl_target_name_override", "localhost"), ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20)]


def channel(compression=None):
    return grpc.secure_channel(target, creds, options=opts, compression=compression)


ch = channel()
pred = prediction_service_pb2_grpc.PredictionServiceStub(ch)
models = model_service_pb2_grpc.ModelServiceStub(ch)


def image(batch, value=0.5, content=True, dtype=types_pb2.DT_FLOAT, dims=None):
    t = tensor_pb2.TensorProto(dtype=dtype)
    for d in (dims if dims is not None else [batch, 1, 8, 8]):
        t.tensor_shape.dim.append(tensor_shape_pb2.TensorShapeProto.Dim(size=d))
    n = batch * 64
    if content:
        t.tensor_content = struct.pack(f"<{n}f", *([value] * n))
    else:
        t.float_val.extend([value] * n)
    return t


def predict_req(model, batch=1, version=None, label=None, sig="", content=True, name="image", t=None):
    r = predict_pb2.PredictRequest()
    r.model_spec.name = model
    if version is not None:
        r.model_spec.version.value = version
    if label is not None:
        r.model_spec.version_label = label
    r.model_spec.signature_name = sig
    r.inputs[name].CopyFrom(t if t is not None else image(batch, content=content))
    return r


def code_of(fn, *a, **kw):
    try:
        return fn(*a, **kw), grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return None, e.code(), e.details()


def expect_error(fn, req, code, text, what):
    _, c, d = code_of(fn, req, timeout=20)
    check(c == code and text in (d or ""), f"{what}: got {c} {d!r}, want {code} with {text!r}")


def served_version(model):
    res, c, _ = code_of(pred.Predict, predict_req(model), timeout=20)
    return res.model_spec.version.value if c == grpc.StatusCode.OK else None


health = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)
watch = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)


def watcher(svc, timeout=120):
    """A Watch call and a queue of its events: ("msg", bytes) per message, then ("end", code, details)."""
    call = watch(field(1, svc.encode()) if svc else b"", timeout=timeout)
    q = queue.Queue()

    def run():
        try:
            for m in call:
                q.put(("msg", m))
            q.put(("end", grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            q.put(("end", e.code(), e.details()))
    threading.Thread(target=run, daemon=True).start()
    return call, q


def next_event(q, t=20):
    try:
        return q.get(timeout=t)
    except queue.Empty:
        return None


if mode.startswith("wait:"):
    _, model, version = mode.split(":")
    deadline = time.time() + 30
    while time.time() < deadline and served_version(model) != int(version):
        time.sleep(0.2)
    check(served_version(model) == int(version), f"{model} version {version} served after the reload")
    print(f"grpc_client: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)

def crc32c(b):
    c = 0xffffffff
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    return c ^ 0xffffffff


def field(num, data):  # a length-delimited protobuf field
    return _VarintBytes(num << 3 | 2) + _VarintBytes(len(data)) + data


if mode.startswith("warmupfile:"):
    # TF Serving's warm-up file: TFRecord frames of PredictionLog { predict_log { request } }
    # (field numbers from tensorflow_serving/apis/prediction_log.proto, which the shared protos leave out)
    _, out, kind = mode.split(":")

    def tfrecord(d):
        n = struct.pack("<Q", len(d))
        m = lambda c: (((c >> 15) | (c << 17)) + 0xa282ead8) & 0xffffffff  # noqa: E731
        return n + struct.pack("<I", m(crc32c(n))) + d + struct.pack("<I", m(crc32c(d)))
    digits_cls = classification_pb2.ClassificationRequest()
    digits_cls.model_spec.name = "digits"
    digits_cls.input.example_list.examples.add().features.feature["image"].float_list.value.extend([0.5] * 64)
    # for example_model.py's model: a classify, a regress and a multi-inference log
    tiny_cls = classification_pb2.ClassificationRequest()
    tiny_cls.model_spec.name = "tiny"
    for b in range(3):
        e = tiny_cls.input.example_list.examples.add()
        e.features.feature["x"].float_list.value.extend([1.0, 2.0, 3.0])
        e.features.feature["k"].int64_list.value.append(b)
    tiny_reg = regression_pb2.RegressionRequest(model_spec=tiny_cls.model_spec, input=tiny_cls.input)
    tiny_multi = inference_pb2.MultiInferenceRequest(input=tiny_cls.input)
    for method in ("tensorflow/serving/classify", "tensorflow/serving/regress"):
        tiny_multi.tasks.add(method_name=method).model_spec.name = "tiny"
    # and a Predict on the classification signature (its input: the examples serialized)
    tiny_pred = predict_pb2.PredictRequest()
    tiny_pred.model_spec.name = "tiny"
    tiny_pred.model_spec.signature_name = "classification"
    ser = tiny_pred.inputs["inputs"]
    ser.dtype = types_pb2.DT_STRING
    ser.tensor_shape.dim.append(tensor_shape_pb2.TensorShapeProto.Dim(size=3))
    ser.string_val.extend(e.SerializeToString() for e in tiny_cls.input.example_list.examples)
    logs = {"good": [(6, predict_req("ignored", batch=b)) for b in (1, 4)],
            "badinput": [(6, predict_req("ignored", name="img"))],
            "classify": [(2, digits_cls)],
            "examples": [(2, tiny_cls), (3, tiny_reg), (4, tiny_multi), (6, tiny_pred)]}[kind]
    with open(out, "wb") as f:
        for num, req in logs:
            f.write(tfrecord(field(num, field(1, req.SerializeToString()))))
    sys.exit(0)

if mode.startswith("b64examples:"):
    # base64 of serialized tf.Examples for the REST tests: "x1,x2,x3/k;..." one per line
    import base64
    for item in mode.split(":", 1)[1].split(";"):
        xs, k = item.split("/")
        e = classification_pb2.ClassificationRequest().input.example_list.examples.add()
        e.features.feature["x"].float_list.value.extend(float(v) for v in xs.split(","))
        e.features.feature["k"].int64_list.value.append(int(k))
        print(base64.b64encode(e.SerializeToString()).decode())
    sys.exit(0)

if mode == "examples":
    # Classify, Regress and MultiInference on the model of tests/serve/example_model.py ("tiny")
    import math

    def ex(msg, x=None, k=None):
        e = msg.add()
        if x is not None:
            e.features.feature["x"].float_list.value.extend(x)
        if k is not None:
            e.features.feature["k"].int64_list.value.extend(k)
        return e

    def softmax(a, b):
        m = max(a, b)
        ea, eb = math.exp(a - m), math.exp(b - m)
        return ea / (ea + eb), eb / (ea + eb)

    rows = [([1.0, 2.0, 3.0], [1]), ([0.0, 0.0, 1.0], [5]), ([0.5, -1.0, 2.0], [-2])]
    cr = classification_pb2.ClassificationRequest()
    cr.model_spec.name = "tiny"
    for x, k in rows:
        ex(cr.input.example_list.examples, x, k)
    res, c, d = code_of(pred.Classify, cr, timeout=20)
    check(c == grpc.StatusCode.OK, f"Classify: {c} {d}")
    if c == grpc.StatusCode.OK:
        check(res.model_spec.name == "tiny" and res.model_spec.version.value == 1 and
              res.model_spec.signature_name == "classification", f"Classify model_spec: {res.model_spec}")
        check(len(res.result.classifications) == 3, "Classify: one Classifications per example")
        for (x, _), cl in zip(rows, res.result.classifications):
            want = softmax(x[0] + x[2], x[1] + x[2])
            check([c.label for c in cl.classes] == ["cat", "dog"], f"Classify labels: {cl}")
            check(all(abs(c.score - w) < 1e-6 for c, w in zip(cl.classes, want)), f"Classify scores {cl} vs {want}")
    # Regress with a context (k from the context unless the example sets it)
    rr = regression_pb2.RegressionRequest()
    rr.model_spec.name = "tiny"
    rr.model_spec.signature_name = "regression"
    ctx = rr.input.example_list_with_context
    ctx.context.features.feature["k"].int64_list.value.append(10)
    ex(ctx.examples, [1.0, 2.0, 3.0])
    ex(ctx.examples, [1.0, 1.0, 1.0], [-4])
    res, c, d = code_of(pred.Regress, rr, timeout=20)
    check(c == grpc.StatusCode.OK, f"Regress: {c} {d}")
    if c == grpc.StatusCode.OK:
        check([r.value for r in res.result.regressions] == [24.0, 2.0], f"Regress values: {res.result}")
        check(res.model_spec.signature_name == "regression", "Regress model_spec")
    # MultiInference: both signatures over one input, one run
    mr = inference_pb2.MultiInferenceRequest()
    for method in ("tensorflow/serving/classify", "tensorflow/serving/regress"):
        t = mr.tasks.add()
        t.model_spec.name = "tiny"
        t.method_name = method
    ex(mr.input.example_list.examples, [1.0, 2.0, 3.0], [1])
    res, c, d = code_of(pred.MultiInference, mr, timeout=20)
    check(c == grpc.StatusCode.OK, f"MultiInference: {c} {d}")
    if c == grpc.StatusCode.OK:
        check(len(res.results) == 2, "MultiInference: two results")
        r0, r1 = res.results
        check(r0.model_spec.signature_name == "classification" and r0.WhichOneof("result") == "classification_result"
              and [c.label for c in r0.classification_result.classifications[0].classes] == ["cat", "dog"],
              f"MultiInference classify result: {r0}")
        check(r1.model_spec.signature_name == "regression" and
              [r.value for r in r1.regression_result.regressions] == [15.0], f"MultiInference regress result: {r1}")
    # errors
    bad = classification_pb2.ClassificationRequest()
    bad.model_spec.name = "tiny"
    ex(bad.input.example_list.examples, [1.0, 2.0, 3.0])
    expect_error(pred.Classify, bad, grpc.StatusCode.INVALID_ARGUMENT,
                 "Feature: k (data type: int64) is required but could not be found in example 0", "missing feature")
    bad = classification_pb2.ClassificationRequest()
    bad.model_spec.name = "tiny"
    ex(bad.input.example_list.examples, [1.0, 2.0, 3.0], [1])
    ex(bad.input.example_list.examples, [1.0, 2.0], [1])
    expect_error(pred.Classify, bad, grpc.StatusCode.INVALID_ARGUMENT,
                 "Feature: x of example 1 has 2 values; input x (shape [-1,3]) takes 3 per example", "value count")
    bad = classification_pb2.ClassificationRequest()
    bad.model_spec.name = "tiny"
    e = ex(bad.input.example_list.examples, None, [1])
    e.features.feature["x"].bytes_list.value.extend([b"a", b"b", b"c"])
    expect_error(pred.Classify, bad, grpc.StatusCode.INVALID_ARGUMENT, "Feature: x of example 0 is a bytes_list",
                 "bytes feature")
    bad = classification_pb2.ClassificationRequest()
    bad.model_spec.name = "tiny"
    ex(bad.input.example_list.examples, [1.0, 2.0, 3.0], None).features.feature["k"].float_list.value.append(1.0)
    expect_error(pred.Classify, bad, grpc.StatusCode.INVALID_ARGUMENT, "Feature: k of example 0 is a float_list",
                 "float feature for an int64 input")
    bad = classification_pb2.ClassificationRequest()
    bad.model_spec.name = "tiny"
    expect_error(pred.Classify, bad, grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.", "empty input")
    good = classification_pb2.ClassificationRequest()
    good.CopyFrom(cr)
    good.model_spec.signature_name = "regression"
    expect_error(pred.Classify, good, grpc.StatusCode.INVALID_ARGUMENT,
                 "Expected classification signature method_name to be tensorflow/serving/classify. Was: "
                 "tensorflow/serving/regress", "Classify on the regression signature")
    good.model_spec.signature_name = "serving_default"
    expect_error(pred.Classify, good, grpc.StatusCode.INVALID_ARGUMENT, "Was: tensorflow/serving/predict",
                 "Classify on the predict signature")
    good.model_spec.signature_name = "nosuch"
    expect_error(pred.Classify, good, grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nosuch",
                 "Classify on an unknown signature")
    good.model_spec.signature_name = ""
    good.model_spec.name = "nosuch"
    expect_error(pred.Classify, good, grpc.StatusCode.NOT_FOUND, "Servable not found", "Classify on an unknown model")
    m2 = inference_pb2.MultiInferenceRequest()
    m2.CopyFrom(mr)
    m2.tasks[1].model_spec.name = "other"
    expect_error(pred.MultiInference, m2, grpc.StatusCode.INVALID_ARGUMENT,
                 "All ModelSpecs in a MultiInferenceRequest must access the same model name.", "two models")
    m2.CopyFrom(mr)
    m2.tasks[1].method_name = "tensorflow/serving/classify"
    expect_error(pred.MultiInference, m2, grpc.StatusCode.INVALID_ARGUMENT,
                 "Duplicate evaluation of signature: classification", "a signature twice")
    m2.tasks[1].method_name = "tensorflow/serving/predict"
    expect_error(pred.MultiInference, m2, grpc.StatusCode.UNIMPLEMENTED,
                 "Unsupported signature method_name: tensorflow/serving/predict", "predict task")
    m2.CopyFrom(mr)
    del m2.tasks[:]
    expect_error(pred.MultiInference, m2, grpc.StatusCode.INVALID_ARGUMENT, "at least one task", "no task")
    # Predict on the classify and regress signatures, as TF runs it: "inputs" holds serialized tf.Examples
    def strings(items, dims=None):
        shape = tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in (dims or [len(items)])])
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=items, tensor_shape=shape)

    def floats_of(t):
        return list(t.float_val) or list(struct.unpack(f"<{len(t.tensor_content) // 4}f", t.tensor_content))

    serialized = [e.SerializeToString() for e in cr.input.example_list.examples]
    pr = predict_pb2.PredictRequest()
    pr.model_spec.name = "tiny"
    pr.model_spec.signature_name = "classification"
    pr.inputs["inputs"].CopyFrom(strings(serialized))
    res, c, d = code_of(pred.Predict, pr, timeout=20)
    check(c == grpc.StatusCode.OK, f"Predict on classification: {c} {d}")
    if c == grpc.StatusCode.OK:
        check(res.model_spec.signature_name == "classification" and set(res.outputs) == {"classes", "scores"},
              f"Predict on classification: {res.model_spec} {list(res.outputs)}")
        cls, sc = res.outputs["classes"], res.outputs["scores"]
        check(cls.dtype == types_pb2.DT_STRING and [x.size for x in cls.tensor_shape.dim] == [3, 2] and
              list(cls.string_val) == [b"cat", b"dog"] * 3, f"Predict classes: {cls}")
        want = [v for x, _ in rows for v in softmax(x[0] + x[2], x[1] + x[2])]
        got = floats_of(sc)
        check(sc.dtype == types_pb2.DT_FLOAT and [x.size for x in sc.tensor_shape.dim] == [3, 2] and
              len(got) == 6 and all(abs(a - b) < 1e-6 for a, b in zip(got, want)), f"Predict scores {got} vs {want}")
    pr.output_filter.append("scores")
    res, c, d = code_of(pred.Predict, pr, timeout=20)
    check(c == grpc.StatusCode.OK and set(res.outputs) == {"scores"}, f"Predict on classification, filtered: {c} {d}")
    pr = predict_pb2.PredictRequest()
    pr.model_spec.name = "tiny"
    pr.model_spec.signature_name = "regression"
    pr.inputs["inputs"].CopyFrom(strings(serialized[:2]))
    res, c, d = code_of(pred.Predict, pr, timeout=20)
    check(c == grpc.StatusCode.OK and set(res.outputs) == {"outputs"} and
          [x.size for x in res.outputs["outputs"].tensor_shape.dim] == [2, 1] and
          floats_of(res.outputs["outputs"]) == [15.0, 8.0], f"Predict on regression: {c} {d} {res}")
    pr.inputs["inputs"].CopyFrom(strings([b"\xff\xff"]))
    expect_error(pred.Predict, pr, grpc.StatusCode.INVALID_ARGUMENT,
                 "Could not parse example input 0: not a serialized tf.Example", "Predict: a malformed example")
    pr.inputs["inputs"].CopyFrom(strings(serialized[:2], dims=[2, 1]))
    expect_error(pred.Predict, pr, grpc.StatusCode.INVALID_ARGUMENT,
                 "Expected serialized to be a vector, got shape: [2,1]", "Predict: examples not a vector")
    pr.inputs["inputs"].CopyFrom(image(1))
    expect_error(pred.Predict, pr, grpc.StatusCode.INVALID_ARGUMENT,
                 "Expects arg[0] to be string but float is provided", "Predict: float examples")
    pr.inputs["inputs"].CopyFrom(strings([cr.input.example_list.examples[0].SerializeToString()[:-3]]))
    expect_error(pred.Predict, pr, grpc.StatusCode.INVALID_ARGUMENT, "example input 0", "Predict: a cut example")
    e = classification_pb2.ClassificationRequest()
    ex(e.input.example_list.examples, [1.0, 2.0, 3.0])
    pr.inputs["inputs"].CopyFrom(strings([e.input.example_list.examples[0].SerializeToString()]))
    expect_error(pred.Predict, pr, grpc.StatusCode.INVALID_ARGUMENT,
                 "Feature: k (data type: int64) is required but could not be found in example 0",
                 "Predict: an example without a feature")
    del pr.inputs["inputs"]
    pr.inputs["x"].CopyFrom(image(1))
    expect_error(pred.Predict, pr, grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {inputs}",
                 "Predict on regression with the model's inputs")
    raw = ch.unary_unary("/tensorflow.serving.PredictionService/Classify", request_serializer=lambda b: b,
                         response_deserializer=lambda b: b)
    expect_error(raw, b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT, "not a valid protobuf message",
                 "malformed ClassificationRequest")
    # the metadata lists the declared signatures with their methods
    mreq = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    mreq.model_spec.name = "tiny"
    res, c, d = code_of(pred.GetModelMetadata, mreq, timeout=20)
    check(c == grpc.StatusCode.OK, f"metadata: {c} {d}")
    if c == grpc.StatusCode.OK:
        from tensorflow_serving.apis import get_model_metadata_pb2 as gm
        sdm = gm.SignatureDefMap()
        res.metadata["signature_def"].Unpack(sdm)
        methods = {k: v.method_name for k, v in sdm.signature_def.items()}
        check(methods == {"serving_default": "tensorflow/serving/predict",
                          "classification": "tensorflow/serving/classify",
                          "regression": "tensorflow/serving/regress"}, f"metadata signatures: {methods}")
        cls = sdm.signature_def["classification"]
        check(set(cls.inputs) == {"inputs"} and set(cls.outputs) == {"classes", "scores"},
              f"classification signature: {cls}")
    print(f"grpc_client: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)

if mode == "oversize":
    # a server started with grpc.max_receive_message_length=1048576
    _, c, d = code_of(pred.Predict, predict_req("digits", t=image(5000)), timeout=30)  # 1.28 MB
    check(c == grpc.StatusCode.RESOURCE_EXHAUSTED, f"message over the configured cap: {c} {d}")
    _, c, d = code_of(pred.Predict, predict_req("digits", t=image(3000)), timeout=30)  # 0.77 MB
    check(c == grpc.StatusCode.OK, f"message under the configured cap: {c} {d}")
    print(f"grpc_client: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)

def reload_req(*cfgs):
    req = model_management_pb2.ReloadConfigRequest()
    for name, base, versions, labels in cfgs:
        c = req.config.model_config_list.config.add(name=name, base_path=base, model_platform="onnx")
        if versions:
            c.model_version_policy.specific.versions.extend(versions)
        for k, v in labels.items():
            c.version_labels[k] = v
    return req


if mode == "reload":
    # a server started with --allow_reload_config on models.config (digits 1+2, other 7);
    # a health Watch of the server follows the reloads (below)
    w_call, w_q = watcher("")
    check(next_event(w_q) == ("msg", b"\x08\x01"), "Watch before the reloads: SERVING")
    p_call, p_q = watcher("PredictionService")
    check(next_event(p_q) == ("msg", b"\x08\x01"), "Watch of the prediction service: SERVING")
    new = reload_req(("digits", "models/digits", [1], {"stable": 1}), ("third", "models/other", [], {}))
    res, c, d = code_of(models.HandleReloadConfigRequest, new, timeout=60)
    check(c == grpc.StatusCode.OK and res.status.error_code == 0, f"reload: {c} {d}")
    check(served_version("digits") == 1, "digits now serves version 1 only (its new policy)")
    check(served_version("third") == 7, "a model the reload added is served at once")
    expect_error(pred.Predict, predict_req("other"), grpc.StatusCode.NOT_FOUND,
                 "Servable not found for request: Latest(other)", "a model the reload dropped")
    sr = get_model_status_pb2.GetModelStatusRequest()
    sr.model_spec.name = "other"
    expect_error(models.GetModelStatus, sr, grpc.StatusCode.NOT_FOUND, "Could not find any versions of model other",
                 "status of a dropped model")
    res, c, d = code_of(pred.Predict, predict_req("digits", label="stable"), timeout=20)
    check(c == grpc.StatusCode.OK and res.model_spec.version.value == 1, f"the new label: {c} {d}")
    # a model with nothing to serve is reported, naming it; the others keep serving
    bad = reload_req(("digits", "models/digits", [1], {}), ("third", "models/other", [], {}),
                     ("nope", "models/none", [], {}))
    expect_error(models.HandleReloadConfigRequest, bad, grpc.StatusCode.NOT_FOUND, "model nope: ",
                 "reload with a model that has no version")
    # a model without an AVAILABLE version: the watchers hear NOT_SERVING (and nothing before it:
    # the first reload kept every model available)
    check(next_event(w_q) == ("msg", b"\x08\x02"), "Watch: NOT_SERVING once a model has no version")
    check(next_event(p_q) == ("msg", b"\x08\x02"), "Watch of the prediction service: NOT_SERVING")
    res, c, d = code_of(models.HandleReloadConfigRequest, new, timeout=60)
    check(c == grpc.StatusCode.OK, f"reload back to two models: {c} {d}")
    check(next_event(w_q) == ("msg", b"\x08\x01"), "Watch: SERVING again after the reload")
    p_call.cancel()
    check(served_version("third") == 7 and served_version("digits") == 1, "what loaded keeps serving")
    expect_error(models.HandleReloadConfigRequest, reload_req(("a", "models/digits", [], {}), ("a", "x", [], {})),
                 grpc.StatusCode.INVALID_ARGUMENT, "Illegal to list model a multiple times in config list",
                 "reload listing a model twice")
    custom = model_management_pb2.ReloadConfigRequest()
    custom.config.custom_model_config.type_url = "x"
    expect_error(models.HandleReloadConfigRequest, custom, grpc.StatusCode.INVALID_ARGUMENT,
                 "Only ModelConfigList is currently supported", "reload with custom_model_config")
    check(next_event(w_q, 0.5) is None, "Watch: refused reloads change nothing")
    w_call.cancel()
    print(f"grpc_client: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)

if mode.startswith("flood:"):
    _, model, n = mode.split(":")
    results = []
    lock = threading.Lock()

    def one():
        _, c, d = code_of(pred.Predict, predict_req(model, batch=4), timeout=60)
        with lock:
            results.append((c, d))

    ths = [threading.Thread(target=one) for _ in range(int(n))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    ok = sum(1 for c, _ in results if c == grpc.StatusCode.OK)
    full = sum(1 for c, d in results if c == grpc.StatusCode.RESOURCE_EXHAUSTED and "queue" in d)
    other = [r for r in results if r[0] not in (grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED)]
    print(f"flood: ok={ok} refused={full} other={len(other)} {other[:2]}")
    sys.exit(0 if not other else 1)

if mode.startswith("watchstop:"):
    # a Watch open while the server stops gracefully (the caller sends SIGTERM once the file
    # names the first status): NOT_SERVING, then the call ends UNAVAILABLE
    flag = mode.split(":", 1)[1]
    w_call, w_q = watcher("ModelService")
    check(next_event(w_q) == ("msg", b"\x08\x01"), "Watch before the stop: SERVING")
    open(flag, "w").write("watching\n")
    check(next_event(w_q, 30) == ("msg", b"\x08\x02"), "Watch at a graceful stop: NOT_SERVING")
    ev = next_event(w_q, 30)
    check(ev is not None and ev[0] == "end" and ev[1] == grpc.StatusCode.UNAVAILABLE and "shutting down" in ev[2],
          f"Watch at a graceful stop ends UNAVAILABLE: {ev}")
    print(f"grpc_client: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)

# ---- mode "models"

# Predict, both tensor encodings, batch 3; the answer is a probability row per item
for content in (True, False):
    res, c, d = code_of(pred.Predict, predict_req("digits", batch=3, content=content), timeout=20)
    check(c == grpc.StatusCode.OK, f"predict content={content}: {c} {d}")
    if res is not None:
        out = res.outputs["probabilities"]
        check(out.dtype == types_pb2.DT_FLOAT, "output dtype")
        check([x.size for x in out.tensor_shape.dim] == [3, 10], f"output shape {out.tensor_shape}")
        check(len(out.float_val) == 30 and abs(sum(out.float_val[:10]) - 1.0) < 1e-3, "typed float_val, softmax rows")
        check(res.model_spec.name == "digits" and res.model_spec.version.value == 2, f"resolved spec {res.model_spec}")
        check(res.model_spec.signature_name == "serving_default", "resolved signature")
# versions and labels across the two models
check(served_version("digits") == 2, "digits serves its latest of the specific versions")
for label, want in (("stable", 1), ("canary", 2)):
    res, c, d = code_of(pred.Predict, predict_req("digits", label=label), timeout=20)
    check(c == grpc.StatusCode.OK and res.model_spec.version.value == want, f"label {label}: {c} {d}")
res, c, _ = code_of(pred.Predict, predict_req("digits", version=1), timeout=20)
check(c == grpc.StatusCode.OK and res.model_spec.version.value == 1, "explicit version 1")
check(served_version("other") == 7, "second model, its own versions")
# gzip both ways
gz = prediction_service_pb2_grpc.PredictionServiceStub(channel(grpc.Compression.Gzip))
res, c, d = code_of(gz.Predict, predict_req("digits", batch=2), timeout=20)
check(c == grpc.StatusCode.OK and len(res.outputs["probabilities"].float_val) == 20, f"gzip predict: {c} {d}")

# metadata
md = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
md.model_spec.name = "digits"
res, c, d = code_of(pred.GetModelMetadata, md, timeout=20)
check(c == grpc.StatusCode.OK, f"metadata: {c} {d}")
if res is not None:
    sdm = get_model_metadata_pb2.SignatureDefMap()
    check(res.metadata["signature_def"].Unpack(sdm), "metadata Any unpacks")
    sd = sdm.signature_def["serving_default"]
    check(sd.inputs["image"].dtype == types_pb2.DT_FLOAT, "metadata input dtype")
    check([x.size for x in sd.inputs["image"].tensor_shape.dim] == [-1, 1, 8, 8], "metadata dims, -1 batch")
    check(res.model_spec.version.value == 2, "metadata resolved version")
md.model_spec.version_label = "stable"
res, c, _ = code_of(pred.GetModelMetadata, md, timeout=20)
check(c == grpc.StatusCode.OK and res.model_spec.version.value == 1, "metadata by label")
expect_error(pred.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"]),
             grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec", "metadata without model_spec")
bad = get_model_metadata_pb2.GetModelMetadataRequest()
bad.model_spec.name = "digits"
expect_error(pred.GetModelMetadata, bad, grpc.StatusCode.INVALID_ARGUMENT, "at least one metadata_field",
             "metadata without field")
bad.metadata_field.append("graph")
expect_error(pred.GetModelMetadata, bad, grpc.StatusCode.INVALID_ARGUMENT, "Metadata field graph is not supported",
             "unsupported metadata field")

# status
sr = get_model_status_pb2.GetModelStatusRequest()
sr.model_spec.name = "digits"
res, c, d = code_of(models.GetModelStatus, sr, timeout=20)
check(c == grpc.StatusCode.OK, f"status: {c} {d}")
if res is not None:
    states = {v.version: v.state for v in res.model_version_status}
    A = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    check(states == {1: A, 2: A}, f"status lists both versions AVAILABLE: {states}")
sr.model_spec.version.value = 5
expect_error(models.GetModelStatus, sr, grpc.StatusCode.NOT_FOUND, "Could not find version 5 of model digits",
             "status of a missing version")
sr = get_model_status_pb2.GetModelStatusRequest()
sr.model_spec.name = "nosuch"
expect_error(models.GetModelStatus, sr, grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nosuch",
             "status of an unknown model")
expect_error(models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(), grpc.StatusCode.INVALID_ARGUMENT,
             "Missing ModelSpec", "status without model_spec")

# predict errors
expect_error(pred.Predict, predict_req("nosuch"), grpc.StatusCode.NOT_FOUND,
             "Servable not found for request: Latest(nosuch)", "unknown model")
expect_error(pred.Predict, predict_req("digits", version=3), grpc.StatusCode.NOT_FOUND,
             "Servable not found for request: Specific(digits, 3)", "version the policy does not serve")
expect_error(pred.Predict, predict_req("digits", label="beta"), grpc.StatusCode.INVALID_ARGUMENT,
             "Unrecognized servable version label: beta", "unknown label")
expect_error(pred.Predict, predict_req("digits", sig="other"), grpc.StatusCode.FAILED_PRECONDITION,
             'Serving signature key "other" not found.', "unknown signature")
expect_error(pred.Predict, predict_req("digits", name="img"), grpc.StatusCode.INVALID_ARGUMENT,
             "input size does not match signature", "wrong input name")
expect_error(pred.Predict, predict_req("digits", t=image(1, dims=[1, 1, 8, 8], dtype=types_pb2.DT_INT32,
                                                         content=False)),
             grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be float but int32 is provided", "wrong dtype")
expect_error(pred.Predict, predict_req("digits", t=image(1, dims=[1, 1, 8, 7], content=False)),
             grpc.StatusCode.INVALID_ARGUMENT, "", "wrong shape")
t = image(1)
t.tensor_content = t.tensor_content[:-4]
expect_error(pred.Predict, predict_req("digits", t=t), grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error",
             "tensor_content of the wrong size")
r = predict_req("digits")
r.output_filter.append("logits")
expect_error(pred.Predict, r, grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: logits",
             "unknown output filter")
r = predict_req("digits")
r.output_filter.extend(["probabilities", "probabilities"])
expect_error(pred.Predict, r, grpc.StatusCode.INVALID_ARGUMENT, "duplicate output tensor alias", "duplicate filter")
expect_error(pred.Predict, predict_pb2.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec",
             "predict without model_spec")
# digits declares no classify or regress signature (tests/serve/example_model.py's model does)
cr = classification_pb2.ClassificationRequest()
cr.model_spec.name = "digits"
cr.input.example_list.examples.add().features.feature["image"].float_list.value.extend([0.5] * 64)
expect_error(pred.Classify, cr, grpc.StatusCode.UNIMPLEMENTED,
             "the model has no tensorflow/serving/classify signature", "Classify")
rr = regression_pb2.RegressionRequest()
rr.model_spec.name = "digits"
rr.input.CopyFrom(cr.input)
expect_error(pred.Regress, rr, grpc.StatusCode.UNIMPLEMENTED, "the model has no tensorflow/serving/regress signature",
             "Regress")
# raw bytes: malformed protobuf, unknown method, oversize message
raw = ch.unary_unary("/tensorflow.serving.PredictionService/Predict", request_serializer=lambda b: b,
                     response_deserializer=lambda b: b)
_, c, d = code_of(raw, b"\x0a\xff\xff\xff\xff\x0f", timeout=20)
check(c == grpc.StatusCode.INVALID_ARGUMENT, f"malformed protobuf: {c} {d}")
_, c, d = code_of(raw, b"\xff" * 64, timeout=20)
check(c == grpc.StatusCode.INVALID_ARGUMENT, f"garbage bytes: {c} {d}")
# 5 MB, over gRPC's usual 4 MiB default: TF Serving (and coffer) take up to INT32_MAX
big = predict_req("digits", t=image(20000))
res, c, d = code_of(pred.Predict, big, timeout=60)
if os.environ.get("BATCHING"):  # the message gets through, to the batcher's max_batch_size
    check(c == grpc.StatusCode.INVALID_ARGUMENT and "Task size 20000 is larger than maximum input batch size" in d,
          f"5 MB message with batching: {c} {d}")
else:
    check(c == grpc.StatusCode.OK and len(res.outputs["probabilities"].float_val) == 200000,
          f"5 MB message (over 4 MiB): {c} {d}")
nomethod = ch.unary_unary("/tensorflow.serving.PredictionService/Nope", request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
_, c, d = code_of(nomethod, b"", timeout=20)
check(c == grpc.StatusCode.UNIMPLEMENTED, f"unknown method: {c} {d}")
# a generous deadline (grpc-timeout) is met
_, c, _ = code_of(pred.Predict, predict_req("digits"), timeout=10)
check(c == grpc.StatusCode.OK, f"predict with a deadline: {c}")

# grpc.health.v1.Health/Check, hand-encoded (HealthCheckRequest { string service = 1; }):
# SERVING is b"\x08\x01"; an unknown service is NOT_FOUND
for svc in ("", "ModelService", "PredictionService", "tensorflow.serving.PredictionService"):
    res, c, d = code_of(health, field(1, svc.encode()) if svc else b"", timeout=10)
    check(c == grpc.StatusCode.OK and res == b"\x08\x01", f"health of {svc!r}: {c} {d} {res!r}")
_, c, d = code_of(health, field(1, b"nope"), timeout=10)
check(c == grpc.StatusCode.NOT_FOUND and "unknown service nope" in d, f"health of an unknown service: {c} {d}")
_, c, d = code_of(health, b"\x0a\x05x", timeout=10)
check(c == grpc.StatusCode.INVALID_ARGUMENT, f"malformed HealthCheckRequest: {c} {d}")
# Watch (server streaming): the current status at once, the call stays open (also for an
# unknown service: SERVICE_UNKNOWN, b"\x08\x03", as a message), the client's cancel ends it
w_call, w_q = watcher("")
check(next_event(w_q) == ("msg", b"\x08\x01"), "Watch of the server: SERVING first")
u_call, u_q = watcher("nope")
check(next_event(u_q) == ("msg", b"\x08\x03"), "Watch of an unknown service: SERVICE_UNKNOWN, not an error")
m_call, m_q = watcher("tensorflow.serving.ModelService")
check(next_event(m_q) == ("msg", b"\x08\x01"), "Watch of the model service: SERVING first")
check(next_event(u_q, 1.0) is None and next_event(w_q, 0.1) is None, "Watch calls stay open without changes")
u_call.cancel()
ev = next_event(u_q)
check(ev is not None and ev[0] == "end" and ev[1] == grpc.StatusCode.CANCELLED, f"a cancelled Watch ends: {ev}")
res, c, d = code_of(health, b"", timeout=10)
check(c == grpc.StatusCode.OK and res == b"\x08\x01", f"Check beside open Watch calls: {c} {d}")
w_call.cancel()
m_call.cancel()
_, c, d = code_of(lambda *a, **k: list(watch(*a, **k)), b"\x0a\x05x", timeout=10)
check(c == grpc.StatusCode.INVALID_ARGUMENT, f"malformed Watch request: {c} {d}")

# HandleReloadConfigRequest is off unless the server allows it
expect_error(models.HandleReloadConfigRequest, reload_req(("digits", "models/digits", [], {})),
             grpc.StatusCode.UNIMPLEMENTED, "--allow_reload_config", "reload on a server that does not allow it")

# many concurrent clients, each on its own channel (own TLS connection), batches of 1 to 4
# items of one of 5 pixel values; every item's row is the one a lone batch-1 predict of its
# value gets (both models are the same file), whatever batch the server merged it into,
# padded or re-planned for
errors = []
ref_rows = []
for v in range(5):
    ref, c, d = code_of(pred.Predict, predict_req("digits", t=image(1, value=0.2 * v)), timeout=30)
    check(c == grpc.StatusCode.OK and len(ref.outputs["probabilities"].float_val) == 10,
          f"reference predict: {c} {d}")
    ref_rows.append(list(ref.outputs["probabilities"].float_val) if c == grpc.StatusCode.OK else [0.0] * 10)
check(ref_rows[0] != ref_rows[4], "the reference rows differ by input")


def client(i):
    c2 = channel()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(c2)
    for k in range(10):
        b, v = 1 + (i + k) % 4, (i + 3 * k) % 5
        res, code, d = code_of(stub.Predict, predict_req("digits" if k % 2 else "other", t=image(b, value=0.2 * v)),
                               timeout=30)
        got = list(res.outputs["probabilities"].float_val) if code == grpc.StatusCode.OK else []
        want = ref_rows[v] * b
        if len(got) != 10 * b:
            errors.append((i, k, code, d))
        elif any(abs(x - y) > 1e-5 + 1e-5 * abs(y) for x, y in zip(got, want)):
            errors.append((i, k, f"rows differ from the batch-1 answer for {0.2 * v}", got[:10], want[:10]))
    c2.close()


ths = [threading.Thread(target=client, args=(i,)) for i in range(16)]
for t in ths:
    t.start()
for t in ths:
    t.join()
check(not errors, f"16 concurrent clients x 10 predicts: {errors[:3]}")

# a client without a certificate is refused by TLS
nocert = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=read(ca)), options=opts)
_, c, d = code_of(prediction_service_pb2_grpc.PredictionServiceStub(nocert).Predict, predict_req("digits"), timeout=10)
check(c == grpc.StatusCode.UNAVAILABLE, f"no client certificate: {c} {d}")

print(f"grpc_client: {passes} passed, {failures} failed")
sys.exit(1 if failures else 0)
