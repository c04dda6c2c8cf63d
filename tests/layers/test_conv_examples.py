"""The notes' worked convolution / pooling examples, reproduced with stock Keras layers.

notes-002-part1.md S18 (stride-2 conv, max-pool), notes-002-part2.md (transposed conv), and
notes-003-004.md A6 (group), A7 (depthwise separable), A8 (transposed), A9 (dilated), C2 (GAP).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers.conv_arithmetic import conv_params, depthwise_conv_params, effective_kernel_size, separable_conv_params


def _nhwc(rows):
    """A 2-D list as a (1, H, W, 1) float32 tensor."""
    return tf.constant(rows, tf.float32)[None, :, :, None]


def _hwio(rows):
    """A 2-D kernel as a Keras (kh, kw, in=1, out=1) kernel."""
    return np.asarray(rows, np.float32)[:, :, None, None]


def test_stride_two_convolution_s18():
    """S18 (seed 002 L1368-1384): 5x5 input, kernel 1..9, stride 2, no padding."""
    x = np.array([3, 4, 6, 5, 7, 2, 4, 6, 8, 2, 1, 6, 7, 8, 4, 9, 7, 4, 6, 2, 3, 7, 5, 4, 1]).reshape(5, 5)
    conv = keras.layers.Conv2D(1, 3, strides=2, use_bias=False)
    conv.build((1, 5, 5, 1))
    conv.set_weights([_hwio(np.arange(1, 10).reshape(3, 3))])  # PyTorch (1,1,3,3) row-major = HWIO here
    y = conv(_nhwc(x))
    np.testing.assert_array_equal(y[0, ..., 0], [[211, 262], [251, 169]])


def test_max_pooling_s18():
    """S18 (seed 002 L1395-1411): MaxPool2d(2) on the 4x4 example (stride defaults to the window)."""
    x = [[3, 4, 6, 5], [2, 4, 6, 8], [1, 6, 7, 8], [4, 9, 7, 6]]
    pool = keras.layers.MaxPooling2D(2)
    np.testing.assert_array_equal(pool(_nhwc(x))[0, ..., 0], [[4, 8], [9, 8]])
    assert pool.count_params() == 0


def test_conv_shapes_s18():
    """S18 (L1335-1348): 5 -> 10 channels, k3 on 100x100 gives 98x98; Keras kernel is HWIO."""
    conv = keras.layers.Conv2D(10, 3)
    assert conv(tf.zeros([1, 100, 100, 5])).shape == (1, 98, 98, 10)
    assert tuple(conv.kernel.shape) == (3, 3, 5, 10)  # PyTorch's OIHW weight is (10, 5, 3, 3)
    assert keras.layers.Conv2D(1, 3, padding="same")(tf.zeros([1, 5, 5, 1])).shape == (1, 5, 5, 1)


def _trans_conv(x, kernel):
    """The seed's naive transposed conv (seed 002 L2286-2298): Y[i:i+h, j:j+w] += X[i, j] * K."""
    h, w = kernel.shape
    y = np.zeros((x.shape[0] + h - 1, x.shape[1] + w - 1))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i : i + h, j : j + w] += x[i, j] * kernel
    return y


def test_transposed_convolution_example():
    """notes-002-part2 / notes-003-004 A8: X = K = [[0,1],[2,3]] -> [[0,0,1],[0,4,6],[4,12,9]]."""
    x = k = np.array([[0.0, 1.0], [2.0, 3.0]])
    expected = [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    np.testing.assert_array_equal(_trans_conv(x, k), expected)
    layer = keras.layers.Conv2DTranspose(1, 2, strides=1, padding="valid", use_bias=False)
    layer.build((1, 2, 2, 1))
    layer.set_weights([_hwio(k)])  # Keras transposed kernel layout is (kh, kw, out, in)
    np.testing.assert_array_equal(layer(_nhwc(x))[0, ..., 0], expected)


@pytest.mark.parametrize(("stride", "padding", "size"), [(1, "valid", 4), (2, "same", 4), (2, "valid", 5)])
def test_transposed_convolution_upsamples(stride, padding, size):
    """A8 [verified]: kernel 3 on 2x2 gives 4x4 (s1 valid), 4x4 (s2 same), 5x5 (s2 valid)."""
    layer = keras.layers.Conv2DTranspose(1, 3, strides=stride, padding=padding)
    assert layer(tf.zeros([1, 2, 2, 1])).shape == (1, size, size, 1)


def test_transposed_convolution_is_the_adjoint_of_convolution():
    """A8: conv2d_transpose(ones) = d sum(conv2d(x)) / dx, and the seed's flip-and-pad rewrite."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, 7, 7, 2)), tf.float32)
    kernel = tf.constant(rng.normal(size=(3, 3, 2, 4)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.nn.conv2d(x, kernel, 2, "VALID"))
    transposed = tf.nn.conv2d_transpose(tf.ones([1, 3, 3, 4]), kernel, x.shape, 2, "VALID")
    np.testing.assert_allclose(tape.gradient(total, x), transposed, atol=1e-5)
    # Stride 1, padding 0: pad the input with k - 1, flip the kernel, ordinary conv (L2300-2327).
    small = rng.normal(size=(3, 3))
    k = rng.normal(size=(2, 2))
    flipped = tf.nn.conv2d(tf.pad(_nhwc(small), [[0, 0], [1, 1], [1, 1], [0, 0]]), _hwio(k[::-1, ::-1]), 1, "VALID")
    np.testing.assert_allclose(flipped[0, ..., 0], _trans_conv(small, k), atol=1e-5)


def test_group_convolution_params_and_split_concat():
    """A6: Conv2D(groups=2) = concat of per-group convs on channel slices; 114 parameters."""
    x = tf.random.normal([2, 8, 8, 4], seed=1)
    conv = keras.layers.Conv2D(6, 3, groups=2, padding="same")
    y = conv(x)
    assert tuple(conv.kernel.shape) == (3, 3, 2, 6)
    assert conv.count_params() == conv_params(3, 4, 6, groups=2) == 114
    kernel, bias = conv.get_weights()
    per_group = [
        tf.nn.conv2d(x[..., 2 * g : 2 * g + 2], kernel[..., 3 * g : 3 * g + 3], 1, "SAME") for g in range(2)
    ]
    np.testing.assert_allclose(y, tf.concat(per_group, -1) + bias, atol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        group0 = tf.reduce_sum(conv(x)[..., :3])
    np.testing.assert_array_equal(tape.gradient(group0, x)[..., 2:], 0.0)  # isolation
    with pytest.raises(ValueError):
        keras.layers.Conv2D(5, 3, groups=2)


def test_depthwise_separable_convolution():
    """A7: DepthwiseConv2D + 1x1 Conv2D = SeparableConv2D; 40 and 76 parameters on C = 4, D = 8."""
    x = tf.random.normal([2, 5, 5, 4], seed=2)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)
    pointwise = keras.layers.Conv2D(8, 1)
    separable = keras.layers.SeparableConv2D(8, 3, padding="same")
    two_step = pointwise(depthwise(x))
    separable(x)
    assert tuple(separable.depthwise_kernel.shape) == (3, 3, 4, 1)  # seed 004 L33: [K, K, C, 1]
    assert tuple(separable.pointwise_kernel.shape) == (1, 1, 4, 8)  # seed 004 L35: [1, 1, C, D]
    separable.set_weights([depthwise.kernel.numpy(), *pointwise.get_weights()])
    np.testing.assert_allclose(separable(x), two_step, atol=1e-5)
    assert separable.count_params() == depthwise.count_params() + pointwise.count_params()
    assert separable.count_params() == separable_conv_params(3, 4, 8) == 76
    biased_depthwise = keras.layers.DepthwiseConv2D(3)
    biased_depthwise(x)
    assert biased_depthwise.count_params() == depthwise_conv_params(3, 4) == 40


@pytest.mark.parametrize("rate", [2, 3])
def test_dilated_convolution_is_a_zero_inserted_kernel(rate):
    """A9: Conv2D(dilation_rate=r) = a k_eff x k_eff conv whose kernel has r - 1 zeros between taps."""
    x = tf.random.normal([1, 17, 17, 1], seed=3)
    dilated = keras.layers.Conv2D(1, 3, dilation_rate=rate)
    y = dilated(x)
    k_eff = effective_kernel_size(3, rate)
    assert y.shape == (1, 17 - k_eff + 1, 17 - k_eff + 1, 1)
    assert dilated.count_params() == 10  # unchanged by the rate
    kernel, bias = dilated.get_weights()
    zero_inserted = np.zeros((k_eff, k_eff, 1, 1), np.float32)
    zero_inserted[::rate, ::rate] = kernel
    np.testing.assert_allclose(y, tf.nn.conv2d(x, zero_inserted, 1, "VALID") + bias, atol=1e-5)


def test_global_average_pooling():
    """C2: GlobalAveragePooling2D is the mean over H, W, has no parameters, ignores circular shifts."""
    x = tf.random.normal([3, 6, 5, 4], seed=4)
    gap = keras.layers.GlobalAveragePooling2D()
    np.testing.assert_allclose(gap(x), tf.reduce_mean(x, axis=[1, 2]), atol=1e-6)
    assert gap(x).shape == (3, 4) and gap.count_params() == 0
    np.testing.assert_allclose(gap(tf.roll(x, shift=[2, 3], axis=[1, 2])), gap(x), atol=1e-6)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, gap(keras.layers.Conv2D(4, 1)(inputs)))
    assert model(tf.zeros([1, 32, 32, 3])).shape == model(tf.zeros([1, 48, 48, 3])).shape == (1, 4)
