"""STRATEGY=multi_worker: two worker processes on 127.0.0.1, as a cluster would run them.

The cluster's answer is checked against one process with MirroredStrategy over this process's
two logical CPU devices (tests/conftest.py): the same global batches, so the same final weights.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import tfmodels

TRAIN = ["mnist_cnn", "--preset", "tiny", "--data", "sklearn:digits", "--set", "epochs=3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_workers(cwd: Path, args: list[str], scratch: Path) -> list[subprocess.Popen]:
    """Two workers of one cluster, each a `tfmodels train` process with its own TF_CONFIG."""
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    workers = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "TMPDIR": str(scratch),  # where a non-chief worker keeps its scratch run folder
        }
        log = (cwd / f"worker{index}.log").open("a")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "tfmodels.cli", "train", *args, "--strategy", "multi_worker"]
            if "--resume" not in args else [sys.executable, "-m", "tfmodels.cli", "train", *args],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
        ))
    return workers


def _wait(workers: list[subprocess.Popen], cwd: Path, timeout: float = 240) -> None:
    for index, worker in enumerate(workers):
        code = worker.wait(timeout=timeout)
        assert code == 0, f"worker {index} exited with {code}:\n{(cwd / f'worker{index}.log').read_text()[-3000:]}"


def _weights(run_dir: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run_dir / "model.keras").get_weights()


@pytest.fixture(scope="module")
def mirrored_weights(tmp_path_factory):
    result = tfmodels.train(
        "mnist_cnn", preset="tiny", data="sklearn:digits", strategy="mirrored", overrides={"epochs": 3},
        runs_root=tmp_path_factory.mktemp("mirrored"), export_root=None,
    )
    assert result.metrics["replicas"] == 2
    return _weights(result.run_dir)


def _assert_one_run_one_export(cwd: Path, scratch: Path) -> Path:
    runs = list((cwd / "runs" / "mnist_cnn").iterdir())
    assert len(runs) == 1, f"one run folder, written by the chief alone: {runs}"
    versions = [p for p in (cwd / "saved_models" / "mnist_cnn").iterdir() if p.is_dir()]
    assert [p.name for p in versions] == ["1"], "one export"
    assert list(scratch.glob("tfmodels-*")) == [], "no worker scratch folder is left behind"
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["global_batch"] == 128 and metrics["epochs"] == 3
    assert "non-chief" not in (cwd / "worker0.log").read_text()
    assert "the chief writes the run folder" in (cwd / "worker1.log").read_text()
    return runs[0]


def test_two_workers_write_one_run_with_the_weights_of_mirrored_training(tmp_path, mirrored_weights):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _wait(_start_workers(tmp_path, TRAIN, scratch), tmp_path)
    run = _assert_one_run_one_export(tmp_path, scratch)
    for ours, reference in zip(_weights(run), mirrored_weights):
        np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.slow  # a cluster started twice; the fast suite keeps the one-run two-worker test
def test_killed_cluster_resumes_with_resume_latest(tmp_path, mirrored_weights):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    workers = _start_workers(tmp_path, TRAIN, scratch)
    history = tmp_path / "runs" / "mnist_cnn"
    deadline = time.time() + 180
    # Kill as soon as the chief has recorded its first epoch: mid-way through the second.
    while not any(len(p.read_text().splitlines()) >= 2 for p in history.glob("*/history.csv")):
        assert time.time() < deadline and all(w.poll() is None for w in workers), "workers ended before epoch 1"
        time.sleep(0.05)
    for worker in reversed(workers):  # a worker dies; the cluster manager then restarts all of them
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    _wait(_start_workers(tmp_path, ["mnist_cnn", "--resume", "latest"], scratch), tmp_path)
    run = _assert_one_run_one_export(tmp_path, scratch)
    assert "Resuming mnist_cnn" in (tmp_path / "worker0.log").read_text()
    for ours, reference in zip(_weights(run), mirrored_weights):
        np.testing.assert_allclose(ours, reference, atol=1e-5)
