"""Runs that lose nothing: kill -9 anywhere, resume, and end with the uninterrupted run's artifacts."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfmodels
from tfmodels.config import ConfigError
from tfmodels.training.run_folder import STAGES, RunFolder

RUN = dict(name="mnist_cnn", preset="tiny", data="sklearn:digits", overrides={"epochs": 2})

# Each kill point is code run in a fresh process before the run starts; it SIGKILLs the process
# (no clean-up, like a pulled plug) at one moment of the run.
KILL_POINTS = {
    "mid-epoch": """
        class Kill(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 5:
                    kill()
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
        callbacks.append(Kill())
    """,
    "between-epochs": """
        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    kill()
        callbacks.append(Kill())
    """,
    # the last epoch's backup weights are half written (a file that cannot be read)
    "backup-weights-half-written": """
        def half_write(self, filepath, overwrite=True):
            if "epoch-2" in str(filepath):
                open(filepath, "wb").write(b"\\x89HDF\\r\\n")
                kill()
            original_save_weights(self, filepath, overwrite=overwrite)
        original_save_weights = keras.Model.save_weights
        keras.Model.save_weights = half_write
    """,
    # the last epoch's backup weights and random states are written, the epoch not yet committed
    "backup-before-commit": """
        from tfmodels.training import callbacks as trainer_callbacks
        def commit_or_kill(path, value):
            if path.name == "training_metadata.json" and value["epoch"] == 2:
                kill()
            write_json_atomically(path, value)
        write_json_atomically = trainer_callbacks.write_json_atomically
        trainer_callbacks.write_json_atomically = commit_or_kill
    """,
    # model.keras is written, the fit stage not yet recorded
    "end-of-fit": "kill_when_adding('train_seconds')",
    # the test metrics are computed, not yet recorded
    "evaluation": "kill_when_adding('test')",
    # the report is written (mnist_cnn's recipe has none to add), the stage not yet recorded
    "report": "kill_when_finishing('report')",
    # the SavedModel is in its temporary folder, not yet renamed into place
    "export-before-rename": "saved_model._write_warmup = lambda *a, **k: kill()",
    # the version is in place, the export stage not yet recorded
    "export-after-rename": "saved_model.write_models_config = lambda *a, **k: kill()",
}

KILLED_RUN = """
import os, signal, sys
import keras, tfmodels
from tfmodels.export import saved_model
from tfmodels.training.run_folder import RunFolder

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def kill_when_adding(key):
    add = RunFolder.add_metrics
    def add_then_maybe_kill(self, **entries):
        if key in entries:
            kill()
        return add(self, **entries)
    RunFolder.add_metrics = add_then_maybe_kill

def kill_when_finishing(stage):
    finish = RunFolder.finish
    def maybe_kill_then_finish(self, name):
        if name == stage:
            kill()
        return finish(self, name)
    RunFolder.finish = maybe_kill_then_finish

callbacks = []
{kill_point}
tfmodels.train("mnist_cnn", preset="tiny", data="sklearn:digits", overrides={{"epochs": 2}},
               runs_root=sys.argv[1], export_root=sys.argv[2], callbacks=callbacks)
"""


def _weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


def _history(run_dir):
    return (run_dir / "history.csv").read_text().splitlines()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    return tfmodels.train(**RUN, runs_root=root / "runs", export_root=root / "saved_models")


# The fast suite kills inside an epoch and at the end of fit; the other points (each write of the
# backup, the later stages, both sides of the export's rename) are slow, to keep `make test` inside
# its time budget.
SLOW_KILL_POINTS = ("between-epochs", "evaluation", "report", "export-after-rename", "export-before-rename",
                    "backup-weights-half-written", "backup-before-commit")


@pytest.mark.parametrize(
    "where", [pytest.param(where, marks=pytest.mark.slow) if where in SLOW_KILL_POINTS else where for where in KILL_POINTS]
)
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_runs_artifacts(where, uninterrupted, tmp_path):
    code = KILLED_RUN.format(kill_point=textwrap.dedent(KILL_POINTS[where]))
    killed = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "runs"), str(tmp_path / "saved_models")],
        capture_output=True, text=True, timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs" / "mnist_cnn").iterdir()
    assert RunFolder.open(run_dir).unfinished(), "the kill came before the run finished"

    resumed = tfmodels.train("mnist_cnn", resume=run_dir, export_root=tmp_path / "saved_models")

    assert RunFolder.open(run_dir).unfinished() == []
    for a, b in zip(_weights(run_dir), _weights(uninterrupted.run_dir)):
        np.testing.assert_array_equal(a, b)
    assert _history(run_dir) == _history(uninterrupted.run_dir)  # header + 2 epochs, none lost or doubled
    ours, theirs = resumed.metrics, uninterrupted.metrics
    assert ours["preset"] == "tiny" and ours["test"] == theirs["test"] and ours["validation"] == theirs["validation"]
    assert sorted(p.name for p in (tmp_path / "saved_models" / "mnist_cnn").iterdir()) == ["1"]  # one version, no temporary
    assert tfmodels.verify_export(resumed.export_path)["requests_replayed"] == 2


def test_resuming_a_finished_run_changes_nothing(uninterrupted, capsys):
    files = {p: p.stat().st_mtime_ns for p in uninterrupted.run_dir.rglob("*") if p.is_file()}
    versions = sorted(uninterrupted.export_path.parent.iterdir())
    result = tfmodels.train("mnist_cnn", resume=uninterrupted.run_dir, export_root=uninterrupted.export_path.parent.parent)
    assert "is finished" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in uninterrupted.run_dir.rglob("*") if p.is_file()} == files
    assert sorted(uninterrupted.export_path.parent.iterdir()) == versions
    assert result.metrics == uninterrupted.metrics and result.export_path == uninterrupted.export_path


def test_a_run_records_its_preset_and_every_stage(uninterrupted):
    run = RunFolder.open(uninterrupted.run_dir)
    assert (run.model, run.preset, run.unfinished()) == ("mnist_cnn", "tiny", [])
    assert tuple(run.record["finished"]) == STAGES
    assert "run_dir" not in json.loads((uninterrupted.run_dir / "config.json").read_text())


def test_a_mistyped_monitor_is_refused_before_any_training(tmp_path):
    with pytest.raises(ConfigError, match="monitor 'val_acuracy' is not a logged metric.*val_accuracy"):
        tfmodels.train(**{**RUN, "overrides": {"monitor": "val_acuracy"}}, runs_root=tmp_path, export_root=None)
    (run_dir,) = (tmp_path / "mnist_cnn").iterdir()
    assert not (run_dir / "history.csv").exists()


def test_resume_refuses_a_run_of_another_model(uninterrupted):
    with pytest.raises(ConfigError, match="is a run of 'mnist_cnn', not of 'lenet5'"):
        tfmodels.train("lenet5", resume=uninterrupted.run_dir)


def test_a_copied_run_folder_evaluates_and_exports_with_its_data_gone(uninterrupted, tmp_path, monkeypatch):
    """The copy reads its test split and assets from the folder: loading the data source would fail."""
    import shutil

    from pipelines import digits
    from tfmodels.training.trainer import evaluate_run

    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(uninterrupted.run_dir, copy)

    def gone(*args, **kwargs):
        raise AssertionError("the data source was read again")

    monkeypatch.setattr(digits, "load", gone)
    assert evaluate_run(copy)["test"] == uninterrupted.metrics["test"]
    exported = tfmodels.export(copy, tmp_path / "saved_models")
    assert tfmodels.verify_export(exported)["requests_replayed"] == 2
    original = json.loads((uninterrupted.export_path / "assets.extra" / "expected_outputs.json").read_text())
    assert json.loads((exported / "assets.extra" / "expected_outputs.json").read_text()) == original


@pytest.mark.parametrize("name, data", [("mnist_cnn", "sklearn:digits"), ("titanic_mlp", None), ("rnn_lm", None)])
def test_a_seed_sweep_is_scored_on_one_test_set(name, data):
    """``seed`` changes the training randomness only; ``data_seed`` alone decides the split."""
    import tensorflow as tf

    from tfmodels import registry
    from tfmodels.training.trainer import resolve_config

    recipe = registry.get(name)

    def test_split(**overrides):
        elements = recipe.datasets(resolve_config(name, "tiny", data, overrides=overrides)).test.as_numpy_iterator()
        return [tf.nest.flatten(element) for element in elements]

    def same(a, b):
        return len(a) == len(b) and all(np.array_equal(x, y) for ea, eb in zip(a, b) for x, y in zip(ea, eb))

    first = test_split(seed=1)
    assert same(first, test_split(seed=7))
    assert not same(first, test_split(seed=1, data_seed=7))


def test_resume_latest_picks_the_newest_run_of_the_model(uninterrupted, capsys):
    runs_root = uninterrupted.run_dir.parent.parent
    result = tfmodels.train("mnist_cnn", resume="latest", runs_root=runs_root, export_root=uninterrupted.export_path.parent.parent)
    assert result.run_dir == uninterrupted.run_dir and "is finished" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no run of 'lenet5'"):
        tfmodels.train("lenet5", resume="latest", runs_root=runs_root)
