"""logistic_regression: hours -> pass (notes-002 S10), trained to the penalised optimum, and its export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import tabular
from tfmodels.config import resolve
from tfmodels.recipes import logistic_regression as recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny preset (300 full-batch steps), trained and exported once for this module."""
    root = tmp_path_factory.mktemp("logistic_regression")
    return tfmodels.train("logistic_regression", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def penalised_optimum(l2: float) -> np.ndarray:
    """(w, b) minimising mean BCE + l2·w² on the notes' table, by Newton's method in float64."""
    hours = tabular.notes_hours()
    x, y = np.c_[hours.train.x[:, 0], np.ones(3)].astype(np.float64), hours.train.y.astype(np.float64)
    theta = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ theta))
        gradient = x.T @ (p - y) / 3 + [2 * l2 * theta[0], 0.0]
        hessian = (x.T * p * (1 - p)) @ x / 3 + np.diag([2 * l2, 0.0])
        theta -= np.linalg.solve(hessian, gradient)
    return theta


def test_builds_from_config_with_two_parameters():
    model = recipe.model(resolve(recipe.LogisticRegressionConfig, "tiny"))
    assert model.count_params() == 2  # w and b
    p = model(np.array([[-50.0], [1.0], [50.0]], np.float32)).numpy()
    assert p.shape == (3, 1) and np.all((p >= 0) & (p <= 1))


def test_paper_preset_is_the_notes_unpenalised_100_epochs():
    cfg = resolve(recipe.LogisticRegressionConfig, "paper")
    assert (cfg.l2, cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.momentum) == (0.0, 100, 0, "sgd", 0.0)
    assert cfg.learning_rate == pytest.approx(0.03)  # summed BCE at lr 0.01 over 3 rows
    assert recipe.model(cfg).losses == []


def test_converges_to_the_unique_penalised_optimum(run):
    report = run.metrics["report"]
    w, b = penalised_optimum(resolve(recipe.LogisticRegressionConfig, "tiny").l2)
    assert report["converged"] and report["objective_gradient_norm"] < recipe.CONVERGED_GRADIENT_NORM
    # ‖∇J‖ < 1e-5 bounds the distance to the optimum by about 1e-5 / 0.0067 (the smallest Hessian eigenvalue).
    assert np.hypot(report["weight"] - w, report["bias"] - b) < 1.5e-3
    assert report["decision_boundary_hours"] == pytest.approx(-b / w, abs=1e-4)


def test_probability_rises_with_hours_and_the_boundary_lies_between_two_and_three(run):
    report = run.metrics["report"]
    p = [report["p_pass"][f"{h}h"] for h in (1, 2, 3, 4)]
    assert np.all(np.diff(p) > 0)
    assert p[3] > 0.5 > p[0]
    assert 2 < report["decision_boundary_hours"] < 3
    assert report["test_accuracy"] == 1.0 and report["majority_accuracy"] == pytest.approx(2 / 3)


def test_training_lowers_the_objective(run):
    cfg = resolve(recipe.LogisticRegressionConfig, "tiny")
    keras.utils.set_random_seed(cfg.seed)
    untrained = recipe.model(cfg)
    untrained.compile(**recipe.compile_args(cfg))
    x, y = tabular.notes_hours().train.x, tabular.notes_hours().train.y
    before = untrained.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    assert run.metrics["test"]["loss"] < before - 0.1


def test_keras_round_trip_keeps_predictions_and_the_penalty(run, tmp_path):
    hours = np.linspace(0, 10, 21, dtype=np.float32)[:, None]
    run.model.save(tmp_path / "logistic_regression.keras")
    loaded = keras.saving.load_model(tmp_path / "logistic_regression.keras")
    np.testing.assert_array_equal(loaded.predict(hours, verbose=0), run.model.predict(hours, verbose=0))
    assert loaded.get_layer("dense").kernel_regularizer.l2 == pytest.approx(0.01)
    assert len(loaded.losses) == 1


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]


def test_serving_takes_hours_and_equals_predict(run):
    hours = np.array([0.5, 1.0, 2.4, 2.6, 4.0, 10.0], np.float32)
    serve = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    served = {k: v.numpy() for k, v in serve(hours=tf.constant(hours)).items()}
    expected = run.model.predict(hours[:, None], verbose=0)[:, 0]
    np.testing.assert_allclose(served["probability"], expected, rtol=1e-6)
    assert served["label"].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="hours must be finite"):
        serve(hours=tf.constant([np.inf], tf.float32))
