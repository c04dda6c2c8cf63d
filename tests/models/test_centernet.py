"""CenterNet network (notes-002-part2 §15; Objects as Points): stride-4 heads, prior bias, count."""

import keras
import numpy as np
import pytest

from tfmodels.layers import DeformableConv2D
from tfmodels.models.centernet import HEATMAP_PRIOR_BIAS, build_centernet

RESNET18_TRAINABLE = 11_689_512  # published (torchvision) count, 1000 classes
RESNET18_FC = 512 * 1000 + 1000
RESNET18_BN_STATISTICS = 9_600  # moving mean + variance of ResNet-18's 4,800 BN channels


def _tiny(num_classes=3, size=64, deformable=False):
    return build_centernet(num_classes, (size, size, 3), (1, 1, 1, 1), 8, (16, 16, 16), deformable, 16)


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_heads_are_at_output_stride_4():
    outputs = _tiny(num_classes=3, size=96)(np.zeros((2, 96, 96, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "heatmap_logits": (2, 24, 24, 3), "size": (2, 24, 24, 2), "offset": (2, 24, 24, 2),
    }
    assert all(v.dtype == "float32" for v in outputs.values())


def test_heatmap_bias_starts_at_the_paper_prior():
    model = _tiny()
    np.testing.assert_allclose(model.get_layer("heatmap_logits").bias.numpy(), HEATMAP_PRIOR_BIAS)
    assert HEATMAP_PRIOR_BIAS == pytest.approx(-np.log((1 - 0.1) / 0.1), abs=1e-2)  # prior 0.1, rounded as the paper does
    np.testing.assert_allclose(model.get_layer("size").bias.numpy(), 0.0)


def test_paper_resnet18_variant_has_the_closed_form_parameter_count():
    """ResNet-18 (published count less its FC) + 3 x [DCNv1 3x3, BN, 4x4 transposed conv, BN] + 3 heads."""
    num_classes = 80
    model = build_centernet(num_classes)  # the paper's 512x512 ResNet-18 variant
    upsampling = 0
    for c_in, c in ((512, 256), (256, 128), (128, 64)):
        deformable = 9 * c_in * c + c + (9 * c_in + 1) * 18  # kernel + bias, offset conv (2 x 9 taps)
        upsampling += deformable + 2 * c + 16 * c * c + 2 * c  # BN gamma/beta twice, transposed conv (no bias)
    heads = 3 * (9 * 64 * 64 + 64) + (64 + 1) * (num_classes + 2 + 2)
    assert _trainable(model) == RESNET18_TRAINABLE - RESNET18_FC + upsampling + heads == 14_364_746
    assert model.count_params() == _trainable(model) + RESNET18_BN_STATISTICS + 2 * 2 * (256 + 128 + 64)
    assert sum(isinstance(layer, DeformableConv2D) for layer in model.layers) == 3


def test_input_size_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        _tiny(size=100)


def test_keras_round_trip_keeps_outputs(keras_round_trip):
    model = _tiny(deformable=True)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    loaded = keras_round_trip(model)
    for key, value in model(pixels).items():
        np.testing.assert_allclose(loaded(pixels)[key], value, atol=1e-5)
    assert isinstance(loaded, keras.Model)
