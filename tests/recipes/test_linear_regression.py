"""linear_regression: the notes' worked numbers (notes-002 S1, S3, S4; notes-001 §29-30) and the export."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import tabular
from tfmodels.config import resolve
from tfmodels.models.linear import normal_equation
from tfmodels.recipes import linear_regression as recipe
from tfmodels.training.run_assets import saved_test_split
from tfmodels.training.run_folder import RunFolder
from tfmodels.training.trainer import run_config

# The notes' model ŷ = x·w (no bias) from a constant start, plain SGD, examples in the notes' order.
NOTES_LINE = {
    "data": "notes", "use_bias": False, "initializer": "constant", "initial_weight": 1.0,
    "optimizer": "sgd", "learning_rate": 0.01, "repeats_per_epoch": 1, "shuffle": False,
}


@pytest.fixture(scope="module")
def table():
    """The diabetes table split as the tiny run splits it."""
    return recipe.load_table(resolve(recipe.LinearRegressionConfig, "tiny"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny preset on the diabetes table, trained and exported once for this module."""
    root = tmp_path_factory.mktemp("linear_regression")
    return tfmodels.train("linear_regression", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def weights_after_each_epoch(tmp_path, **overrides) -> tuple[list[np.ndarray], dict]:
    """Trains the notes' set-up plus ``overrides`` through the shared trainer (no export); records w per epoch."""
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(recipe.fitted_parameters(record.model)[0].copy())
    )
    result = tfmodels.train(
        "linear_regression", preset="tiny", overrides={"verbose": 0, **NOTES_LINE, **overrides},
        runs_root=tmp_path, export_root=None, callbacks=[record],
    )
    return seen, result.metrics


@pytest.mark.parametrize(
    "data, use_bias, parameters",
    [("embedded", True, 11), ("notes", False, 1), ("notes-normal-equation", False, 2)],
)
def test_builds_from_config_with_closed_form_parameter_count(data, use_bias, parameters):
    cfg = resolve(recipe.LinearRegressionConfig, "tiny", {"data": data, "use_bias": use_bias})
    model = recipe.model(cfg)
    assert model.count_params() == parameters  # F weights (+1 bias); the standardisation is constant
    features = recipe.load_table(cfg).num_features
    assert model(np.zeros((5, features), np.float32)).shape == (5, 1)


def test_mse_grid_search_of_the_notes():  # notes-002 S1
    cfg = resolve(recipe.LinearRegressionConfig, "tiny", NOTES_LINE)
    model, loss = recipe.model(cfg), recipe.compile_args(cfg)["loss"]
    table = tabular.notes_line()
    grid = np.round(np.arange(0.0, 4.1, 0.1), 1)
    curve = []
    for w in grid:
        model.get_layer("linear").get_layer("dense").kernel.assign([[w]])
        curve.append(float(loss(table.train.y, model(table.train.x))))
    assert curve[0] == pytest.approx(18.6667, abs=1e-4) and curve[1] == pytest.approx(16.8467, abs=1e-4)
    assert grid[np.argmin(curve)] == 2.0 and min(curve) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(curve, 2) > 0)  # a convex parabola


def test_full_batch_gradient_descent_matches_the_notes(tmp_path):  # notes-002 S3
    seen, metrics = weights_after_each_epoch(tmp_path, batch_size=0, epochs=3)
    np.testing.assert_allclose(np.concatenate(seen), [1.093333, 1.177956, 1.254680], atol=2e-6)
    assert metrics["test"]["mse"] < 4.6667  # the loss at w = 1 fell


def test_sgd_one_example_at_a_time_matches_the_notes(tmp_path):  # notes-002 S4
    seen, _ = weights_after_each_epoch(tmp_path, batch_size=1, epochs=2)
    np.testing.assert_allclose(np.concatenate(seen), [1.260688, 1.453418], atol=2e-6)


def test_vectorised_gradient_descent_on_half_mse_matches_the_notes(tmp_path):  # notes-001 §30
    seen, metrics = weights_after_each_epoch(
        tmp_path, data="notes-normal-equation", initial_weight=0.0, loss="half_mse", batch_size=0,
        epochs=1, repeats_per_epoch=1000,
    )
    np.testing.assert_allclose(seen[-1], [0.1107, 0.9513], atol=5e-5)  # the notes round to 4 decimals
    report = metrics["report"]
    np.testing.assert_allclose(report["normal_equation_parameters"]["weights"], [0.0, 1.0], atol=1e-9)
    assert report["parameter_distance"] == pytest.approx(np.hypot(0.1107, 1 - 0.9513), abs=1e-4)
    assert report["normal_equation_test_mse"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("use_bias", [False, True])
def test_normal_equation_recovers_noiseless_parameters_and_equals_numpy_lstsq(use_bias):  # notes-001 §29
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    theta, bias = np.array([1.5, -2.0, 0.25]), 0.75 if use_bias else 0.0
    weights, fitted_bias = normal_equation(x, x @ theta + bias, use_bias)
    np.testing.assert_allclose(weights, theta, atol=1e-5)
    assert fitted_bias == pytest.approx(bias, abs=1e-5)
    y = x @ theta + bias + rng.normal(scale=0.5, size=100)
    design = np.concatenate([x, np.ones((100, 1))], axis=1) if use_bias else x
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    weights, fitted_bias = normal_equation(x, y, use_bias)
    np.testing.assert_allclose(np.append(weights, fitted_bias) if use_bias else weights, expected, atol=1e-8)


def test_tiny_run_loss_falls_and_beats_the_mean_predictor(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = run.metrics["report"]
    assert report["gradient_descent_test_mse"] == pytest.approx(run.metrics["test"]["mse"], rel=1e-5)
    assert report["normal_equation_test_mse"] < 0.7 * report["mean_predictor_test_mse"]
    assert report["gradient_descent_test_mse"] < 0.7 * report["mean_predictor_test_mse"]
    assert report["parameter_space"] == "standardised features"


def test_standardisation_uses_training_statistics_inside_the_model(run, table):
    standardized = run.model.get_layer("standardize")(table.train.x).numpy()
    np.testing.assert_allclose(standardized.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(standardized.std(axis=0), 1, atol=1e-4)


def test_the_run_keeps_its_standardisation_and_serves_without_reading_the_data(run, table, monkeypatch):
    saved = json.loads((run.run_dir / "assets" / "features.json").read_text())
    assert saved["names"] == list(table.feature_names)
    np.testing.assert_allclose(saved["offset"], -table.train.x.mean(axis=0) / table.train.x.std(axis=0), rtol=1e-5)
    monkeypatch.setattr(recipe, "load_table", lambda cfg: pytest.fail("derived from the data again"))
    cfg = run_config(RunFolder.open(run.run_dir))
    rebuilt = recipe.model(cfg).get_layer("standardize")  # a resumed fit builds the model from the asset
    np.testing.assert_array_equal(np.float32(rebuilt.scale), np.float32(run.model.get_layer("standardize").scale))
    assert list(recipe.serving(cfg, run.model).endpoints["serving_default"].inputs["features"].shape) == [None, 10]
    example = recipe.serving_examples(cfg, run.model, saved_test_split(run.run_dir))["serving_default"]
    np.testing.assert_array_equal(example.request["features"], table.test.x[:4])
    np.testing.assert_allclose(example.expected["prediction"], run.model.predict(table.test.x[:4], verbose=0)[:, 0], rtol=1e-6)


def test_keras_round_trip_gives_identical_predictions(run, table, tmp_path):
    x = table.test.x
    run.model.save(tmp_path / "linear_regression.keras")
    loaded = keras.saving.load_model(tmp_path / "linear_regression.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), run.model.predict(x, verbose=0))


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]


def test_serving_takes_raw_features_and_equals_predict(run, table):
    x = table.test.x
    serve = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    served = serve(features=tf.constant(x))["prediction"].numpy()
    assert served.shape == (len(x),)
    np.testing.assert_allclose(served, run.model.predict(x, verbose=0)[:, 0], rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        serve(features=tf.constant(np.full((1, x.shape[1]), np.nan, np.float32)))
