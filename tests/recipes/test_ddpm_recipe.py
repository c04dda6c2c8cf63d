"""``ddpm`` recipe: data in [−1, 1], a tiny run that trains, pictures, measures quality on a classifier's
features, and exports in-graph samplers that draw what the in-process sampler draws."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import tfmodels
from pipelines import images
from tfmodels import registry
from tfmodels.config import ConfigError, resolve
from tfmodels.models.ddpm_unet import PAPER_CONFIG, PAPER_PARAMETERS
from tfmodels.recipes.ddpm import sample

TINY_SIZE = 16


def _classifier_file(path):
    """A small digit classifier at the tiny run's 16² grey input (random weights: features enough)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((TINY_SIZE, TINY_SIZE, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    model.save(path)
    return path


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddpm")
    classifier = _classifier_file(root / "digits.keras")
    return tfmodels.train(
        "ddpm", preset="tiny", overrides={"classifier": str(classifier)},
        runs_root=root / "runs", export_root=root / "saved_models",
    )


def test_data_are_grey_digits_in_the_model_range():
    recipe = registry.get("ddpm")
    x, _ = next(iter(recipe.datasets(resolve(recipe.config, "default", {})).train.batch(64)))
    assert x.shape == (64, 28, 28, 1)
    assert x.numpy().min() == pytest.approx(-1.0, abs=1e-3) and x.numpy().max() == pytest.approx(1.0, abs=1e-2)
    assert (x.numpy() < -0.99).mean() > 0.5  # mostly black background: digits, not noise


def test_cifar10_from_tfds_keeps_colour():
    recipe = registry.get("ddpm")
    cfg = resolve(recipe.config, "paper", {})
    with tfds.testing.mock_data(num_examples=6):
        x, _ = next(iter(recipe.datasets(cfg).train.batch(2)))
    assert x.shape == (2, 32, 32, 3) and -1.0 <= x.numpy().min() and x.numpy().max() <= 1.0


def test_paper_preset_is_the_papers_cifar10_network():
    """The paper preset builds the U-Net counted in tests/models/test_ddpm_unet.py (35.7M, slow there)."""
    cfg = resolve(registry.get("ddpm").config, "paper", {})
    assert {key: getattr(cfg, key) for key in PAPER_CONFIG} == PAPER_CONFIG
    assert (cfg.data, cfg.num_timesteps, cfg.ema_decay, cfg.learning_rate, cfg.batch_size) == ("tfds:cifar10", 1000, 0.9999, 2e-4, 128)


@pytest.mark.slow
def test_paper_network_has_the_papers_parameter_count():
    recipe = registry.get("ddpm")
    network = recipe.model(resolve(recipe.config, "paper", {})).network
    assert abs(network.count_params() - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.005  # "35.7 million"


def test_bad_settings_are_refused():
    config = registry.get("ddpm").config
    with pytest.raises(ConfigError, match="ddim_steps"):
        resolve(config, "tiny", {"ddim_steps": (10, 101)})
    with pytest.raises(ConfigError, match="channels"):
        resolve(config, "tiny", {"channels": 2})


@pytest.mark.slow  # the tiny run with its pictures, quality and export takes minutes on 2 cores
def test_tiny_run_learns_to_predict_noise(ddpm_run):
    # Predicting ε̂ = 0 scores E‖ε‖² = 1; one tiny epoch is already well below it.
    assert ddpm_run.metrics["test"]["loss"] < 0.5


@pytest.mark.slow  # the tiny run with its pictures, quality and export takes minutes on 2 cores
def test_pictures_show_every_sampler(ddpm_run):
    report = ddpm_run.metrics["report"]
    assert set(report["seconds_per_image"]) == {"ddpm_100", "ddim_10", "ddim_5"}
    samples = images.decode_image(tf.io.read_file(str(ddpm_run.run_dir / "samples.png")), (None, None), 1)
    assert samples.shape[0] == 3 * (3 * (TINY_SIZE + 2) - 2)  # three rows of 3x-scaled samples, 2-pixel gaps
    strip = images.decode_image(tf.io.read_file(str(ddpm_run.run_dir / "denoising.png")), (None, None), 1)
    assert strip.shape[:2] == (3 * (2 * TINY_SIZE + 2), 3 * (10 * TINY_SIZE + 9 * 2))  # x_t and x̂_0 at 10 steps


@pytest.mark.slow  # the tiny run with its pictures, quality and export takes minutes on 2 cores
def test_quality_is_measured_against_the_floor_and_ceilings(ddpm_run):
    quality = ddpm_run.metrics["report"]["quality"]
    assert set(quality) == {"real_validation", "gaussian_noise", "training_mean", "ddpm_100", "ddim_10", "ddim_5"}
    # held-out real digits sit far closer to the test digits than noise or one repeated mean image
    assert quality["real_validation"]["frechet_distance"] < quality["gaussian_noise"]["frechet_distance"] / 5
    assert quality["real_validation"]["frechet_distance"] < quality["training_mean"]["frechet_distance"]
    assert quality["training_mean"]["class_entropy_bits"] == 0.0  # one image, one class
    for values in quality.values():
        assert 0 <= values["class_entropy_bits"] <= np.log2(10) and 0 <= values["confident_share"] <= 1
    assert (ddpm_run.run_dir / "assets" / "quality_classifier.keras").is_file()  # the run keeps its classifier


@pytest.mark.slow  # the tiny run with its pictures, quality and export takes minutes on 2 cores
def test_export_draws_what_the_run_draws_and_refuses_bad_requests(ddpm_run):
    assert tfmodels.verify_export(ddpm_run.export_path)["requests_replayed"] == 2  # exported == in-process, both samplers
    served = tf.saved_model.load(str(ddpm_run.export_path)).signatures
    one = served["serving_default"](num_images=tf.constant(3), seed=tf.constant(5, tf.int64), steps=tf.constant(4))
    again = served["serving_default"](num_images=tf.constant(3), seed=tf.constant(5, tf.int64), steps=tf.constant(4))
    other = served["serving_default"](num_images=tf.constant(3), seed=tf.constant(6, tf.int64), steps=tf.constant(4))
    assert one["images"].shape == (3, TINY_SIZE, TINY_SIZE, 1) and one["images"].dtype == tf.uint8
    np.testing.assert_array_equal(one["images"], again["images"])
    assert not np.array_equal(one["images"], other["images"])
    np.testing.assert_array_equal(tf.io.decode_png(one["png"][1]), one["images"][1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most T=100"):
        served["serving_default"](num_images=tf.constant(1), seed=tf.constant(0, tf.int64), steps=tf.constant(101))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images must be at most 64"):
        served["ddpm"](num_images=tf.constant(65), seed=tf.constant(0, tf.int64))
    assert json.loads((ddpm_run.run_dir / "config.json").read_text())["num_timesteps"] == 100


def test_sampler_is_seeded_bounded_and_encodes_png():
    """The in-graph sampler of the signatures, on an untrained tiny model (fast; the export is checked in the slow run)."""
    recipe = registry.get("ddpm")
    cfg = resolve(recipe.config, "tiny", {"max_images": 3})
    model = recipe.model(cfg)
    draw = tf.function(lambda n, seed, steps: sample(cfg, model, n, seed, steps))
    one, again = (draw(tf.constant(2), tf.constant(5, tf.int64), tf.constant(3)) for _ in range(2))
    other = draw(tf.constant(2), tf.constant(6, tf.int64), tf.constant(3))
    assert one["images"].shape == (2, TINY_SIZE, TINY_SIZE, 1) and one["images"].dtype == tf.uint8
    np.testing.assert_array_equal(one["images"], again["images"])
    assert not np.array_equal(one["images"], other["images"])
    np.testing.assert_array_equal(tf.io.decode_png(one["png"][1]), one["images"][1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most T=100"):
        draw(tf.constant(1), tf.constant(0, tf.int64), tf.constant(101))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images must be at most 3"):
        draw(tf.constant(4), tf.constant(0, tf.int64), tf.constant(2))
