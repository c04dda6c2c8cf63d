"""U-Net (notes-003-004.md D3; Ronneberger et al. 2015): paper count, skips, shapes, round trip."""

import doctest

import keras
import numpy as np
import pytest

from tfmodels.models import unet
from tfmodels.models.unet import build_unet

TINY = {"base_filters": 4, "depth": 2}


def _raw_pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out  # weights + bias


def _unet_params(num_classes, base, depth):
    """The paper's layout, layer by layer: double 3x3 convs, 2x2 up-convs halving, concat, 1x1."""
    total, c_in = 0, 3
    for level in range(depth + 1):  # contracting levels and the bottom
        c = base * 2**level
        total += _conv(3, c_in, c) + _conv(3, c, c)
        c_in = c
    for level in reversed(range(depth)):
        c = base * 2**level
        total += _conv(2, 2 * c, c)  # up-conv from the level below (2c channels), halving
        total += _conv(3, 2 * c, c) + _conv(3, c, c)  # concat(skip c, up c) -> c -> c
    return total + _conv(1, base, num_classes)


def test_docstring_examples():
    result = doctest.testmod(unet)
    assert result.attempted >= 3 and result.failed == 0


def test_paper_parameter_count():
    """64-128-256-512-1024, 2 classes: 31,031,810 — the ~31.03M usually quoted for U-Net."""
    assert _unet_params(2, 64, 4) == 31_031_810
    model = build_unet(2)
    assert model.count_params() == 31_031_810
    assert model.get_layer("bottom_conv2").filters == 1024


@pytest.mark.parametrize(("num_classes", "base", "depth"), [(3, 4, 2), (11, 16, 3)])
def test_small_parameter_counts(num_classes, base, depth):
    assert build_unet(num_classes, base_filters=base, depth=depth).count_params() == _unet_params(num_classes, base, depth)


def test_batch_norm_variant_count():
    """BN replaces each 3x3 conv's bias by 4 weights per channel (2 trainable)."""
    plain, normed = build_unet(3, **TINY), build_unet(3, batch_norm=True, **TINY)
    convs = [layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)]
    channels = sum(layer.filters for layer in convs if layer.kernel_size == (3, 3))
    assert normed.count_params() == plain.count_params() - channels + 4 * channels


def test_skips_concatenate_the_contracting_maps():
    """D3: each up level concatenates its contracting level's map (c) with the up-conv output (c)."""
    model = build_unet(3, **TINY)
    for level, channels in ((1, 4), (2, 8)):
        skip, upsampled = model.get_layer(f"up{level}_concat").input
        assert skip is model.get_layer(f"down{level}_relu2").output
        assert upsampled is model.get_layer(f"up{level}_upconv").output
        assert skip.shape[-1] == upsampled.shape[-1] == channels
        assert model.get_layer(f"up{level}_concat").output.shape[-1] == 2 * channels
        assert model.get_layer(f"up{level}_upconv").strides == (2, 2)


def test_skip_carries_full_resolution_detail():
    """Cutting the level-1 skip (zeroing its map) changes the logits: the decoder reads it."""
    model = build_unet(3, **TINY)
    skip_layer = model.get_layer("down1_relu2")
    pixels = _raw_pixels((1, 32, 32, 3))
    logits = model(pixels).numpy()
    skip_layer.call = lambda inputs: keras.ops.zeros_like(inputs)  # an instance attribute, this model only
    cut = keras.Model(model.input, model.output)(pixels).numpy()
    assert np.abs(cut - logits).max() > 1e-3


@pytest.mark.parametrize("size", [(32, 32), (48, 80)])
def test_bottom_at_stride_two_to_the_depth_and_logits_at_input_size(size):
    model = build_unet(3, **TINY)
    bottom = keras.Model(model.input, model.get_layer("bottom_relu2").output)
    pixels = _raw_pixels((2, *size, 3))
    assert bottom(pixels).shape == (2, size[0] // 4, size[1] // 4, 16)  # two max-pools, 4 * 2**2 channels
    logits = model(pixels)
    assert logits.shape == (2, *size, 3) and logits.dtype == "float32"
    assert model.layers[-1].dtype_policy.name == "float32"  # float32 logits under mixed precision
    assert model.input.name == "images" and model.layers[1].name == "preprocess"


def test_dropout_only_when_asked():
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in build_unet(3, **TINY).layers)
    assert build_unet(3, dropout=0.5, **TINY).get_layer("bottom_dropout").rate == 0.5
    with pytest.raises(ValueError, match="depth"):
        build_unet(3, depth=0)


@pytest.mark.slow  # ~15 s on a shared 2-core machine, mostly tracing the train step
def test_learns_a_per_pixel_colour_rule(train_on_one_batch):
    """The full-resolution skip lets U-Net label single pixels: class = which of R, G is above 127."""
    keras.utils.set_random_seed(0)
    images = _raw_pixels((2, 32, 32, 3), seed=3)
    labels = (images[..., 0] > 127).astype("int32") + (images[..., 1] > 127)
    initial, final = train_on_one_batch(build_unet(3, **TINY), images, labels, 1e-2, 10)
    assert final < 0.8 * initial


def test_keras_round_trip_gives_the_same_logits(keras_round_trip):
    model = build_unet(3, **TINY)
    x = _raw_pixels((1, 32, 48, 3))
    np.testing.assert_allclose(keras_round_trip(model)(x).numpy(), model(x).numpy(), atol=1e-5)
