"""SpatialSelfAttention against a NumPy rewrite of the DDPM code's attn_block."""

import doctest

import keras
import numpy as np

from tfmodels.layers import spatial_self_attention as module
from tfmodels.layers.spatial_self_attention import SpatialSelfAttention


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _random_layer(rng, x, groups):
    layer = SpatialSelfAttention(groups=groups)
    layer(x)
    for weight in layer.weights:  # the output projection starts ≈ 0: randomise everything
        weight.assign(rng.normal(0, 0.3, weight.shape))
    return layer


def test_output_matches_softmax_attention_over_pixels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 8)).astype(np.float32)
    layer = _random_layer(rng, x, 4)
    h = layer.norm(x).numpy().reshape(2, 12, 8)  # keras' GroupNormalization (its maths: test_diffusion_residual_block)
    assert layer.norm.groups == 4 and layer.norm.epsilon == 1e-6
    q, k, v = (h @ d.kernel.numpy() + d.bias.numpy() for d in (layer.query, layer.key, layer.value))
    logits = np.einsum("bic,bjc->bij", q, k) / np.sqrt(8)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = weights @ v
    expected = x + (attended @ layer.output_projection.kernel.numpy() + layer.output_projection.bias.numpy()).reshape(x.shape)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert layer.count_params() == 2 * 8 + 4 * (8 * 8 + 8)


def test_attention_is_equivariant_to_pixel_permutations():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 4, 4, 8)).astype(np.float32)
    layer = _random_layer(rng, x, 2)
    order = rng.permutation(16)
    permuted = x.reshape(1, 16, 8)[:, order].reshape(x.shape)
    expected = layer(x).numpy().reshape(1, 16, 8)[:, order].reshape(x.shape)
    np.testing.assert_allclose(layer(permuted).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_keras_round_trip(tmp_path):
    x = keras.Input((4, 4, 8))
    model = keras.Model(x, SpatialSelfAttention(groups=4, name="attention")(x))
    model.get_layer("attention").output_projection.kernel.assign(np.eye(8))
    path = tmp_path / "attention.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = np.random.default_rng(2).normal(size=(1, 4, 4, 8)).astype(np.float32)
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
