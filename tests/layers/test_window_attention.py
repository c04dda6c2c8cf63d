"""Window partitioning and window attention with relative position bias (notes-001 §27; Swin §3.2)."""

import keras
import numpy as np
import pytest
from keras_hub.src.models.swin_transformer import swin_transformer_layers as hub_layers

from tfmodels.layers.window_attention import (
    WindowAttention,
    relative_position_index,
    window_partition,
    window_reverse,
)


@pytest.mark.parametrize("batch, height, width, size", [(1, 4, 4, 2), (2, 6, 9, 3), (3, 8, 8, 4), (2, 7, 14, 7)])
def test_partition_then_reverse_is_the_identity(batch, height, width, size):
    x = np.random.default_rng(0).normal(size=(batch, height, width, 5)).astype("float32")
    windows = window_partition(x, size)
    assert windows.shape == (batch * (height // size) * (width // size), size, size, 5)
    np.testing.assert_array_equal(window_reverse(windows, size, height, width), x)


def test_partition_cuts_row_major_windows():
    # Reference written directly from the definition: window (b, r, c) = x[b, rM:(r+1)M, cM:(c+1)M].
    x = np.random.default_rng(1).normal(size=(2, 6, 9, 4)).astype("float32")
    expected = [x[b, r * 3 : r * 3 + 3, c * 3 : c * 3 + 3] for b in range(2) for r in range(2) for c in range(3)]
    np.testing.assert_array_equal(window_partition(x, 3), np.stack(expected))


def test_partition_refuses_a_map_that_is_not_a_grid_of_windows():
    with pytest.raises(ValueError, match="not a grid"):
        window_partition(np.zeros((1, 6, 7, 1), "float32"), 3)


@pytest.mark.parametrize("size", [2, 4, 7])
def test_relative_position_index_matches_keras_hub(size):
    hub = keras.ops.convert_to_numpy(hub_layers.get_relative_position_index(size, size))
    np.testing.assert_array_equal(relative_position_index(size), hub)
    assert relative_position_index(size).max() == (2 * size - 1) ** 2 - 1  # the table's last row is used


def _reference_attention(layer, windows, allowed=None):
    """softmax(Q Kᵀ/√d + B) V, per head, in NumPy from the paper's formula (eq. 4)."""
    w_qkv, b_qkv = (w.numpy() for w in layer.qkv.weights)
    w_proj, b_proj = (w.numpy() for w in layer.proj.weights)
    table = layer.relative_position_bias_table.numpy()
    count, tokens, channels = windows.shape
    heads, dim = layer.num_heads, channels // layer.num_heads
    q, k, v = np.split(windows @ w_qkv + b_qkv, 3, axis=-1)
    out = np.zeros_like(windows)
    for n in range(count):
        for h in range(heads):
            part = slice(h * dim, (h + 1) * dim)
            logits = q[n][:, part] @ k[n][:, part].T / np.sqrt(dim)
            for i in range(tokens):
                for j in range(tokens):
                    (hi, wi), (hj, wj) = divmod(i, layer.window_size), divmod(j, layer.window_size)
                    offset = (hi - hj + layer.window_size - 1) * (2 * layer.window_size - 1) + wi - wj + layer.window_size - 1
                    logits[i, j] += table[offset, h]
            if allowed is not None:
                logits = np.where(allowed[n % allowed.shape[0]], logits, -np.inf)
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            out[n][:, part] = (weights / weights.sum(-1, keepdims=True)) @ v[n][:, part]
    return out @ w_proj + b_proj


def _layer(num_heads=2, size=3, channels=8, seed=0):
    layer = WindowAttention(num_heads, size)
    layer.build((None, size * size, channels))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:  # non-trivial biases and a bias table far from zero
        weight.assign(rng.normal(0, 0.5, weight.shape))
    return layer


def test_window_attention_matches_the_paper_formula():
    layer = _layer()
    windows = np.random.default_rng(2).normal(size=(4, 9, 8)).astype("float32")
    np.testing.assert_allclose(layer(windows), _reference_attention(layer, windows), rtol=1e-4, atol=1e-5)


def test_boolean_mask_matches_the_formula_and_repeats_over_the_batch():
    layer = _layer()
    rng = np.random.default_rng(3)
    windows = rng.normal(size=(2 * 3, 9, 8)).astype("float32")  # 2 images x 3 windows
    allowed = rng.uniform(size=(3, 9, 9)) < 0.5
    allowed |= np.eye(9, dtype=bool)  # every query keeps at least itself
    expected = _reference_attention(layer, windows, allowed)
    np.testing.assert_allclose(layer(windows, attention_mask=allowed), expected, rtol=1e-4, atol=1e-5)


def test_additive_mask_is_added_to_the_logits():
    layer = _layer()
    rng = np.random.default_rng(4)
    windows = rng.normal(size=(2, 9, 8)).astype("float32")
    allowed = rng.uniform(size=(1, 9, 9)) < 0.5
    allowed |= np.eye(9, dtype=bool)
    additive = np.where(allowed, 0.0, -100.0).astype("float32")  # the paper code's mask values
    np.testing.assert_allclose(
        layer(windows, attention_mask=additive), layer(windows, attention_mask=allowed), rtol=1e-5, atol=1e-6
    )


def test_matches_keras_hub_window_attention_with_its_mask():
    ours = _layer(num_heads=3, size=4, channels=12, seed=5)
    hub = hub_layers.WindowAttention(dim=12, num_heads=3, window_size=4)
    hub.build((None, 16, 12))
    hub.qkv.build((None, 16, 12))
    hub.proj.build((None, 16, 12))
    hub.relative_position_bias_table.assign(ours.relative_position_bias_table)
    for source, target in ((ours.qkv, hub.qkv), (ours.proj, hub.proj)):
        target.set_weights(source.get_weights())
    rng = np.random.default_rng(6)
    windows = rng.normal(size=(4, 16, 12)).astype("float32")
    allowed = (rng.uniform(size=(2, 16, 16)) < 0.5) | np.eye(16, dtype=bool)
    hub_mask = np.where(allowed, 0.0, -100.0).astype("float32")
    np.testing.assert_allclose(ours(windows), hub(windows), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours(windows, attention_mask=allowed), hub(windows, mask=hub_mask), rtol=1e-4, atol=1e-5)


def test_bias_table_shape_and_config_round_trip():
    layer = WindowAttention(num_heads=4, window_size=7, qkv_bias=False, attention_dropout=0.1, dropout=0.2)
    layer.build((None, 49, 32))
    assert layer.relative_position_bias_table.shape == (13 * 13, 4)  # (2M − 1)² × heads, paper default
    assert len(layer.qkv.weights) == 1  # no Q/K/V bias
    clone = WindowAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_channels_must_split_into_heads():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        WindowAttention(num_heads=3, window_size=2)(np.zeros((1, 4, 8), "float32"))
