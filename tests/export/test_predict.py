"""``tfmodels predict``: an export's serving signature on image folders, text lines and CSV rows."""

import io
import json
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits

import tfmodels
from pipelines.tabular import PIMA_FEATURES
from tfmodels import cli
from tfmodels.config import resolve
from tfmodels.recipes import diabetes_mlp


def _predict(argv, capsys):
    """``(exit code, JSON lines of stdout, stderr lines)`` of ``tfmodels predict ARGV``."""
    code = cli.main(["predict", *map(str, argv)])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err.splitlines()


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """Eight of scikit-learn's digits as PNG files written by Pillow, one in a subfolder, and a text file to ignore."""
    folder = tmp_path_factory.mktemp("digits")
    (folder / "more").mkdir()
    digits = load_digits()
    paths = []
    for i in range(8):
        path = folder / ("more" if i == 5 else "") / f"digit{i}_{digits.target[i]}.png"
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(path)
        paths.append(path)
    (folder / "notes.txt").write_text("not an image")
    return folder, sorted(paths)


def _served(export, signature, **inputs):
    outputs = tf.saved_model.load(str(export)).signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


def test_a_folder_of_pngs_gives_one_line_per_image_with_the_exports_answer(mnist_cnn_run, digit_folder, capsys):
    folder, paths = digit_folder
    code, lines, err = _predict([mnist_cnn_run.export_path.parent, folder, "--batch-size", "3"], capsys)
    assert code == 0 and err == ["tfmodels predict: 8 predicted, 0 skipped"]
    assert [line["input"] for line in lines] == [str(p) for p in paths]
    served = _served(mnist_cnn_run.export_path, "serving_default", image_bytes=[p.read_bytes() for p in paths])
    assert [line["class_name"] for line in lines] == [name.decode() for name in served["class_name"]]
    assert [line["class_id"] for line in lines] == served["class_id"].tolist()
    np.testing.assert_allclose([line["probabilities"] for line in lines], served["probabilities"], rtol=1e-5, atol=1e-6)


def test_a_corrupt_image_is_named_and_skipped_with_exit_code_one(mnist_cnn_run, digit_folder, tmp_path, capsys):
    _, paths = digit_folder
    broken = tmp_path / "broken.png"
    broken.write_bytes(paths[0].read_bytes()[:40])  # a PNG cut short
    inputs = [paths[0], broken, tmp_path / "missing.png", paths[1]]
    code, lines, err = _predict([mnist_cnn_run.run_dir, *inputs], capsys)  # a run folder: its export
    assert code == 1
    assert [line["input"] for line in lines] == [str(paths[0]), str(paths[1])]
    # A file that cannot be read is skipped first; the signature's refusal of the batch is then traced to its input.
    assert err[0] == f"tfmodels predict: skipped {tmp_path / 'missing.png'}: No such file or directory"
    assert err[1] == f"tfmodels predict: skipped {broken}: Invalid PNG. Failed to initialize decoder."  # the graph's DecodePng
    assert err[-1] == "tfmodels predict: 2 predicted, 2 skipped"
    served = _served(mnist_cnn_run.export_path, "serving_default", image_bytes=[paths[0].read_bytes(), paths[1].read_bytes()])
    assert [line["class_name"] for line in lines] == [name.decode() for name in served["class_name"]]


def test_usage_errors_are_one_line_with_exit_code_two(mnist_cnn_run, digit_folder, tmp_path, capsys):
    folder, _ = digit_folder
    code, _, err = _predict([mnist_cnn_run.export_path, folder, "--signature", "predict_pixels"], capsys)
    assert code == 2 and len(err) == 1
    assert "cannot read from files; use --signature with one of ['serving_default']" in err[0]
    unexported = tmp_path / "run"
    unexported.mkdir()
    shutil.copy(mnist_cnn_run.run_dir / "run.json", unexported)
    code, _, err = _predict([unexported, folder], capsys)
    assert code == 2 and err == [f"tfmodels predict: error: run {unexported} has no export yet: write one with `tfmodels export {unexported}`"]
    code, _, err = _predict([mnist_cnn_run.export_path, tmp_path / "run"], capsys)
    assert code == 2 and "no inputs found" in err[0]


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("birnn_tagger")
    return tfmodels.train("birnn_tagger", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def test_a_text_file_gives_one_line_per_text_line(tagger_run, tmp_path, capsys, monkeypatch):
    texts = ["The value of an object!", "", "self is returned"]
    path = tmp_path / "texts.txt"
    path.write_bytes("\n".join(texts[:2]).encode() + b"\n\xff\xfe broken\r\n" + texts[2].encode() + b"\r\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    code, lines, err = _predict([tagger_run.export_path, path, "-"], capsys)
    assert code == 1 and err[0].startswith(f"tfmodels predict: skipped {path}:3: not UTF-8 text")
    assert [line["input"] for line in lines] == [*texts, "from stdin"]
    # The tagger only inserts spaces between the normalised letters: lower-case a-z.
    assert [line["segmented"].replace(" ", "") for line in lines] == ["thevalueofanobject", "", "selfisreturned", "fromstdin"]
    served = _served(tagger_run.export_path, "serving_default", text=[*texts, "from stdin"])
    assert [line["segmented"] for line in lines] == [s.decode() for s in served["segmented"]]
    assert [line["num_letters"] for line in lines] == [18, 0, 14, 9]


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diabetes_mlp")
    return tfmodels.train("diabetes_mlp", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def test_csv_rows_of_a_tabular_export_are_read_by_column_name(diabetes_run, tmp_path, capsys):
    run = diabetes_run
    x = diabetes_mlp.load_table(resolve(diabetes_mlp.DiabetesMlpConfig, "tiny")).test.x[:4]
    header = ["label", *reversed(PIMA_FEATURES)]  # other columns, any order
    rows = [",".join(["?", *map(repr, row[::-1].tolist())]) for row in x]
    not_a_number, not_finite = (rows[0].replace(repr(float(x[0, 4])), value) for value in ("abc", "nan"))  # bmi
    bad = [not_a_number, not_finite, "?,1,2", rows[1] + ",3"]
    path = tmp_path / "patients.csv"
    path.write_text("\n".join([",".join(header), rows[0], bad[0], rows[1], bad[1], rows[2], bad[2], rows[3], bad[3]]) + "\n")
    code, lines, err = _predict([run.export_path, path], capsys)
    assert code == 1
    assert [line["input"] for line in lines] == [f"{path}:{n}" for n in (2, 4, 6, 8)]
    np.testing.assert_allclose([line["probability"] for line in lines], run.model.predict(x, verbose=0)[:, 0], rtol=1e-5)
    assert [line["label"] for line in lines] == [int(line["probability"] > 0.5) for line in lines]
    assert err[:3] == [
        f"tfmodels predict: skipped {path}:3: column 'bmi' (float32): could not convert string to float: 'abc'",
        f"tfmodels predict: skipped {path}:7: 3 fields, the header has 8",
        f"tfmodels predict: skipped {path}:9: 9 fields, the header has 8",
    ]
    assert err[3].startswith(f"tfmodels predict: skipped {path}:5: ") and "must be finite" in err[3]
    assert err[4] == "tfmodels predict: 4 predicted, 4 skipped"


def test_generation_takes_its_scalar_inputs_from_the_rest_example_and_score_is_a_flag(tmp_path_factory, tmp_path, capsys):
    root = tmp_path_factory.mktemp("rnn_lm")
    run = tfmodels.train("rnn_lm", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")
    capsys.readouterr()
    prompts = ["the value of", "a class"]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    code, lines, err = _predict([run.export_path, tmp_path / "prompts.txt"], capsys)
    assert code == 0 and [line["input"] for line in lines] == prompts
    # The export's REST example asks for 20 greedy tokens (temperature 0, seed 0).
    served = _served(run.export_path, "serving_default", prefix=prompts, temperature=0.0, num_tokens=20, seed=tf.constant(0, tf.int64))
    assert [len(line["continuation_ids"]) for line in lines] == [20, 20]
    assert [line["continuation"] for line in lines] == [c.decode() for c in served["continuation"]]
    code, lines, err = _predict([run.export_path, tmp_path / "prompts.txt", "--signature", "score"], capsys)
    served = _served(run.export_path, "score", text=prompts)
    assert code == 0 and [line["num_tokens"] for line in lines] == served["num_tokens"].tolist()
    np.testing.assert_allclose([line["perplexity"] for line in lines], served["perplexity"], rtol=1e-6)


def test_rows_of_numbers_feed_a_feature_vector_input(tmp_path, capsys, monkeypatch):
    root = tmp_path / "train"
    run = tfmodels.train("linear_regression", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")
    capsys.readouterr()  # training's own output
    (width,) = run.model.input_shape[1:]
    x = np.random.default_rng(0).normal(size=(3, width)).astype("float32")
    path = tmp_path / "features.csv"
    rows = [",".join(map(repr, row.tolist())) for row in x]
    path.write_text("\n".join([",".join(f"f{i}" for i in range(width)), rows[0], "1,2", rows[1], "a,b", rows[2]]) + "\n")
    monkeypatch.chdir(tmp_path)  # the run's recorded export is found from any working directory
    code, lines, err = _predict([run.run_dir, path], capsys)
    assert code == 1
    assert [line["input"] for line in lines] == [f"{path}:{n}" for n in (2, 4, 6)]
    served = _served(run.export_path, "serving_default", features=x)
    (name,) = served
    np.testing.assert_allclose([line[name] for line in lines], served[name], rtol=1e-6)
    assert err[:2] == [
        f"tfmodels predict: skipped {path}:3: 2 values, the model takes {width}",
        f"tfmodels predict: skipped {path}:5: not {width} numbers: could not convert string to float: 'a'",
    ]
