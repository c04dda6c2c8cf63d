"""diabetes_mlp: the notes' sigmoid MLP (notes-002 S11-S12) on MASS's Pima tables, and its export."""

import gzip
import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.sources import DataSourceError
from pipelines.tabular import NOTES_DIABETES_FEATURES, PIMA_FEATURES
from tfmodels.config import resolve
from tfmodels.recipes import diabetes_mlp as recipe
from tfmodels.training.run_assets import saved_test_split
from tfmodels.training.run_folder import RunFolder
from tfmodels.training.trainer import evaluate_run, run_config


@pytest.fixture(scope="module")
def table():
    """The Pima tables split as the tiny run splits them."""
    return recipe.load_table(resolve(recipe.DiabetesMlpConfig, "tiny"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny preset, trained and exported once for this module."""
    root = tmp_path_factory.mktemp("diabetes_mlp")
    return tfmodels.train("diabetes_mlp", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def test_builds_from_config_with_closed_form_parameter_count():
    model = recipe.model(resolve(recipe.DiabetesMlpConfig, "tiny"))
    assert model.count_params() == (7 * 6 + 6) + (6 * 4 + 4) + (4 * 1 + 1)  # 81; the min-max scaling is constant
    assert [layer.activation.__name__ for layer in model.layers if isinstance(layer, keras.layers.Dense)] == ["sigmoid"] * 3
    p = model(np.zeros((5, len(PIMA_FEATURES)), np.float32)).numpy()
    assert p.shape == (5, 1) and np.all((p > 0) & (p < 1))


def test_paper_preset_is_the_notes_full_batch_sgd():
    cfg = resolve(recipe.DiabetesMlpConfig, "paper")
    assert (cfg.optimizer, cfg.learning_rate, cfg.batch_size, cfg.epochs) == ("sgd", 0.1, 0, 100)


def test_features_are_min_max_scaled_to_minus_one_one_on_the_training_split(run, table):
    scaled = run.model.get_layer("normalize")(table.train.x).numpy()
    np.testing.assert_allclose(scaled.min(axis=0), -1, atol=1e-5)
    np.testing.assert_allclose(scaled.max(axis=0), 1, atol=1e-5)


def test_tiny_run_loss_falls_and_report_has_the_majority_baseline(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = run.metrics["report"]
    assert report["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    assert report["majority_class"] == 0 and report["majority_accuracy"] == pytest.approx(223 / 332)


def test_keras_round_trip_gives_identical_predictions(run, table, tmp_path):
    run.model.save(tmp_path / "diabetes_mlp.keras")
    loaded = keras.saving.load_model(tmp_path / "diabetes_mlp.keras")
    np.testing.assert_array_equal(loaded.predict(table.test.x, verbose=0), run.model.predict(table.test.x, verbose=0))


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]


def test_serving_takes_named_raw_features_and_equals_predict(run, table):
    x = table.test.x[:50]
    serve = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    served = serve(**{name: tf.constant(x[:, i]) for i, name in enumerate(PIMA_FEATURES)})
    probability = served["probability"].numpy()
    np.testing.assert_allclose(probability, run.model.predict(x, verbose=0)[:, 0], rtol=1e-5)
    np.testing.assert_array_equal(served["label"].numpy(), (probability > 0.5).astype(np.int32))
    bad = {name: tf.constant(x[:1, i]) for i, name in enumerate(PIMA_FEATURES)} | {"glu": tf.constant([np.nan], tf.float32)}
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        serve(**bad)


@pytest.fixture(scope="module")
def notes_file(tmp_path_factory):
    """40 rows in the notes' diabetes.csv.gz format: 8 features in [-1, 1], then a 0/1 label."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 8))
    y = (x[:, 1] > 0).astype(int)  # learnable: "glucose" decides
    path = tmp_path_factory.mktemp("notes_file") / "diabetes.csv.gz"
    lines = [",".join([*(f"{v:.6f}" for v in row), str(label)]) for row, label in zip(x, y)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture(scope="module")
def file_run(notes_file, tmp_path_factory):
    """The tiny preset on ``notes_file``, trained and exported once for this module."""
    root = tmp_path_factory.mktemp("diabetes_mlp_file")
    return tfmodels.train(
        "diabetes_mlp", preset="tiny", data=f"file:{notes_file}", runs_root=root / "runs", export_root=root / "saved_models"
    )


def test_file_source_trains_an_eight_input_net_as_in_the_notes(file_run):
    run = file_run
    assert run.model.input_shape == (None, 8)
    assert run.model.count_params() == (8 * 6 + 6) + (6 * 4 + 4) + (4 * 1 + 1)  # 87, the notes' 8-6-4-1
    assert run.metrics["report"]["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    cfg = run_config(RunFolder.open(run.run_dir))
    endpoint = recipe.serving(cfg, run.model).endpoints["serving_default"]
    assert list(endpoint.inputs) == list(NOTES_DIABETES_FEATURES)  # insulin included
    request = recipe.serving_examples(cfg, run.model, saved_test_split(run.run_dir))["serving_default"].request
    served = endpoint.fn(**{name: tf.constant(v) for name, v in request.items()})
    x = np.stack([request[name] for name in NOTES_DIABETES_FEATURES], axis=1)
    np.testing.assert_allclose(served["probability"].numpy(), run.model.predict(x, verbose=0)[:, 0], rtol=1e-5)


def test_the_features_asset_holds_the_inputs_and_the_scaling_inside_the_model(run):
    saved = json.loads((run.run_dir / "assets" / "features.json").read_text())
    assert saved["names"] == list(PIMA_FEATURES) and saved["label"] == "1 = diabetic (type Yes)"
    normalize = run.model.get_layer("normalize")
    np.testing.assert_array_equal(np.float32(saved["scale"]), np.float32(normalize.scale))
    np.testing.assert_array_equal(np.float32(saved["offset"]), np.float32(normalize.offset))


def served(export_path, request: dict) -> dict[str, np.ndarray]:
    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in serve(**{k: tf.constant(v, tf.float32) for k, v in request.items()}).items()}


@pytest.mark.parametrize("source", ["file", "embedded"])
def test_a_copied_run_exports_and_evaluates_alike_with_its_data_gone(source, request, notes_file, monkeypatch, tmp_path):
    """The copy reads its features, its test split and its model from the run folder alone.

    ``file``: the training file is deleted. ``embedded``: loading the table raises.
    """
    run = request.getfixturevalue("file_run" if source == "file" else "run")
    copy = tmp_path / "copied_run"
    shutil.copytree(run.run_dir, copy)
    if source == "file":
        notes_file.unlink()
    else:
        monkeypatch.setattr(recipe, "load_table", lambda cfg: pytest.fail("the copied run re-read its data"))

    exported = tfmodels.export(copy, tmp_path / "saved_models")
    assert tfmodels.verify_export(exported)["signatures"] == ["serving_default"]
    for name in ("rest_requests/serving_default.json", "expected_outputs.json"):
        assert (exported / "assets.extra" / name).read_text() == (run.export_path / "assets.extra" / name).read_text()
    body = json.loads((run.export_path / "assets.extra" / "rest_requests" / "serving_default.json").read_text())
    original, again = served(run.export_path, body["inputs"]), served(exported, body["inputs"])
    assert sorted(again) == ["label", "probability"]
    for name in original:
        np.testing.assert_array_equal(again[name], original[name])
    assert evaluate_run(copy)["test"] == pytest.approx(run.metrics["test"], rel=1e-6)


def test_file_source_errors_are_data_source_errors(tmp_path):
    cfg = resolve(recipe.DiabetesMlpConfig, "tiny", {"data": f"file:{tmp_path / 'missing.csv.gz'}"})
    with pytest.raises(DataSourceError, match="missing.csv.gz' does not exist"):
        recipe.model(cfg)
