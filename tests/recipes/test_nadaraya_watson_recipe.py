"""nadaraya_watson recipe (notes-002-part2 §44): d2l's experiment through the trainer, the report and plot, serving x → ŷ."""

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels.config import resolve
from tfmodels.recipes import nadaraya_watson as recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nadaraya_watson")
    return tfmodels.train("nadaraya_watson", preset="default", runs_root=root / "runs", export_root=root / "saved_models")


def test_the_task_is_d2ls_regression():
    cfg = resolve(recipe.NadarayaWatsonConfig, "default")
    task = recipe.regression_task(cfg)
    x, y = task.train
    assert x.shape == (50,) and np.all(np.diff(x) >= 0) and 0 <= x.min() and x.max() < 5
    assert np.std(y - recipe.target_function(x)) == pytest.approx(0.5, abs=0.15)
    np.testing.assert_allclose(task.test[0], np.arange(0, 5, 0.1), atol=1e-6)
    np.testing.assert_allclose(task.test[1], 2 * np.sin(task.test[0]) + task.test[0] ** 0.8, rtol=1e-5)
    assert (cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.learning_rate) == (5, 0, "sgd", 0.5)


def test_kernel_regression_beats_average_pooling_and_training_lowers_the_loss(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    mse = run.metrics["report"]["test_mse"]
    assert mse["non_parametric"] < mse["average_pooling"]  # §44 test: the kernel beats ignoring the query
    assert mse["parametric"] < mse["average_pooling"]
    assert run.metrics["report"]["learned_width"] > 1.0  # d2l: the learned kernel is narrower than w = 1
    png = (run.run_dir / "nadaraya_watson.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_serving_takes_x_and_equals_the_model(run):
    predict = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    x = np.array([0.0, 1.3, 4.9], np.float32)
    np.testing.assert_allclose(predict(x=tf.constant(x))["prediction"].numpy(), run.model.predict(x[:, None], verbose=0)[:, 0], rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="x must be finite"):
        predict(x=tf.constant([np.nan], tf.float32))


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]
