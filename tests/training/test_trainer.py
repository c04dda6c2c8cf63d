import json
import math
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfmodels
from tfmodels.config import ConfigError
from tfmodels.training.fit import TrainingDivergedError
from tfmodels.training.trainer import resolve_config


def test_run_directory_holds_everything(mnist_cnn_run):
    run = mnist_cnn_run.run_dir
    for name in ("config.json", "history.csv", "best.weights.h5", "model.keras", "curves.png", "metrics.json"):
        assert (run / name).is_file(), name
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


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import keras, tfmodels

    class KillAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, like a pulled plug

    tfmodels.train("mnist_cnn", preset="tiny", data="sklearn:digits", overrides={"epochs": 4},
                   runs_root=sys.argv[1], export_root=None, callbacks=[KillAfterSecondEpoch()])
    """
)
RESUMED_RUN = "import sys, tfmodels; tfmodels.train('mnist_cnn', resume=sys.argv[1], export_root=None)"
FULL_RUN = (
    "import sys, tfmodels; tfmodels.train('mnist_cnn', preset='tiny', data='sklearn:digits', "
    "overrides={'epochs': 4}, runs_root=sys.argv[1], export_root=None)"
)


def _python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300)


def _weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


def test_killed_run_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    killed = _python(KILLED_RUN, tmp_path / "killed")
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = (tmp_path / "killed" / "mnist_cnn").iterdir()
    assert json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert not (run_dir / "model.keras").exists()

    resumed = _python(RESUMED_RUN, run_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming mnist_cnn from epoch 3 of 4" in resumed.stdout
    full = _python(FULL_RUN, tmp_path / "full")
    assert full.returncode == 0, full.stderr[-2000:]
    (full_dir,) = (tmp_path / "full" / "mnist_cnn").iterdir()

    for a, b in zip(_weights(run_dir), _weights(full_dir)):
        np.testing.assert_array_equal(a, b)
    resumed_history = (run_dir / "history.csv").read_text().splitlines()
    assert len(resumed_history) == 5  # header + 4 epochs, none lost or doubled
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == json.loads(
        (full_dir / "metrics.json").read_text()
    )["test"]


def test_mixed_precision_and_xla_are_config_switches(tmp_path):
    result = tfmodels.train(
        "mnist_cnn", preset="tiny", data="sklearn:digits",
        overrides={"mixed_precision": True, "jit_compile": True, "deterministic": False},
        runs_root=tmp_path, export_root=tmp_path / "saved_models",
    )
    assert result.model.jit_compile  # Keras silently drops XLA while op determinism is on
    assert result.model.get_layer("conv1").dtype_policy.name == "mixed_float16"
    assert result.metrics["test"]["accuracy"] > 0.3
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for later builds
    assert tfmodels.verify_export(result.export_path)["requests_replayed"] == 2


def test_xla_with_op_determinism_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="jit_compile=true needs deterministic=false"):
        resolve_config("mnist_cnn", "tiny", overrides={"jit_compile": True})


@pytest.mark.parametrize("name", ["titanic_mlp", "logistic_regression"])
def test_mirrored_strategy_with_batches_that_do_not_split_evenly(name, tmp_path):
    # titanic: 921 training rows in batches of 2 x 32; logistic regression: 3 rows, full batch.
    result = tfmodels.train(name, preset="tiny", strategy="mirrored", runs_root=tmp_path, export_root=None)
    assert result.metrics["replicas"] == 2 and result.metrics["global_batch"] % 2 == 0
    assert math.isfinite(result.metrics["test"]["loss"])
