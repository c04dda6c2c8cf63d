"""Sinusoidal positional encoding (notes-002-part2 §48)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding, sinusoidal_table


def test_table_is_the_notes_formula():
    table = sinusoidal_table(60, 32)
    i, j = np.arange(60)[:, None], np.arange(16)[None, :]
    np.testing.assert_allclose(table[:, 0::2], np.sin(i / 10000 ** (2 * j / 32)), atol=1e-6)
    np.testing.assert_allclose(table[:, 1::2], np.cos(i / 10000 ** (2 * j / 32)), atol=1e-6)
    assert table[0].tolist() == [0.0, 1.0] * 16
    np.testing.assert_allclose(table[:, 0], np.sin(np.arange(60)), atol=1e-6)
    np.testing.assert_allclose(table[:, 1], np.cos(np.arange(60)), atol=1e-6)
    assert np.abs(table).max() <= 1.0


@pytest.mark.parametrize("i, delta, j", [(3, 5, 0), (17, 2, 4), (40, 11, 7)])
def test_an_offset_is_a_rotation_independent_of_the_position(i, delta, j):
    """§48 [IMG L3722]: [[cos δω, sin δω], [−sin δω, cos δω]] · (p_i,2j, p_i,2j+1) = (p_i+δ,2j, p_i+δ,2j+1)."""
    table = sinusoidal_table(64, 16).astype(np.float64)
    w = 1 / 10000 ** (2 * j / 16)
    rotation = np.array([[np.cos(delta * w), np.sin(delta * w)], [-np.sin(delta * w), np.cos(delta * w)]])
    np.testing.assert_allclose(rotation @ table[i, 2 * j : 2 * j + 2], table[i + delta, 2 * j : 2 * j + 2], atol=1e-5)


def test_layer_adds_the_table_for_any_length_and_refuses_longer_ones(tmp_path):
    layer = SinusoidalPositionEncoding(max_length=8)
    x = tf.random.normal([2, 5, 6])
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() + sinusoidal_table(5, 6), rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length=8"):
        layer(tf.zeros([1, 9, 6]))
    inputs = keras.Input((None, 6))
    model = keras.Model(inputs, SinusoidalPositionEncoding(max_length=8)(inputs))
    model.save(tmp_path / "pe.keras")
    loaded = keras.saving.load_model(tmp_path / "pe.keras")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy())
