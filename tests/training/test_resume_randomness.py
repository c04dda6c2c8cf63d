"""A killed run with random training transforms resumes to the uninterrupted run, bit for bit.

Image augmentation (the notes' S24 policy, MixUp, CutMix) and BERT's re-masking draw from
stateless per-op streams of (seed, batch) (:mod:`pipelines.random_streams`), so a resumed run
draws exactly what the uninterrupted run did; dropout states come back through the checkpoint.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfmodels  # noqa: F401  registers the custom classes model.keras refers to

RUN = textwrap.dedent(
    """
    import json, os, signal, sys
    import keras, tfmodels

    name, runs_root, kwargs, kill = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] == "kill"

    class KillAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, like a pulled plug

    tfmodels.train(name, preset="tiny", runs_root=runs_root, export_root=None,
                   callbacks=[KillAfterFirstEpoch()] if kill else [], **kwargs)
    """
)
RESUMED_RUN = "import sys, tfmodels; tfmodels.train(sys.argv[1], resume=sys.argv[2], export_root=None)"


def _python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600)


def _weights(run_dir):
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


@pytest.mark.slow  # three runs in subprocesses: about 2-3 minutes each case on 2 cores
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("resnet18", {"data": "sklearn:digits", "overrides": {"epochs": 3, "augment": "notes", "mixup": 0.2, "cutmix": 1.0}}),
        ("bert_mlm", {"overrides": {"epochs": 2}}),
    ],
)
def test_killed_run_with_random_transforms_resumes_to_the_uninterrupted_run(name, kwargs, tmp_path):
    epochs = kwargs["overrides"]["epochs"]
    killed = _python(RUN, name, tmp_path / "killed", json.dumps(kwargs), "kill")
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = (tmp_path / "killed" / name).iterdir()
    assert json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert not (run_dir / "model.keras").exists()

    resumed = _python(RESUMED_RUN, name, run_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming {name} from epoch 2 of {epochs}" in resumed.stdout
    full = _python(RUN, name, tmp_path / "full", json.dumps(kwargs), "full")
    assert full.returncode == 0, full.stderr[-2000:]
    (full_dir,) = (tmp_path / "full" / name).iterdir()

    for a, b in zip(_weights(run_dir), _weights(full_dir), strict=True):
        np.testing.assert_array_equal(a, b)
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + epochs  # header + one row per epoch, none lost or doubled
    assert history == (full_dir / "history.csv").read_text().splitlines()
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == json.loads(
        (full_dir / "metrics.json").read_text()
    )["test"]
