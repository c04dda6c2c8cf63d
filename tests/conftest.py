"""Shared test set-up: quiet TensorFlow, two logical CPU devices, one trained tiny export."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# MirroredStrategy tests need two devices: split the CPU before TensorFlow initialises it.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(scope="session")
def mnist_cnn_run(tmp_path_factory):
    """``mnist_cnn`` trained at the tiny preset on scikit-learn's digits, then exported."""
    import tfmodels

    root = tmp_path_factory.mktemp("mnist_cnn_run")
    return tfmodels.train(
        "mnist_cnn",
        preset="tiny",
        data="sklearn:digits",
        runs_root=root / "runs",
        export_root=root / "saved_models",
    )


@pytest.fixture
def export_copied_run(tmp_path):
    """``export_copied_run(result, *gone) -> export``: a finished run, copied and on its own.

    Copies ``result.run_dir``, renames the original folder and every path in ``gone`` (data
    sources) out of the way, exports and verifies the copy and evaluates it, then puts them back.
    Asserts that the copy evaluates exactly as the run did and that its export holds the same
    examples and evaluation-path answers as the run's own export.
    """
    import shutil

    import tfmodels
    from tfmodels.training.trainer import evaluate_run

    def export(result, *gone):
        copied = shutil.copytree(result.run_dir, tmp_path / "copied_run")
        originals = (result.run_dir, *gone)
        hidden = [path.rename(path.with_name(path.name + ".hidden")) for path in originals]
        try:
            exported = tfmodels.export(copied, tmp_path / "saved_models")
            tfmodels.verify_export(exported)
            evaluated = evaluate_run(copied)
        finally:
            for path, original in zip(hidden, originals):
                path.rename(original)
        assert evaluated["test"] == result.metrics["test"]
        for name in ("expected_outputs.json", *(f"rest_requests/{p.name}" for p in (exported / "assets.extra" / "rest_requests").iterdir())):
            assert (exported / "assets.extra" / name).read_text() == (result.export_path / "assets.extra" / name).read_text(), name
        return exported

    return export


@pytest.fixture(scope="session")
def assert_same_answers():
    """``assert_same_answers(export_a, export_b, signature, **inputs)``: identical outputs of both SavedModels."""
    import numpy as np

    def check(export_a, export_b, signature, **inputs):
        ours, theirs = (tf.saved_model.load(str(path)).signatures[signature](**inputs) for path in (export_a, export_b))
        assert set(ours) == set(theirs)
        for key in ours:
            np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy(), err_msg=f"{signature}/{key}")

    return check
