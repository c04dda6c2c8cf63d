"""The notes' bilinear_kernel (notes-002-part2.md §17-18, seed 002 L2363-2387) against tf.image.resize."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import bilinear_kernel as module
from tfmodels.layers.bilinear_kernel import BilinearKernel, bilinear_kernel


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted >= 4 and result.failed == 0


def test_seed_kernel_of_four():
    """§18: k=4 gives per-axis weights [0.25, 0.75, 0.75, 0.25], a 2-D filter from 0.0625 to 0.5625."""
    kernel = bilinear_kernel(3, 3, 4)
    tent = np.array([0.25, 0.75, 0.75, 0.25])
    for channel in range(3):
        np.testing.assert_allclose(kernel[:, :, channel, channel], np.outer(tent, tent))
    assert kernel[..., 0, 0].min() == 0.0625 and kernel[..., 0, 0].max() == 0.5625
    off_diagonal = kernel * (1 - np.eye(3))[None, None]
    assert not off_diagonal.any()  # channel c is upsampled from channel c only


def test_odd_kernel_peaks_at_its_centre():
    """Odd k: centre = factor - 1; k=3 (factor 2) is the tent [0.5, 1, 0.5], worked by hand."""
    np.testing.assert_allclose(bilinear_kernel(1, 1, 3)[:, 1, 0, 0], [0.5, 1.0, 0.5])


def test_unequal_channels_are_refused():
    with pytest.raises(ValueError, match="each channel to itself"):
        bilinear_kernel(3, 4, 4)


def _upsample(stride, padding, channels):
    layer = keras.layers.Conv2DTranspose(
        channels, 2 * stride, strides=stride, padding=padding, use_bias=False, kernel_initializer=BilinearKernel()
    )
    layer.build((None, None, None, channels))
    return layer


@pytest.mark.parametrize("stride", [2, 32])
def test_same_padding_is_the_seeds_padding(stride):
    """§17: k - s = 2p, so Keras 'same' = the seed's p = s/2 (1 for k=4, 16 for k=64): crop p per side."""
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 2)).astype("float32")
    same, valid = _upsample(stride, "same", 2), _upsample(stride, "valid", 2)
    full = valid(x).numpy()  # (n - 1) s + k = s n + s rows
    p = stride // 2
    assert full.shape[1:3] == ((3 - 1) * stride + 2 * stride, (4 - 1) * stride + 2 * stride)
    np.testing.assert_allclose(same(x).numpy(), full[:, p:-p, p:-p], atol=1e-6)


@pytest.mark.parametrize("stride", [2, 32])
def test_equals_bilinear_resize_in_the_interior(stride):
    """§18 [verified]: the bilinear transposed conv = tf.image.resize(bilinear) away from an s/2 border."""
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype("float32")
    upsampled = _upsample(stride, "same", 3)(x).numpy()
    resized = tf.image.resize(x, (5 * stride, 6 * stride), method="bilinear").numpy()
    band = stride // 2
    interior = (slice(None), slice(band, -band), slice(band, -band))
    np.testing.assert_allclose(upsampled[interior], resized[interior], atol=1e-5)
    # In the band the transposed conv reads zeros beyond the edge where the resize repeats it.
    assert np.abs(upsampled[:, 0] - resized[:, 0]).max() > 1e-2


def test_serializes_as_a_registered_initializer():
    config = keras.initializers.serialize(BilinearKernel())
    assert config["registered_name"] == "tfmodels>BilinearKernel"
    restored = keras.initializers.deserialize(config)
    assert isinstance(restored, BilinearKernel)
    np.testing.assert_array_equal(restored((4, 4, 2, 2)), bilinear_kernel(2, 2, 4))
    with pytest.raises(ValueError, match="square"):
        restored((4, 2, 1, 1))
