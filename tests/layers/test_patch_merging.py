"""Swin's patch merging: 2x2 neighbours → LayerNorm(4C) → Linear(2C) (notes-001 §27; Swin §3.1)."""

import keras
import numpy as np
import pytest
from keras_hub.src.models.swin_transformer import swin_transformer_layers as hub_layers

from tfmodels.layers.patch_merging import PatchMerging


def _random_layer(channels=6, seed=0):
    layer = PatchMerging()
    layer.build((None, 4, 6, channels))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape))
    return layer


def test_matches_the_paper_definition_in_numpy():
    layer = _random_layer()
    x = np.random.default_rng(1).normal(size=(2, 4, 6, 6)).astype("float32")
    # Each output token at (i, j) concatenates input tokens (2i, 2j), (2i+1, 2j), (2i, 2j+1), (2i+1, 2j+1).
    merged = np.zeros((2, 2, 3, 24), "float32")
    for i in range(2):
        for j in range(3):
            merged[:, i, j] = np.concatenate(
                [x[:, 2 * i, 2 * j], x[:, 2 * i + 1, 2 * j], x[:, 2 * i, 2 * j + 1], x[:, 2 * i + 1, 2 * j + 1]], -1
            )
    gamma, beta = layer.norm.gamma.numpy(), layer.norm.beta.numpy()
    normed = (merged - merged.mean(-1, keepdims=True)) / np.sqrt(merged.var(-1, keepdims=True) + 1e-5) * gamma + beta
    np.testing.assert_allclose(layer(x), normed @ layer.reduction.kernel.numpy(), rtol=1e-4, atol=1e-5)


def test_matches_keras_hub_patch_merging():
    ours = _random_layer(channels=8, seed=2)
    hub = hub_layers.PatchMerging(dim=8)
    x = np.random.default_rng(3).normal(size=(2, 4, 6, 8)).astype("float32")
    hub(x.reshape(2, 24, 8), H=4, W=6)
    hub.norm.set_weights(ours.norm.get_weights())
    hub.reduction.set_weights(ours.reduction.get_weights())
    np.testing.assert_allclose(ours(x).numpy().reshape(2, 6, 16), hub(x.reshape(2, 24, 8), H=4, W=6), rtol=1e-5, atol=1e-5)


def test_halves_the_map_doubles_the_channels_and_counts_closed_form():
    layer = PatchMerging()
    assert layer(np.zeros((1, 8, 4, 16), "float32")).shape == (1, 4, 2, 32)
    assert layer.count_params() == 2 * 4 * 16 + 4 * 16 * 2 * 16  # LN(4C) γ, β + bias-free 4C x 2C
    assert layer.reduction.use_bias is False


def test_odd_map_is_refused():
    with pytest.raises(ValueError, match="even"):
        PatchMerging()(np.zeros((1, 5, 4, 8), "float32"))


def test_config_round_trip():
    layer = PatchMerging(layer_norm_epsilon=1e-6, name="merge")
    clone = PatchMerging.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_object("tfmodels>PatchMerging") is PatchMerging
