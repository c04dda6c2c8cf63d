import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import images
from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.export import VerificationError, export_model, verify_export
from tfmodels.export.saved_model import WARMUP_FILE


@pytest.fixture(scope="module")
def loaded(mnist_cnn_run):
    return tf.saved_model.load(str(mnist_cnn_run.export_path))


def _digits(n=5):
    from pipelines.digits import _sklearn_digits

    x, _ = _sklearn_digits()
    return x[:n]


def test_export_passes_stock_tensorflow_verification(mnist_cnn_run):
    report = verify_export(mnist_cnn_run.export_path)
    assert report["signatures"] == ["predict_pixels", "serving_default"]
    assert report["requests_replayed"] == 2 and report["core_ops"] > 10


def test_export_tree_is_ready_for_tf_serving(mnist_cnn_run):
    from tensorflow_serving.apis import prediction_log_pb2

    version = mnist_cnn_run.export_path
    assert version.name == "1" and version.parent.name == "mnist_cnn"
    config = (version.parent.parent / "models.config").read_text()
    assert 'name: "mnist_cnn"' in config and 'base_path: "/models/mnist_cnn"' in config
    records = list(tf.data.TFRecordDataset(str(version / "assets.extra" / WARMUP_FILE)).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == {"serving_default", "predict_pixels"}
    rest = json.loads((version / "assets.extra" / "rest_requests" / "serving_default.json").read_text())
    assert rest["signature_name"] == "serving_default"
    assert all("b64" in item for item in rest["inputs"]["image_bytes"])


def test_versions_only_increase_and_nothing_is_overwritten(mnist_cnn_run, tmp_path):
    recipe = registry.get("mnist_cnn")
    cfg = resolve(recipe.config, "tiny")
    first = export_model(recipe, cfg, mnist_cnn_run.model, tmp_path)
    stamp = (first / "saved_model.pb").stat().st_mtime_ns
    second = export_model(recipe, cfg, mnist_cnn_run.model, tmp_path)
    assert (first.name, second.name) == ("1", "2")
    assert (first / "saved_model.pb").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "mnist_cnn").iterdir()) == ["1", "2"]  # no temporary left


def test_serving_outputs_equal_model_predict(mnist_cnn_run, loaded):
    pixels = _digits()
    expected = tf.nn.softmax(mnist_cnn_run.model.predict(pixels, verbose=0)).numpy()
    from_pixels = loaded.signatures["predict_pixels"](pixels=tf.constant(pixels))
    np.testing.assert_allclose(from_pixels["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(from_pixels["class_id"].numpy(), expected.argmax(-1))
    png = tf.stack([images.encode_png(tf.round(p)) for p in pixels])
    from_bytes = loaded.signatures["serving_default"](image_bytes=png)
    rounded = tf.nn.softmax(mnist_cnn_run.model.predict(np.round(pixels), verbose=0)).numpy()
    np.testing.assert_allclose(from_bytes["probabilities"].numpy(), rounded, atol=1e-5)
    assert [s.decode() for s in from_bytes["class_name"].numpy()] == [str(i) for i in rounded.argmax(-1)]


def test_serving_accepts_colour_jpeg_of_any_size(loaded):
    rgb = tf.image.resize(tf.repeat(_digits(1)[0], 3, axis=-1), (56, 40))
    jpeg = tf.io.encode_jpeg(tf.cast(rgb, tf.uint8))
    out = loaded.signatures["serving_default"](image_bytes=tf.stack([jpeg]))
    assert out["probabilities"].shape == (1, 10)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        ("predict_pixels", {"pixels": tf.zeros([1, 28, 28, 1], tf.int32)}, "expected to be a float tensor but is a int32 tensor"),
        ("predict_pixels", {"pixels": tf.zeros([1, 32, 32, 1])}, r"shape|28, 28, 1"),
        ("serving_default", {"image_bytes": tf.constant([b"not an image"])}, "Unknown image file format"),
        ("serving_default", {"image_bytes": tf.constant([b""])}, "empty string"),
        ("serving_default", {"image_bytes": tf.constant([b"\x89PNG\r\n\x1a\n" + b"\0" * 40])}, "PNG|image"),
    ],
    ids=["wrong-dtype", "wrong-shape", "corrupt-bytes", "empty-string", "truncated-png"],
)
def test_bad_serving_inputs_give_clear_errors(loaded, signature, inputs, message):
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError), match=message):
        loaded.signatures[signature](**inputs)


CUSTOM_OP_EXPORT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    import tensorflow_text as text

    class Lower(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, s):
            return {"folded": text.case_fold_utf8(s)}

    module = Lower()
    tf.saved_model.save(module, sys.argv[1], signatures={"serving_default": module.serve})
    """
)


def test_an_export_with_a_tensorflow_text_op_fails_the_core_op_check(tmp_path):
    export_dir = tmp_path / "uses_tf_text" / "1"
    made = subprocess.run([sys.executable, "-c", CUSTOM_OP_EXPORT, str(export_dir)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    with pytest.raises(VerificationError, match="not in core TensorFlow.*CaseFoldUTF8"):
        verify_export(export_dir)


def test_verify_rejects_a_directory_without_a_saved_model(tmp_path):
    with pytest.raises(VerificationError, match="no saved_model.pb"):
        tfmodels.verify_export(tmp_path)


def test_verify_catches_outputs_that_differ_from_the_keras_model(mnist_cnn_run, tmp_path):
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(mnist_cnn_run.export_path, copy)
    expected_path = copy / "assets.extra" / "expected_outputs.json"
    expected = json.loads(expected_path.read_text())
    expected["predict_pixels"]["probabilities"]["values"][0][0] += 0.5
    expected_path.write_text(json.dumps(expected))
    with pytest.raises(VerificationError, match="predict_pixels/probabilities: differs from the Keras model"):
        verify_export(copy)
