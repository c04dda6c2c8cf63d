"""Nadaraya–Watson attention pooling (notes-002-part2 §44): the Gaussian-kernel formula, limits in w, leave-one-out, round trip."""

import math

import keras
import numpy as np
import pytest

from tfmodels.models.nadaraya_watson import NadarayaWatson, attention_weights, build_nadaraya_watson, nadaraya_watson

RNG = np.random.default_rng(0)
KEYS = np.sort(RNG.uniform(0, 5, 20)).astype("float32")
VALUES = RNG.normal(size=20).astype("float32")
QUERIES = np.linspace(-0.5, 5.5, 13).astype("float32")


def test_equals_the_kernel_ratio_with_the_gaussian_kernel():
    """f(x) = Σ K(x − x_i) / Σ_j K(x − x_j) · y_i with K(u) = exp(−u²/2)/√(2π) [IMG L3590] = softmax(−½(x − x_i)²) @ y."""
    kernel = np.exp(-0.5 * (QUERIES[:, None] - KEYS[None, :]) ** 2) / math.sqrt(2 * math.pi)
    expected = (kernel / kernel.sum(1, keepdims=True)) @ VALUES
    prediction, weights = nadaraya_watson(QUERIES, KEYS, VALUES)
    np.testing.assert_allclose(np.asarray(prediction), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(weights).sum(1), 1.0, rtol=1e-6)
    assert np.all(np.asarray(weights) >= 0)


def test_parametric_width_scales_the_distance():
    w = 3.0
    scores = -0.5 * ((QUERIES[:, None] - KEYS[None, :]) * w) ** 2
    expected = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(attention_weights(QUERIES, KEYS, w)), expected / expected.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_limits_in_w_are_average_pooling_and_the_nearest_neighbour():
    average, _ = nadaraya_watson(QUERIES, KEYS, VALUES, width=1e-4)
    np.testing.assert_allclose(np.asarray(average), VALUES.mean(), rtol=1e-4)  # notes L3580: f(x) = (1/n) Σ y_i
    nearest, _ = nadaraya_watson(QUERIES, KEYS, VALUES, width=1e4)
    expected = VALUES[np.abs(QUERIES[:, None] - KEYS[None, :]).argmin(1)]
    np.testing.assert_allclose(np.asarray(nearest), expected, rtol=1e-4, atol=1e-4)


def test_training_leaves_each_point_out_of_its_own_pooling():
    layer = NadarayaWatson(KEYS, VALUES, learn_width=False, initial_width=1.0)
    layer.build((None, 1))
    x = KEYS[:, None]
    train_weights = np.asarray(layer.weights_for(x, training=True))
    np.testing.assert_array_equal(np.diag(train_weights), 0.0)
    np.testing.assert_allclose(train_weights.sum(1), 1.0, rtol=1e-6)
    assert np.all(np.diag(np.asarray(layer.weights_for(x))) > 0)  # evaluation and serving use every key
    own = np.eye(20, dtype=bool)
    scores = np.where(own, -np.inf, -0.5 * (KEYS[:, None] - KEYS[None, :]) ** 2)
    expected = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(layer(x, training=True))[:, 0], (expected / expected.sum(1, keepdims=True)) @ VALUES, rtol=1e-5, atol=1e-6)


def test_only_the_width_is_trainable_and_it_starts_in_the_unit_interval():
    keras.utils.set_random_seed(1)
    model = build_nadaraya_watson(KEYS, VALUES)
    assert [w.name for w in model.trainable_weights] == ["width"]
    assert 0.0 <= float(model.get_layer("attention_pooling").width.numpy()) < 1.0  # d2l's torch.rand(1)
    fixed = build_nadaraya_watson(KEYS, VALUES, learn_width=False, initial_width=1.0)
    assert fixed.trainable_weights == []


def test_training_the_width_lowers_the_leave_one_out_loss():
    keras.utils.set_random_seed(2)
    x = np.sort(RNG.uniform(0, 5, 50)).astype("float32")
    y = (2 * np.sin(x) + x**0.8 + RNG.normal(0, 0.5, 50)).astype("float32")
    model = build_nadaraya_watson(x, y, initial_width=0.1)
    model.compile(keras.optimizers.SGD(0.5), keras.losses.MeanSquaredError(reduction="sum"))
    losses = model.fit(x[:, None], y[:, None], batch_size=50, epochs=5, verbose=0, shuffle=False).history["loss"]
    assert losses[-1] < losses[0]


def test_keras_round_trip(tmp_path):
    model = build_nadaraya_watson(KEYS, VALUES, initial_width=2.5)
    model.save(tmp_path / "nw.keras")
    loaded = keras.saving.load_model(tmp_path / "nw.keras")
    np.testing.assert_allclose(loaded.predict(QUERIES[:, None], verbose=0), model.predict(QUERIES[:, None], verbose=0), rtol=1e-6)
    assert loaded.get_layer("attention_pooling").get_config() == model.get_layer("attention_pooling").get_config()


def test_keys_and_values_must_pair_up():
    with pytest.raises(ValueError, match="as many keys as values"):
        NadarayaWatson([0.0, 1.0], [1.0])
