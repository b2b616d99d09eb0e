"""example_model.py — writes the small ONNX models the tf.Example API tests
serve (Classify, Regress, MultiInference), made at test time with Debian's
python3-onnx (run with /usr/bin/python3):

    example_model.py OUT_DIR

OUT_DIR/tiny/1/model.onnx: inputs x (float [N,3]) and k (int64 [N,1]);
outputs probs = softmax(x @ W) (float [N,2]) and value = x @ V + k
(float [N,1]). Its metadata_props declare a classification signature on
probs with the labels "cat,dog" and a regression signature on value.
OUT_DIR/badscores.onnx, OUT_DIR/badlabels.onnx, OUT_DIR/badregress.onnx:
the same graph with a declaration that does not fit it (an output it lacks,
three labels for two classes, a [N,2] output to regress on).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
V = np.array([[1], [2], [3]], dtype=np.float32)


def model(props):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
             helper.make_node("MatMul", ["x", "V"], ["lin"]),
             helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["lin", "kf"], ["value"])]
    g = helper.make_graph(nodes, "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
                           helper.make_tensor_value_info("k", TensorProto.INT64, ["N", 1])],
                          [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2]),
                           helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])],
                          [numpy_helper.from_array(W, "W"), numpy_helper.from_array(V, "V")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    helper.set_model_props(m, props)
    onnx.checker.check_model(m)
    return m


out = sys.argv[1]
good = {"coffer.serve.classify.scores": "probs", "coffer.serve.classify.labels": "cat,dog",
        "coffer.serve.regress.output": "value"}
os.makedirs(os.path.join(out, "tiny", "1"), exist_ok=True)
onnx.save(model(good), os.path.join(out, "tiny", "1", "model.onnx"))
onnx.save(model({"coffer.serve.classify.scores": "nosuch"}), os.path.join(out, "badscores.onnx"))
onnx.save(model({"coffer.serve.classify.scores": "probs", "coffer.serve.classify.labels": "a\nb\nc\n"}),
          os.path.join(out, "badlabels.onnx"))
onnx.save(model({"coffer.serve.regress.output": "probs"}), os.path.join(out, "badregress.onnx"))
