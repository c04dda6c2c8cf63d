"""``mean_teacher`` through the trainer: the ramp-up in the run's history, export, and resume after a kill."""

import json
import math
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfmodels

RUN = textwrap.dedent(
    """
    import os, signal, sys
    import keras, tfmodels

    class KillAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            os.kill(os.getpid(), signal.SIGKILL)

    kill = sys.argv[3] == "kill"
    tfmodels.train(sys.argv[1], preset="tiny", runs_root=sys.argv[2], export_root=None,
                   callbacks=[KillAfterFirstEpoch()] if kill else [])
    """
)
RESUMED_RUN = "import sys, tfmodels; tfmodels.train(sys.argv[1], resume=sys.argv[2], export_root=None)"


def _python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # a tiny run, export and verification: about 40 s on 2 cores
def test_tiny_mean_teacher_ramps_up_the_consistency_weight_and_exports_the_teacher(tmp_path):
    result = tfmodels.train("mean_teacher", preset="tiny", runs_root=tmp_path / "runs", export_root=tmp_path / "saved_models")
    cfg = json.loads((result.run_dir / "config.json").read_text())
    # tiny: 20 labelled and 32 unlabelled digits, mu 2 -> max(16, 20) = 20 elements, 3 batches of 8
    steps = math.ceil(max(math.ceil(32 / cfg["mu"]), 20) / cfg["batch_size"])
    assert result.model.rampup_steps == cfg["rampup_epochs"] * steps == 3
    history = np.genfromtxt(result.run_dir / "history.csv", delimiter=",", names=True)
    w = [cfg["consistency_weight"] * math.exp(-5 * (1 - t / 3) ** 2) for t in range(3)]
    np.testing.assert_allclose(history["consistency_weight"], [np.mean(w), cfg["consistency_weight"]], rtol=1e-5)
    assert np.isfinite(history["val_student_accuracy"]).all()
    assert result.metrics["report"]["method"] == "mean_teacher"
    assert tfmodels.verify_export(result.export_path)["requests_replayed"] == 2


@pytest.mark.slow  # three tiny runs in subprocesses: about 2 minutes
@pytest.mark.parametrize("name", ["mean_teacher"])
def test_a_killed_run_resumes_to_the_uninterrupted_runs_student_and_teacher(name, tmp_path):
    killed = _python(RUN, name, tmp_path / "killed", "kill")
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = (tmp_path / "killed" / name).iterdir()
    resumed = _python(RESUMED_RUN, name, run_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming {name} from epoch 2" in resumed.stdout
    full = _python(RUN, name, tmp_path / "full", "full")
    assert full.returncode == 0, full.stderr[-2000:]
    (full_dir,) = (tmp_path / "full" / name).iterdir()
    ours, theirs = (keras.saving.load_model(d / "model.keras") for d in (run_dir, full_dir))
    for a, b in zip(ours.weights, theirs.weights, strict=True):  # student and teacher
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert (run_dir / "history.csv").read_text() == (full_dir / "history.csv").read_text()
