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
