"""Convolution arithmetic formulas against the notes' numbers and against Keras / tf.nn."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import conv_arithmetic
from tfmodels.layers.conv_arithmetic import (
    conv_output_size,
    conv_params,
    depthwise_conv_params,
    effective_kernel_size,
    receptive_field,
    separable_conv_params,
    transposed_conv_output_size,
)


def test_docstring_examples():
    result = doctest.testmod(conv_arithmetic)
    assert result.attempted > 15 and result.failed == 0


def test_notes_output_sizes():
    assert conv_output_size(32, 5) == 28  # notes-002-part1 S18: 32x32, k5, s1, p0
    assert conv_output_size(7, 3, dilation=2) == 3  # notes-002-part2 §55: effective kernel 5
    assert conv_output_size(32, 3, stride=2, padding=1, dilation=2) == 15  # §55's nn.Conv2d
    assert conv_output_size(100, 3) == 98  # S18: (1,5,100,100) -> (1,10,98,98)
    assert conv_output_size(5, 3, padding=1) == 5  # S18 padding example keeps 5x5
    assert [effective_kernel_size(3, r) for r in (2, 3, 4)] == [5, 7, 9]  # A9


def test_notes_examples_match_tensorflow():
    # §55: 3 -> 16 channels, k3, stride 2, padding 1, dilation 2 on 32x32 (both strides and
    # dilation > 1, which keras.layers.Conv2D refuses, so use tf.nn.conv2d on the padded input).
    x = tf.zeros([1, 32, 32, 3])
    y = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), tf.zeros([3, 3, 3, 16]), 2, "VALID", dilations=2)
    assert y.shape == (1, 15, 15, 16)
    y = keras.layers.Conv2D(1, 3, dilation_rate=2)(tf.zeros([1, 7, 7, 1]))
    assert y.shape == (1, 3, 3, 1)


@pytest.mark.parametrize("size", [7, 16, 33])
@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_output_size_matches_tf_nn(size, kernel, stride, dilation, padding):
    if effective_kernel_size(kernel, dilation) > size + 2 * padding:
        with pytest.raises(ValueError):
            conv_output_size(size, kernel, stride, padding, dilation)
        return
    x = tf.zeros([1, size + 2 * padding, size + 2 * padding, 1])
    y = tf.nn.conv2d(x, tf.zeros([kernel, kernel, 1, 1]), stride, "VALID", dilations=dilation)
    assert y.shape[1] == conv_output_size(size, kernel, stride, padding, dilation)


@pytest.mark.parametrize("size", [5, 8])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_matches_keras(size, stride):
    y = keras.layers.Conv2D(1, 3, strides=stride, padding="same")(tf.zeros([1, size, size, 1]))
    assert y.shape[1] == conv_output_size(size, 3, stride, "same") == conv_output_size(size, 5, stride, "same")
    y = keras.layers.MaxPooling2D(2, strides=stride)(tf.zeros([1, size, size, 1]))
    assert y.shape[1] == conv_output_size(size, 2, stride)


@pytest.mark.parametrize("size", [2, 3, 6])
@pytest.mark.parametrize("kernel", [2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("output_padding", [0, 1])
def test_transposed_output_size_matches_keras(size, kernel, stride, output_padding):
    if output_padding >= stride:
        return  # Keras (like PyTorch) requires output_padding < stride.
    layer = keras.layers.Conv2DTranspose(1, kernel, strides=stride, output_padding=output_padding)
    y = layer(tf.zeros([1, size, size, 1]))
    assert y.shape[1] == transposed_conv_output_size(size, kernel, stride, output_padding=output_padding)
    y = keras.layers.Conv2DTranspose(1, kernel, strides=stride, padding="same")(tf.zeros([1, size, size, 1]))
    assert y.shape[1] == transposed_conv_output_size(size, kernel, stride, "same") == size * stride


def test_transposed_output_size_inverts_conv_output_size():
    # d2l (notes-002-part2): Conv2d(k5, p2, s3) maps 16 -> 6 and ConvTranspose2d maps 6 -> 16.
    assert conv_output_size(16, 5, 3, 2) == 6
    assert transposed_conv_output_size(6, 5, 3, 2) == 16
    # A8: 4 -> 2 -> 4 with k3. The forward formula, which the seed (002 L3930) also applies to
    # transposed convs, never enlarges an unpadded input.
    assert conv_output_size(4, 3) == 2 and transposed_conv_output_size(2, 3) == 4


def test_receptive_field_of_known_networks():
    assert receptive_field([3, 3]) == receptive_field([5]) == 5  # notes-003-004 A2 / B2
    assert receptive_field([3, 3, 3]) == receptive_field([7]) == 7
    assert receptive_field([3] * 10) == 21  # n stacked 3x3 convs: 2n + 1
    assert receptive_field([3, 3, (2, 2), 3, 3, (2, 2)]) == 16  # A2 [verified]
    assert receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15  # A9: rates 1, 2, 4: 3 -> 7 -> 15
    vgg16_features = [3, 3, (2, 2), 3, 3, (2, 2), 3, 3, 3, (2, 2), 3, 3, 3, (2, 2), 3, 3, 3]
    assert receptive_field(vgg16_features) == 196  # conv5_3
    assert receptive_field([*vgg16_features, (2, 2)]) == 212  # pool5
    alexnet = [(11, 4), (3, 2), 5, (3, 2), 3, 3, 3, (3, 2)]
    assert receptive_field(alexnet) == 195  # pool5


def _all_ones_layer(spec):
    """A Keras layer for one receptive_field entry: (2, 2) is a 2x2 pool, else a bias-free conv."""
    if spec == (2, 2):
        return keras.layers.AveragePooling2D(2)
    kernel, _, dilation = (spec, 1, 1) if isinstance(spec, int) else spec
    return keras.layers.Conv2D(1, kernel, dilation_rate=dilation, use_bias=False, kernel_initializer="ones")


@pytest.mark.parametrize("layers", [[3, 3, 3], [(3, 1, 1), (3, 1, 2), (3, 1, 4)], [3, (2, 2), 3]])
def test_receptive_field_equals_gradient_support(layers):
    """A2 [verified]: three 3x3 all-ones convs on 33x33; the centre output's input gradient is 7x7."""
    model = keras.Sequential([keras.Input((33, 33, 1)), *map(_all_ones_layer, layers)])
    x = tf.random.uniform([1, 33, 33, 1], 0.5, 1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        centre = y[0, y.shape[1] // 2, y.shape[2] // 2, 0]
    support = np.argwhere(tape.gradient(centre, x)[0, ..., 0].numpy() != 0)
    extent = support.max(axis=0) - support.min(axis=0) + 1
    assert tuple(extent) == (receptive_field(layers),) * 2


@pytest.mark.parametrize("seed", range(12))
def test_conv_params_match_keras(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2, 4]))
    c_in, c_out = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 5))
    kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    dilation = int(rng.integers(1, 4))
    use_bias = bool(rng.integers(2))
    x = keras.Input((16, 16, c_in))
    conv = keras.layers.Conv2D(c_out, kernel, groups=groups, dilation_rate=dilation, use_bias=use_bias)
    conv(x)
    assert conv.count_params() == conv_params(kernel, c_in, c_out, groups, use_bias)
    transposed = keras.layers.Conv2DTranspose(c_out, kernel, use_bias=use_bias)
    transposed(x)
    assert transposed.count_params() == conv_params(kernel, c_in, c_out, use_bias=use_bias)
    depthwise = keras.layers.DepthwiseConv2D(kernel, depth_multiplier=groups, use_bias=use_bias)
    depthwise(x)
    assert depthwise.count_params() == depthwise_conv_params(kernel, c_in, groups, use_bias)
    separable = keras.layers.SeparableConv2D(c_out, kernel, use_bias=use_bias)
    separable(x)
    assert separable.count_params() == separable_conv_params(kernel, c_in, c_out, use_bias)


def test_notes_parameter_counts():
    assert conv_params(3, 3, 4) == 112  # A1: 8x8x3 -> Conv2D(4, 3, 'same')
    assert conv_params(3, 4, 6, groups=2) == 114  # A6 [verified], kernel (3, 3, 2, 6)
    assert conv_params(3, 4, 4, groups=4) == depthwise_conv_params(3, 4) == 40  # A6: g = C is depthwise; A7
    assert separable_conv_params(3, 4, 8) == 76  # A7 [verified]: 3*3*4 + 4*8 + 8
    assert conv_params(3, 1, 1) == 10  # A9: 3x3x1 -> 1, any dilation
    assert conv_params(3, 5, 10, use_bias=False) == 450  # S18: weight (10, 5, 3, 3)
    ratio = separable_conv_params(3, 32, 256, False) / conv_params(3, 32, 256, use_bias=False)
    assert ratio == pytest.approx(1 / 256 + 1 / 9) and round(ratio, 3) == 0.115  # A7
    assert conv_params(3, 16, 32) == 4640 and conv_params(3, 3, 16) == 448  # A13 tiny CNN


def test_conv_params_independent_of_input_size():
    """A1: a conv's count does not depend on H, W; the equivalent Dense's does."""
    counts = set()
    for size in (8, 16, 32):
        layer = keras.layers.Conv2D(4, 3, padding="same")
        layer(keras.Input((size, size, 3)))
        counts.add(layer.count_params())
    assert counts == {conv_params(3, 3, 4)}
    dense = keras.layers.Dense(8 * 8 * 4)
    dense(keras.Input((8 * 8 * 3,)))
    assert dense.count_params() == (8 * 8 * 3 + 1) * (8 * 8 * 4) > 100 * conv_params(3, 3, 4)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="groups"):
        conv_params(3, 4, 6, groups=4)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(8, 3, padding="full")
    with pytest.raises(ValueError, match=">= 1"):
        effective_kernel_size(3, 0)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(8, 3, stride=0)
