"""FCN (notes-002-part2.md §18, seed 002 L2333-2387): shapes, counts, bilinear start, round trip."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import fcn
from tfmodels.models.fcn import build_fcn

TINY = {"backbone": "resnet18", "width": 4}


def _raw_pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _resnet18_backbone_trainable(w):
    """ResNet-18 without GAP/FC, layer by layer: bias-free convs, 2 trainable per BN channel."""
    conv_bn = lambda k, c_in, c_out: k * k * c_in * c_out + 2 * c_out  # noqa: E731
    total = conv_bn(7, 3, w)  # stem
    c_in = w
    for stage in range(4):
        c = w * 2**stage
        for block in range(2):
            total += conv_bn(3, c_in, c) + conv_bn(3, c, c)
            if block == 0 and stage > 0:
                total += conv_bn(1, c_in, c)  # projection shortcut
            c_in = c
    return total


def _fcn_head(channels, num_classes):
    """1x1 conv with bias, then the bias-free 64x64 transposed conv C -> C."""
    return channels * num_classes + num_classes + 64 * 64 * num_classes * num_classes


def test_docstring_examples():
    result = doctest.testmod(fcn)
    assert result.attempted >= 4 and result.failed == 0


def test_resnet18_closed_form_is_the_published_count():
    """The backbone arithmetic + the 512 x 1000 FC = ResNet-18's published 11,689,512 (torchvision)."""
    assert _resnet18_backbone_trainable(64) + 512 * 1000 + 1000 == 11_689_512


@pytest.mark.parametrize(("width", "num_classes"), [(4, 3), (16, 11)])
def test_parameter_count_closed_form(width, num_classes):
    model = build_fcn(num_classes, backbone="resnet18", width=width)
    assert _trainable(model) == _resnet18_backbone_trainable(width) + _fcn_head(8 * width, num_classes)


def test_paper_vgg16_parameter_count():
    """VGG16's conv base (keras.applications' count) + the head: 16,531,797 at 21 VOC classes."""
    vgg_base = keras.applications.VGG16(include_top=False, weights=None).count_params()
    assert vgg_base == 14_714_688
    model = build_fcn(21)
    assert model.count_params() == vgg_base + _fcn_head(512, 21) == 16_531_797
    assert model.get_layer("vgg16").output.shape[-1] == 512


@pytest.mark.parametrize("size", [(64, 64), (96, 160)])
def test_32x_upsampling_restores_the_input_size(size):
    """Seed L2357-2362: the scores are at stride 32 (224 -> 7) and the transposed conv undoes it."""
    model = build_fcn(3, **TINY)
    assert model.input.name == "images"
    assert model.layers[-1].dtype_policy.name == "float32"  # float32 logits under mixed precision
    pixels = _raw_pixels((2, *size, 3))
    scores = keras.Model(model.input, model.get_layer("score").output)(pixels)
    assert scores.shape == (2, size[0] // 32, size[1] // 32, 3)
    logits = model(pixels)
    assert logits.shape == (2, *size, 3) and logits.dtype == "float32"


def test_starts_as_bilinear_resize_of_the_class_scores():
    """The issue's test: at initialisation the logits are tf.image.resize(bilinear) of the 1x1 scores,
    exactly away from the 16-pixel (s/2) border band."""
    model = build_fcn(3, **TINY)
    scores_model = keras.Model(model.input, model.get_layer("score").output)
    pixels = _raw_pixels((2, 96, 128, 3))
    scores = scores_model(pixels).numpy()
    assert scores.shape == (2, 3, 4, 3)
    resized = tf.image.resize(scores, (96, 128), method="bilinear").numpy()
    logits = model(pixels).numpy()
    np.testing.assert_allclose(logits[:, 16:-16, 16:-16], resized[:, 16:-16, 16:-16], rtol=1e-4, atol=1e-4)
    assert np.abs(scores).max() > 0.1  # not a trivially zero map


def test_refuses_unavailable_weights_and_bad_options():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_fcn(3, backbone="resnet18", weights="imagenet")
    with pytest.raises(ValueError, match="dividing 64"):
        build_fcn(3, backbone="vgg16", width=48)
    with pytest.raises(ValueError, match="backbone must be one of"):
        build_fcn(3, backbone="alexnet")


@pytest.mark.slow  # ~20 s of CPU: tracing ResNet-18's backward pass
def test_learns_a_stride_32_label_map(train_on_one_batch):
    """FCN's logits are a bilinear upsampling of a stride-32 map: it learns 32x32 blocks labelled
    by their brightness. Batch 2: training our ResNet-18 at width <= 8 on a single 64x64 image
    crashes TF 2.21's oneDNN CPU kernels (heap corruption); two images do not."""
    keras.utils.set_random_seed(0)
    levels = np.array([[[20.0, 240.0], [130.0, 240.0]], [[130.0, 20.0], [20.0, 130.0]]], "float32")
    images = np.repeat(np.repeat(levels, 32, axis=1), 32, axis=2)[..., None].repeat(3, axis=-1)
    labels = (images[..., 0] // 100).astype("int32")
    initial, final = train_on_one_batch(build_fcn(3, **TINY), images, labels, 1e-2, 8, True)
    assert final < 0.7 * initial


def test_keras_round_trip_gives_the_same_logits(keras_round_trip):
    model = build_fcn(3, **TINY)
    x = _raw_pixels((1, 64, 96, 3))
    restored = keras_round_trip(model)
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-5)
    assert isinstance(restored.get_layer("upsample").kernel_initializer, fcn.BilinearKernel)
