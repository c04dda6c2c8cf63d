import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import images
from tfmodels.export import VerificationError, verify_export
from tfmodels.export.saved_model import WARMUP_FILE
from tfmodels.export.verify import TOLERANCES


@pytest.fixture(scope="module")
def loaded(mnist_cnn_run):
    return tf.saved_model.load(str(mnist_cnn_run.export_path))


def _digits(n=5):
    from pipelines.digits import _sklearn_digits

    x, _ = _sklearn_digits()
    return x[:n]


def test_export_passes_stock_tensorflow_verification_with_both_loaders(mnist_cnn_run):
    report = verify_export(mnist_cnn_run.export_path)
    assert report["signatures"] == ["predict_pixels", "serving_default"]
    assert report["requests_replayed"] == 2 and report["core_ops"] > 10
    assert report["loaders"] == ["session", "tf2"]  # TF-Serving's TF1 Session path and the TF2 loader
    assert report["compute_dtype"] == "float32" and report["tolerance"] == {"atol": 1e-4, "rtol": 1e-4}


def test_expected_answers_come_from_the_test_split_through_the_evaluation_path(mnist_cnn_run):
    """The recorded answers are the model's on the run's saved test images, not the serving code's."""
    from tfmodels.training.run_assets import saved_test_split

    recorded = json.loads((mnist_cnn_run.export_path / "assets.extra" / "expected_outputs.json").read_text())
    test_pixels = next(iter(saved_test_split(mnist_cnn_run.run_dir).map(lambda x, y: x).batch(4))).numpy()
    logits = mnist_cnn_run.model.predict(np.round(test_pixels), verbose=0)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = np.asarray(recorded["signatures"]["serving_default"]["probabilities"]["values"])
    np.testing.assert_allclose(got, probabilities, atol=1e-5)
    assert recorded["signatures"]["predict_pixels"]["class_id"]["values"] == probabilities.argmax(-1).tolist()


def test_tolerances_follow_the_compute_dtype():
    # Half precision is checked at about eight units in the last place of its significand.
    assert TOLERANCES["float32"] == (1e-4, 1e-4)
    assert TOLERANCES["float16"][0] == pytest.approx(8 * np.finfo(np.float16).eps)
    assert TOLERANCES["bfloat16"][0] == pytest.approx(8 * float(tf.bfloat16.as_numpy_dtype(2.0**-7)))


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
    first = tfmodels.export(mnist_cnn_run.run_dir, tmp_path)
    stamp = (first / "saved_model.pb").stat().st_mtime_ns
    second = tfmodels.export(mnist_cnn_run.run_dir, tmp_path)
    assert (first.name, second.name) == ("1", "2")
    assert (first / "saved_model.pb").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "mnist_cnn").iterdir()) == ["1", "2"]  # no temporary left
    assert json.loads((second / "assets.extra" / "run.json").read_text())["run_dir"] == str(mnist_cnn_run.run_dir)


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


def test_verify_catches_outputs_that_differ_from_the_evaluation_path(mnist_cnn_run, tmp_path):
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(mnist_cnn_run.export_path, copy)
    expected_path = copy / "assets.extra" / "expected_outputs.json"
    expected = json.loads(expected_path.read_text())
    expected["signatures"]["predict_pixels"]["probabilities"]["values"][0][0] += 0.5
    expected_path.write_text(json.dumps(expected))
    with pytest.raises(VerificationError, match="tf2 predict_pixels/probabilities: differs from the evaluation path") as err:
        verify_export(copy)
    assert "session predict_pixels/probabilities" in str(err.value)  # both loaders compared


def test_a_half_precision_export_is_checked_at_its_tolerance(mnist_cnn_run, tmp_path):
    """A difference of 2e-4 fails a float32 export but is within a float16 model's rounding."""
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(mnist_cnn_run.export_path, copy)
    expected_path = copy / "assets.extra" / "expected_outputs.json"
    expected = json.loads(expected_path.read_text())
    probabilities = expected["signatures"]["predict_pixels"]["probabilities"]["values"]
    probabilities[0] = [p + 2e-4 for p in probabilities[0]]
    expected_path.write_text(json.dumps(expected))
    with pytest.raises(VerificationError, match="atol 0.0001"):
        verify_export(copy)
    expected["compute_dtype"] = "float16"
    expected_path.write_text(json.dumps(expected))
    assert verify_export(copy)["tolerance"]["atol"] == pytest.approx(8 * 2.0**-10)
