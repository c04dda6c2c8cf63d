"""GridPositionEmbedding and interpolate_position_grid (notes-001 §24; ViT §3.2 resolution change).

The reference is NumPy written from the bilinear formula with half-pixel centres (PyTorch's
``align_corners=False`` convention): output cell i of n_out reads the table at
``(i + 0.5) * n_in / n_out - 0.5``, clamped to ``[0, n_in - 1]``, and mixes its two neighbours
linearly; rows and columns are separable. A second, independent reference is SciPy's
``ndimage.zoom(order=1, grid_mode=True, mode="nearest")``: linear, with the grid's cell edges
aligned (half-pixel centres) and the edge value repeated outside, the same convention.
"""

import doctest

import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from tfmodels.layers import grid_position_embedding
from tfmodels.layers.grid_position_embedding import GridPositionEmbedding, interpolate_position_grid


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` matrix of 1-D linear interpolation with half-pixel centres."""
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        source = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        low = int(np.floor(source))
        high = min(low + 1, n_in - 1)
        weights[i, low] += 1.0 - (source - low)
        weights[i, high] += source - low
    return weights


def reference_resize(table: np.ndarray, height: int, width: int) -> np.ndarray:
    rows, cols = _linear_weights(table.shape[0], height), _linear_weights(table.shape[1], width)
    return np.einsum("hi,wj,ijd->hwd", rows, cols, table.astype("float64"))


def _table(g=4, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(g, g, d)).astype("float32")


def test_one_dimensional_weights_match_a_hand_worked_case():
    # 2 -> 4: centres at -0.25, 0.25, 0.75, 1.25 of the input -> 0, 0.25, 0.75, 1 between a and b
    np.testing.assert_allclose(_linear_weights(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])


@pytest.mark.parametrize("height, width", [(6, 6), (7, 3), (2, 2), (3, 5), (9, 1)])
def test_interpolation_matches_the_numpy_reference(height, width):
    table = _table()
    ours = interpolate_position_grid(table, height, width).numpy()
    np.testing.assert_allclose(ours, reference_resize(table, height, width), atol=1e-5)


@pytest.mark.parametrize("height, width", [(6, 6), (7, 3), (2, 2), (12, 12)])
def test_interpolation_matches_scipy_zoom(height, width):
    table = _table()
    expected = scipy.ndimage.zoom(
        table.astype("float64"), (height / 4, width / 4, 1), order=1, grid_mode=True, mode="nearest"
    )
    np.testing.assert_allclose(interpolate_position_grid(table, height, width).numpy(), expected, atol=1e-5)


def test_interpolation_at_the_trained_size_is_the_identity():
    table = _table()
    np.testing.assert_array_equal(interpolate_position_grid(table, 4, 4).numpy(), table)


def test_layer_is_its_table_at_the_trained_size_and_broadcasts_over_the_batch():
    layer = GridPositionEmbedding(grid_size=4)
    out = layer(np.zeros((3, 4, 4, 5), "float32")).numpy()
    table = layer.embeddings.numpy()
    assert out.shape == (3, 4, 4, 5)
    for b in range(3):
        np.testing.assert_array_equal(out[b], table)
    assert 0.01 < table.std() < 0.03  # paper default: normal, stddev 0.02


def test_layer_resizes_its_table_for_another_grid_with_dynamic_shapes():
    layer = GridPositionEmbedding(grid_size=4)
    layer.build((None, 4, 4, 5))
    layer.embeddings.assign(_table())
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 5])])
    for h, w in [(6, 6), (3, 7), (4, 4)]:
        out = fn(tf.zeros([2, h, w, 5])).numpy()
        assert out.shape == (2, h, w, 5)
        np.testing.assert_allclose(out[1], reference_resize(_table(), h, w), atol=1e-5)


def test_embedding_breaks_permutation_symmetry():
    layer = GridPositionEmbedding(grid_size=4)
    out = layer(np.zeros((1, 4, 4, 5), "float32")).numpy()[0].reshape(16, 5)
    assert len({tuple(row) for row in out.round(6)}) == 16  # every patch position is distinct


def test_round_trip_through_a_keras_file(tmp_path):
    inputs = keras.Input((None, None, 5))
    model = keras.Model(inputs, GridPositionEmbedding(grid_size=4, initializer="glorot_uniform", name="pos")(inputs))
    x = np.zeros((1, 6, 6, 5), "float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("pos").get_config()["grid_size"] == 4
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_gradient_reaches_the_table_through_the_resize():
    layer = GridPositionEmbedding(grid_size=4)
    layer.build((None, 4, 4, 5))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.zeros([1, 6, 6, 5])))
    grad = tape.gradient(loss, layer.embeddings).numpy()
    # each input cell receives the total weight the output cells give it: rows x columns
    expected = np.outer(_linear_weights(4, 6).sum(0), _linear_weights(4, 6).sum(0))
    np.testing.assert_allclose(grad, np.repeat(expected[..., None], 5, axis=-1), atol=1e-5)


def test_docstring_examples():
    assert doctest.testmod(grid_position_embedding, raise_on_error=False).failed == 0
