"""patchify / unpatchify (notes-001.md §24, §26): round trip, and the order of tf.image and of a Conv2D patch projection."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers.patchify import patchify, unpatchify

# tfmodels.layers re-exports the function under the module's name, so fetch the module itself.
patchify_module = importlib.import_module("tfmodels.layers.patchify")


def test_docstring_examples():
    result = doctest.testmod(patchify_module)
    assert result.attempted >= 3 and result.failed == 0


def test_shape_of_vit_b16_at_224():
    """§24: 224² RGB at patch 16 -> 196 patches of 16·16·3 = 768 values."""
    assert tuple(patchify(np.zeros((1, 224, 224, 3), "float32"), 16).shape) == (1, 196, 768)


@pytest.mark.parametrize("size, patch, channels", [((32, 32), 4, 3), ((12, 8), 2, 1), ((6, 9), 3, 2)])
def test_round_trip_is_the_identity(size, patch, channels):
    images = np.random.default_rng(0).uniform(0, 255, (2, *size, channels)).astype("float32")
    patches = patchify(images, patch)
    assert tuple(patches.shape) == (2, (size[0] // patch) * (size[1] // patch), patch * patch * channels)
    np.testing.assert_array_equal(unpatchify(patches, patch, *size, channels).numpy(), images)


def test_equals_tf_image_extract_patches():
    """tf.image.extract_patches (nobody here wrote it) gives the same rows, grid flattened row-major."""
    images = np.random.default_rng(1).normal(size=(2, 12, 8, 3)).astype("float32")
    reference = tf.image.extract_patches(images, [1, 4, 4, 1], [1, 4, 4, 1], [1, 1, 1, 1], "VALID")
    np.testing.assert_array_equal(patchify(images, 4).numpy(), tf.reshape(reference, (2, 6, 48)).numpy())


def test_agrees_with_a_conv2d_patch_projection():
    """Row n of patchify times the flattened kernel is the Conv2D (kernel = stride = p) output at grid cell n."""
    rng = np.random.default_rng(2)
    images = rng.normal(size=(2, 8, 12, 3)).astype("float32")
    conv = keras.layers.Conv2D(5, 4, strides=4, bias_initializer="random_normal")
    grid = conv(images).numpy()  # [2, 2, 3, 5]
    kernel, bias = (w.numpy() for w in conv.weights)
    projected = patchify(images, 4).numpy() @ kernel.reshape(-1, 5) + bias
    np.testing.assert_allclose(projected, grid.reshape(2, 6, 5), rtol=1e-5, atol=1e-5)


def test_rejects_sizes_that_are_not_multiples_of_the_patch():
    with pytest.raises(ValueError, match="multiple of the patch size"):
        patchify(np.zeros((1, 10, 8, 3), "float32"), 4)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        unpatchify(np.zeros((1, 4, 48), "float32"), 4, 10, 8, 3)
