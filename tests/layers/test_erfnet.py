"""ERFNet blocks (notes-003-004.md A4): the seed's parameter formulas and the reference layout."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import erfnet
from tfmodels.layers.erfnet import (
    BLOCK_KINDS,
    bottleneck_block,
    downsampler_block,
    erfnet_block_params,
    non_bottleneck_1d,
    non_bottleneck_block,
    upsampler_block,
)


def _conv_only_block(kind, w0):
    if kind == "bottleneck":
        inputs = keras.Input((8, 8, 4 * w0))
        return keras.Model(inputs, bottleneck_block(inputs))
    inputs = keras.Input((8, 8, w0))
    if kind == "non_bottleneck":
        return keras.Model(inputs, non_bottleneck_block(inputs))
    return keras.Model(inputs, non_bottleneck_1d(inputs, batch_norm=False))


def test_docstring_examples():
    result = doctest.testmod(erfnet)
    assert result.attempted >= 11 and result.failed == 0


@pytest.mark.parametrize(
    ("w0", "counts"),
    [(16, (4640, 4448, 3136)), (64, (73856, 70016, 49408)), (128, (295168, 279296, 197120))],
)
def test_block_parameter_formulas(w0, counts):
    """A4 [verified]: non-bottleneck / bottleneck / non-bottleneck-1D at w0 = 16, 64, 128."""
    for kind, expected in zip(BLOCK_KINDS, counts):
        assert erfnet_block_params(kind, w0) == expected
        assert _conv_only_block(kind, w0).count_params() == expected, kind


def test_factorised_block_saves_a_third():
    """A4: without biases 18 w0^2 vs 12 w0^2: non-bottleneck-1D has 33 % fewer parameters."""
    w0 = 64
    saving = 1 - (erfnet_block_params("non_bottleneck_1d", w0) - 4 * w0) / (erfnet_block_params("non_bottleneck", w0) - 2 * w0)
    assert saving == pytest.approx(1 / 3)


def test_batch_norm_adds_two_per_channel_trainable():
    inputs = keras.Input((8, 8, 64))
    model = keras.Model(inputs, non_bottleneck_1d(inputs))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 49408 + 2 * (2 * 64)  # gamma, beta of two BNs
    assert model.count_params() == 49408 + 2 * (4 * 64)  # + moving mean and variance


def test_non_bottleneck_1d_layout():
    """Shape kept; dilation only on the second pair, (d, 1) then (1, d); dropout only when asked."""
    inputs = keras.Input((16, 16, 8))
    outputs = non_bottleneck_1d(inputs, dropout_rate=0.3, dilation=4, name="nb")
    model = keras.Model(inputs, outputs)
    assert outputs.shape == inputs.shape
    rates = {layer.name: (layer.kernel_size, layer.dilation_rate) for layer in model.layers if "conv" in layer.name}
    assert rates == {
        "nb_conv3x1_1": ((3, 1), (1, 1)),
        "nb_conv1x3_1": ((1, 3), (1, 1)),
        "nb_conv3x1_2": ((3, 1), (4, 1)),
        "nb_conv1x3_2": ((1, 3), (1, 4)),
    }
    assert isinstance(model.get_layer("nb_dropout"), keras.layers.SpatialDropout2D)
    plain = keras.Model(inputs, non_bottleneck_1d(inputs, name="plain"))
    assert not any(isinstance(layer, keras.layers.SpatialDropout2D) for layer in plain.layers)


def test_dilated_block_receptive_field():
    """The second pair's dilation d widens one block's receptive field from 5 to 3 + 2d per axis."""
    inputs = keras.Input((33, 33, 1))
    block = keras.Model(inputs, non_bottleneck_1d(inputs, dilation=4, batch_norm=False))
    for weight in block.weights:
        weight.assign(tf.fill(weight.shape, 0.5 if len(weight.shape) == 4 else 1.0))  # all paths active
    x = tf.ones([1, 33, 33, 1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        centre = block(x)[0, 16, 16, 0]
    support = np.argwhere(tape.gradient(centre, x)[0, ..., 0].numpy() != 0)
    assert tuple(support.max(axis=0) - support.min(axis=0) + 1) == (3 + 2 * 4, 3 + 2 * 4)


def test_downsampler_matches_pytorch_padding():
    """Conv branch output (i, j) is centred on input (2i, 2j), as PyTorch's padding=1; pool beside it."""
    x = tf.random.normal([1, 8, 6, 3], seed=0)
    inputs = keras.Input((8, 6, 3))
    model = keras.Model(inputs, downsampler_block(inputs, 16, name="down"))
    assert model.output.shape == (None, 4, 3, 16)
    centre_tap = np.zeros((3, 3, 3, 13), np.float32)
    centre_tap[1, 1, 0, 0] = 1.0
    model.get_layer("down_conv").set_weights([centre_tap, np.zeros(13, np.float32)])
    concat = keras.Model(inputs, model.get_layer("down_concat").output)(x)
    np.testing.assert_allclose(concat[0, ..., 0], x[0, ::2, ::2, 0])
    np.testing.assert_allclose(concat[..., 13:], keras.layers.MaxPooling2D(2)(x))
    with pytest.raises(ValueError, match="must exceed"):
        downsampler_block(inputs, 3)


def test_upsampler_matches_pytorch_conv_transpose():
    """k3, stride 2, padding 1, output_padding 1 (notes-002-part2's rewrite: insert s - 1 zeros,
    pad k - p - 1 before and k - p - 1 + output_padding after, flip the kernel, stride-1 conv)."""
    x = tf.random.normal([1, 3, 4, 2], seed=1)
    inputs = keras.Input((3, 4, 2))
    model = keras.Model(inputs, upsampler_block(inputs, 5, name="up"))
    assert model.output.shape == (None, 6, 8, 5)
    transposed = keras.Model(inputs, model.get_layer("up_crop").output)(x)
    kernel, bias = model.get_layer("up_conv").get_weights()  # (kh, kw, out, in)
    zero_inserted = np.zeros([1, 5, 7, 2], np.float32)
    zero_inserted[:, ::2, ::2] = x
    padded = np.pad(zero_inserted, [(0, 0), (1, 2), (1, 2), (0, 0)])
    flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)
    np.testing.assert_allclose(transposed, tf.nn.conv2d(padded, flipped, 1, "VALID") + bias, atol=1e-5)


def _erfnet(num_classes, input_shape=(32, 64, 3)):
    """The full reference ERFNet (A4 [ref]) assembled from the blocks, to check them against it."""
    inputs = keras.Input(input_shape)
    x = downsampler_block(inputs, 16)
    x = downsampler_block(x, 64)
    for _ in range(5):
        x = non_bottleneck_1d(x, 0.03, 1)
    x = downsampler_block(x, 128)
    for _ in range(2):
        for dilation in (2, 4, 8, 16):
            x = non_bottleneck_1d(x, 0.3, dilation)
    x = upsampler_block(x, 64)
    x = non_bottleneck_1d(non_bottleneck_1d(x))
    x = upsampler_block(x, 16)
    x = non_bottleneck_1d(non_bottleneck_1d(x))
    outputs = keras.layers.Conv2DTranspose(num_classes, 2, strides=2)(x)
    return keras.Model(inputs, outputs)


def test_full_erfnet_parameter_count_and_shape():
    """A4 [verified]: 2,064,256 trainable (2,070,848 with BN statistics) for C = 20; output H x W x C."""
    model = _erfnet(20)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 2_064_256
    assert model.count_params() == 2_070_848
    assert model(tf.zeros([2, 32, 64, 3])).shape == (2, 32, 64, 20)
