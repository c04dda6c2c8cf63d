import json
import math
import keras
import numpy as np
import pytest

import tfmodels
from tfmodels.config import ConfigError
from tfmodels.training.fit import TrainingDivergedError
from tfmodels.training.trainer import resolve_config


def test_run_directory_holds_everything(mnist_cnn_run):
    run = mnist_cnn_run.run_dir
    for name in ("run.json", "config.json", "history.csv", "best.weights.h5", "model.keras", "curves.png", "metrics.json"):
        assert (run / name).is_file(), name
    assert (run / "assets" / "test_split").is_dir(), "the test split is saved with the run"
    assert any((run / "logs").rglob("*tfevents*")), "TensorBoard events"
    assert not (run / "backup").exists(), "BackupAndRestore state is removed after a finished run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["parameters"] == 8_490 and metrics["epochs"] == 1
    assert 0.1 < metrics["test"]["accuracy"] <= 1.0  # above the 10-class chance level
    assert json.loads((run / "config.json").read_text())["data"] == "sklearn:digits"


def test_saved_keras_model_reloads_with_identical_predictions(mnist_cnn_run):
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    reloaded = keras.saving.load_model(mnist_cnn_run.run_dir / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), mnist_cnn_run.model.predict(x, verbose=0), atol=1e-6)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result = tfmodels.train(
        "mnist_cnn", preset="tiny", data="sklearn:digits", strategy="mirrored",
        runs_root=tmp_path, export_root=None,
    )
    assert result.metrics["replicas"] == 2
    assert result.metrics["global_batch"] == 2 * 64  # global batch = per-replica batch x replicas
    assert result.metrics["test"]["accuracy"] > 0.3


def test_nan_loss_stops_training_with_advice(tmp_path):
    with pytest.raises(TrainingDivergedError, match="non-finite.*learning_rate.*clip_global_norm"):
        tfmodels.train(
            "mnist_cnn", preset="tiny", data="sklearn:digits",
            overrides={"optimizer": "sgd", "learning_rate": 1e30}, runs_root=tmp_path, export_root=None,
        )


def test_learning_rate_schedule_is_logged_per_epoch(tmp_path):
    result = tfmodels.train(
        "mnist_cnn", preset="tiny", data="sklearn:digits",
        overrides={"epochs": 3, "lr_schedule": "step", "lr_step_epochs": 2, "lr_gamma": 0.5, "learning_rate": 0.01},
        runs_root=tmp_path, export_root=None,
    )
    rows = (result.run_dir / "history.csv").read_text().splitlines()
    column = rows[0].split(",").index("learning_rate")
    logged = [float(r.split(",")[column]) for r in rows[1:]]
    np.testing.assert_allclose(logged, [0.01, 0.01, 0.005], rtol=1e-6)


def test_mixed_precision_and_xla_are_config_switches(tmp_path):
    result = tfmodels.train(
        "mnist_cnn", preset="tiny", data="sklearn:digits",
        overrides={"mixed_precision": "float16", "jit_compile": True, "deterministic": False},
        runs_root=tmp_path, export_root=tmp_path / "saved_models",
    )
    assert result.model.jit_compile  # Keras silently drops XLA while op determinism is on
    assert result.model.get_layer("conv1").dtype_policy.name == "mixed_float16"
    assert result.metrics["test"]["accuracy"] > 0.3
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for later builds
    report = tfmodels.verify_export(result.export_path)
    assert report["requests_replayed"] == 2
    # checked at float16's tolerance, not float32's (AMX / AVX512-FP16 kernels round differently)
    assert report["compute_dtype"] == "float16" and report["tolerance"]["atol"] == 8 * 2.0**-10


def test_xla_with_op_determinism_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="jit_compile=true needs deterministic=false"):
        resolve_config("mnist_cnn", "tiny", overrides={"jit_compile": True})


@pytest.mark.parametrize("name", [pytest.param("titanic_mlp", marks=pytest.mark.slow), "logistic_regression"])  # titanic: slow
def test_mirrored_strategy_with_batches_that_do_not_split_evenly(name, tmp_path):
    # titanic: 921 training rows in batches of 2 x 32; logistic regression: 3 rows, full batch.
    result = tfmodels.train(name, preset="tiny", strategy="mirrored", runs_root=tmp_path, export_root=None)
    assert result.metrics["replicas"] == 2 and result.metrics["global_batch"] % 2 == 0
    assert math.isfinite(result.metrics["test"]["loss"])
