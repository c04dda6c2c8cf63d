"""DiffusionResidualBlock against a NumPy/tf.nn rewrite of the DDPM code's resnet_block."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import diffusion_residual_block as module
from tfmodels.layers.diffusion_residual_block import DiffusionResidualBlock


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _group_norm(x, groups, gamma, beta, eps=1e-6):
    b, h, w, c = x.shape
    g = x.reshape(b, h, w, groups, c // groups)
    mean, var = g.mean(axis=(1, 2, 4), keepdims=True), g.var(axis=(1, 2, 4), keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(x.shape) * gamma + beta


def _swish(x):
    return x / (1 + np.exp(-x))


def _conv(x, kernel, bias):
    return tf.nn.conv2d(x.astype(np.float32), kernel, 1, "SAME").numpy() + bias


@pytest.mark.parametrize("in_channels", [8, 16])
def test_output_matches_the_papers_block(in_channels):
    rng = np.random.default_rng(0)
    block = DiffusionResidualBlock(16, groups=4)
    x = rng.normal(size=(2, 5, 5, in_channels)).astype(np.float32)
    temb = rng.normal(size=(2, 12)).astype(np.float32)
    block([x, temb])
    for weight in block.weights:  # random values everywhere, so no term can hide (conv2 starts ≈ 0)
        weight.assign(rng.normal(0, 0.3, weight.shape))
    h = _conv(_swish(_group_norm(x, 4, block.norm1.gamma.numpy(), block.norm1.beta.numpy())), *block.conv1.get_weights())
    h = h + (_swish(temb) @ block.temb_projection.kernel.numpy() + block.temb_projection.bias.numpy())[:, None, None, :]
    h = _conv(_swish(_group_norm(h, 4, block.norm2.gamma.numpy(), block.norm2.beta.numpy())), *block.conv2.get_weights())
    shortcut = x if in_channels == 16 else _conv(x, *block.shortcut.get_weights())
    np.testing.assert_allclose(block([x, temb]).numpy(), shortcut + h, rtol=1e-4, atol=1e-4)
    assert (block.shortcut is None) == (in_channels == 16)


def test_param_count_formula_and_near_identity_at_init():
    block = DiffusionResidualBlock(64, groups=32)
    x, temb = np.random.default_rng(1).normal(size=(2, 2, 4, 4, 64)).astype(np.float32)[0], np.ones((2, 256), np.float32)
    out = block([x, temb]).numpy()
    c, d = 64, 256
    assert block.count_params() == 2 * c + (9 * c * c + c) + (d * c + c) + 2 * c + (9 * c * c + c)
    np.testing.assert_allclose(out, x, atol=1e-3)  # the second conv starts ≈ 0 (paper code's init_scale=0)


def test_time_embedding_changes_the_output_and_dropout_only_in_training():
    rng = np.random.default_rng(2)
    block = DiffusionResidualBlock(8, dropout=0.5, groups=2)
    x = rng.normal(size=(1, 4, 4, 8)).astype(np.float32)
    block([x, np.zeros((1, 6), np.float32)])
    block.conv2.kernel.assign(rng.normal(0, 0.3, block.conv2.kernel.shape))
    a, b = (block([x, rng.normal(size=(1, 6)).astype(np.float32)]).numpy() for _ in range(2))
    assert np.abs(a - b).max() > 1e-3
    temb = np.ones((1, 6), np.float32)
    np.testing.assert_array_equal(block([x, temb], training=False).numpy(), block([x, temb], training=False).numpy())
    assert np.abs(block([x, temb], training=True).numpy() - block([x, temb], training=False).numpy()).max() > 1e-3


def test_keras_round_trip(tmp_path):
    x, temb = keras.Input((4, 4, 8)), keras.Input((6,))
    model = keras.Model([x, temb], DiffusionResidualBlock(16, dropout=0.1, groups=4, name="block")([x, temb]))
    path = tmp_path / "block.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = [np.ones((1, 4, 4, 8), np.float32), np.ones((1, 6), np.float32)]
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
    assert loaded.get_layer("block").get_config()["groups"] == 4
