"""TimestepEmbedding: the DDPM code's sinusoids (sines then cosines) and the two-layer MLP."""

import doctest
import math

import keras
import numpy as np
import pytest

from tfmodels.layers import timestep_embedding as module
from tfmodels.layers.timestep_embedding import TimestepEmbedding, timestep_sinusoids


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_sinusoids_follow_the_ddpm_formula():
    t, dim = np.array([0, 1, 17, 999]), 32
    half = dim // 2
    frequencies = [math.exp(-math.log(10000) * i / (half - 1)) for i in range(half)]
    expected = [[math.sin(s * f) for f in frequencies] + [math.cos(s * f) for f in frequencies] for s in t]
    got = keras.ops.convert_to_numpy(timestep_sinusoids(keras.ops.convert_to_tensor(t), dim))
    np.testing.assert_allclose(got, expected, atol=2e-4)  # float32 angles up to 999 rad
    np.testing.assert_allclose(got[:, half - 1], np.sin(t / 10000.0), atol=1e-6)  # lowest frequency exactly 1e-4


def test_odd_width_raises():
    with pytest.raises(ValueError, match="even"):
        timestep_sinusoids(keras.ops.convert_to_tensor([1]), 7)


def test_distinct_steps_get_distinct_embeddings_and_params_match_the_formula(tmp_path):
    layer = TimestepEmbedding(16, 64)
    out = keras.ops.convert_to_numpy(layer(keras.ops.arange(0, 1000, 37)))
    assert out.shape == (28, 64)
    distances = np.linalg.norm(out[:, None] - out[None], axis=-1)
    assert distances[~np.eye(28, dtype=bool)].min() > 1e-3
    assert layer.count_params() == (16 * 64 + 64) + (64 * 64 + 64)


def test_keras_round_trip(tmp_path):
    t = keras.Input((), dtype="int32")
    model = keras.Model(t, TimestepEmbedding(8, 16, name="temb")(t))
    path = tmp_path / "temb.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    steps = keras.ops.convert_to_tensor([3, 500])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(steps)), keras.ops.convert_to_numpy(model(steps)), atol=1e-6)
    assert loaded.get_layer("temb").get_config()["hidden_dim"] == 16
