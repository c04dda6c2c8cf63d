"""Runs in a fresh process that imports only TensorFlow (never tfmodels, Keras or tensorflow-text).

Usage: python stock_tf_check.py EXPORT_DIR REQUESTS_JSON RESULT_JSON

1. Reads ``saved_model.pb`` and checks every op of the graph and of its function library
   against this process's op registry, which holds core TensorFlow's ops only: an op from a
   custom library (tensorflow-text, ...) is reported as "Op type not registered" would be
   reported by TF-Serving.
2. Runs each request (serialized TensorProtos) through its signature twice:
   - with the TF2 loader (``tf.saved_model.load``), as Python clients load a SavedModel;
   - the way TF-Serving's C++ server does: a TF1 Session over the ``serve`` MetaGraph
     (``tf.compat.v1.saved_model.loader.load`` restores the variables and runs the init op),
     then ``Session.run`` fed and fetched by the SignatureDef's tensor names.
3. Writes ``{"ops": n, "unknown_ops": [...], "outputs": {"tf2": [...], "session": [...]},
   "error": ...}`` to RESULT_JSON.
"""

import base64
import json
import sys

import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry


def graph_ops(export_dir):
    saved = saved_model_pb2.SavedModel()
    with open(f"{export_dir}/saved_model.pb", "rb") as f:
        saved.ParseFromString(f.read())
    ops, functions = set(), set()
    for meta_graph in saved.meta_graphs:
        graph = meta_graph.graph_def
        functions.update(f.signature.name for f in graph.library.function)
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            ops.update(node.op for node in function.node_def)
    return ops - functions  # a node may call a library function by name


def to_json(array):
    if array.dtype.kind in ("S", "O"):
        return {"dtype": "string", "values": [b.decode("utf-8", "replace") for b in array.reshape(-1)], "shape": list(array.shape)}
    return {"dtype": array.dtype.name, "values": array.reshape(-1).tolist(), "shape": list(array.shape)}


def decode_inputs(request):
    return {
        name: tf.make_ndarray(tensor_pb2.TensorProto.FromString(base64.b64decode(proto)))
        for name, proto in request["inputs"].items()
    }


def run_tf2(export_dir, requests):
    loaded = tf.saved_model.load(export_dir)
    outputs = []
    for request in requests:
        fn = loaded.signatures[request["signature_name"]]
        answer = fn(**{name: tf.constant(value) for name, value in decode_inputs(request).items()})
        outputs.append({name: to_json(value.numpy()) for name, value in answer.items()})
    return sorted(loaded.signatures), outputs


def run_session(export_dir, requests):
    graph = tf.Graph()
    outputs = []
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        for request in requests:
            signature = meta_graph.signature_def[request["signature_name"]]
            feed = {
                graph.get_tensor_by_name(signature.inputs[name].name): value
                for name, value in decode_inputs(request).items()
            }
            fetch = {name: graph.get_tensor_by_name(info.name) for name, info in signature.outputs.items()}
            answer = session.run(fetch, feed)
            outputs.append({name: to_json(value) for name, value in answer.items()})
    return outputs


def main(export_dir, requests_path, result_path):
    result = {"custom_modules_loaded": sorted(m for m in ("tensorflow_text", "keras_hub", "tfmodels") if m in sys.modules)}
    ops = graph_ops(export_dir)
    result["ops"] = len(ops)
    result["unknown_ops"] = sorted(op for op in ops if op_def_registry.get(op) is None)
    if result["unknown_ops"]:
        result["error"] = "ops not in core TensorFlow (TF-Serving would fail with 'Op type not registered'): " + ", ".join(result["unknown_ops"])
    else:
        with open(requests_path) as f:
            requests = json.load(f)
        result["signatures"], tf2_outputs = run_tf2(export_dir, requests)
        result["outputs"] = {"tf2": tf2_outputs, "session": run_session(export_dir, requests)}
    with open(result_path, "w") as f:
        json.dump(result, f)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
