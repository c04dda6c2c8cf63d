"""The console script: commands a user types, and the errors they see."""

import subprocess
import sys
from pathlib import Path

import pytest

from tfmodels import cli


def test_console_script_lists_models():
    out = subprocess.run([str(Path(sys.executable).with_name("tfmodels")), "list"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert any(line.startswith("mnist_cnn ") for line in out.stdout.splitlines())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "mnist_cnnn"], "unknown MODEL 'mnist_cnnn'. Did you mean: mnist_cnn"),
        (["train", "mnist_cnn", "--set", "epochz=2"], "unknown config key 'epochz'"),
        (["train", "mnist_cnn", "--set", "epochs=two"], "bad value for 'epochs'"),
        (["train", "mnist_cnn", "--set", "epochs"], "expected key=value"),
        (["train", "mnist_cnn", "--preset", "huge"], "unknown preset 'huge'"),
        (["train", "mnist_cnn", "--data", "tfds"], "unknown data source 'tfds'"),
        (["train", "mnist_cnn", "--strategy", "tpu"], "bad value for 'strategy'"),
        (["verify-export", "/nonexistent/model"], "holds no exported version"),
    ],
    ids=["unknown-model", "unknown-key", "bad-value", "no-equals", "bad-preset", "bad-data", "bad-strategy", "no-export"],
)
def test_user_errors_are_one_clear_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_list_markdown_reports_measured_results(mnist_cnn_run, capsys):
    import json
    import shutil

    runs = mnist_cnn_run.run_dir.parent.parent
    copy = runs / "mnist_cnn" / "99999999-default"
    shutil.copytree(mnist_cnn_run.run_dir, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["preset"] = "default"
    (copy / "metrics.json").write_text(json.dumps(metrics))
    assert cli.main(["list", "--markdown", "--runs-root", str(runs)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| `mnist_cnn`"))
    assert f"accuracy {metrics['test']['accuracy']:.4g}" in row


def test_verify_export_command_accepts_the_model_directory(mnist_cnn_run, capsys):
    assert cli.main(["verify-export", str(mnist_cnn_run.export_path.parent)]) == 0
    assert "all in core TensorFlow" in capsys.readouterr().out


def test_evaluate_and_export_commands_use_a_run_directory(mnist_cnn_run, tmp_path, capsys):
    assert cli.main(["evaluate", str(mnist_cnn_run.run_dir)]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "mnist_cnn" and report["data"] == "sklearn:digits"
    assert abs(report["test"]["accuracy"] - mnist_cnn_run.metrics["test"]["accuracy"]) < 1e-6
    assert cli.main(["export", str(mnist_cnn_run.run_dir), "--export-root", str(tmp_path)]) == 0
    assert cli.main(["verify-export", str(tmp_path / "mnist_cnn")]) == 0
