"""diabetes_mlp: the notes' sigmoid MLP (notes-002 S11-S12) on MASS's Pima tables, and its export."""

import gzip

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.sources import DataSourceError
from pipelines.tabular import NOTES_DIABETES_FEATURES, PIMA_FEATURES
from tfmodels.config import resolve
from tfmodels.recipes import diabetes_mlp as recipe


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


@pytest.fixture
def notes_file(tmp_path):
    """40 rows in the notes' diabetes.csv.gz format: 8 features in [-1, 1], then a 0/1 label."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 8))
    y = (x[:, 1] > 0).astype(int)  # learnable: "glucose" decides
    path = tmp_path / "diabetes.csv.gz"
    lines = [",".join([*(f"{v:.6f}" for v in row), str(label)]) for row, label in zip(x, y)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def test_file_source_trains_an_eight_input_net_as_in_the_notes(notes_file, tmp_path):
    run = tfmodels.train("diabetes_mlp", preset="tiny", data=f"file:{notes_file}", runs_root=tmp_path, export_root=None)
    assert run.model.input_shape == (None, 8)
    assert run.model.count_params() == (8 * 6 + 6) + (6 * 4 + 4) + (4 * 1 + 1)  # 87, the notes' 8-6-4-1
    assert run.metrics["report"]["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    cfg = resolve(recipe.DiabetesMlpConfig, "tiny", {"data": f"file:{notes_file}"})
    endpoint = recipe.serving(cfg, run.model).endpoints["serving_default"]
    assert list(endpoint.inputs) == list(NOTES_DIABETES_FEATURES)  # insulin included
    served = endpoint.fn(**{name: tf.constant(v) for name, v in endpoint.example.items()})
    x = np.stack([endpoint.example[name] for name in NOTES_DIABETES_FEATURES], axis=1)
    np.testing.assert_allclose(served["probability"].numpy(), run.model.predict(x, verbose=0)[:, 0], rtol=1e-5)


def test_file_source_errors_are_data_source_errors(tmp_path):
    cfg = resolve(recipe.DiabetesMlpConfig, "tiny", {"data": f"file:{tmp_path / 'missing.csv.gz'}"})
    with pytest.raises(DataSourceError, match="missing.csv.gz' does not exist"):
        recipe.model(cfg)
