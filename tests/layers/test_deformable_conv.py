"""DeformableConv2D (notes-003-004.md A10): reduces to Conv2D, shifts, dilates, learns offsets."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import DeformableConv2D, deformable_conv


def _pair_with_conv(x, filters, kernel_size, padding="same", **conv_kwargs):
    """A DeformableConv2D and a Conv2D with the same (random) kernel and bias, both built on x."""
    deformable = DeformableConv2D(filters, kernel_size, padding=padding, bias_initializer="random_normal", **conv_kwargs)
    deformable(x)
    conv = keras.layers.Conv2D(filters, kernel_size, padding=padding, **conv_kwargs)
    conv(x)
    conv.set_weights([deformable.kernel.numpy(), deformable.bias.numpy()])
    return deformable, conv


def _set_constant_offsets(layer, offsets_per_tap):
    """Makes the offset predictor output the same (dy, dx) per tap everywhere: zero kernel, bias."""
    kernel, _ = layer.offset_conv.get_weights()
    layer.offset_conv.set_weights([np.zeros_like(kernel), np.asarray(offsets_per_tap, np.float32).reshape(-1)])


@pytest.mark.parametrize(
    ("kernel_size", "strides", "padding", "size"),
    [(3, 1, "same", 8), (3, 2, "same", 8), (3, 2, "same", 7), ((3, 2), 1, "valid", 7), (5, 3, "same", 9)],
)
def test_zero_offsets_equal_conv2d(kernel_size, strides, padding, size):
    x = tf.random.normal([2, size, size + 1, 4], seed=0)
    deformable, conv = _pair_with_conv(x, 6, kernel_size, strides=strides, padding=padding)
    y = deformable(x)
    assert y.shape == conv(x).shape == deformable.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, conv(x), atol=1e-5)


def test_one_pixel_offset_equals_conv_of_shifted_image():
    x = tf.random.normal([2, 8, 9, 3], seed=1)
    deformable, conv = _pair_with_conv(x, 5, 3)
    _set_constant_offsets(deformable, [[1.0, 0.0]] * 9)  # every tap reads one row lower
    shifted = tf.concat([x[:, 1:], tf.zeros_like(x[:, :1])], axis=1)  # shifted[i] = x[i + 1]
    # Row 0 differs: there the conv of the shifted image reads its zero padding, not x[0].
    np.testing.assert_allclose(deformable(x)[:, 1:], conv(shifted)[:, 1:], atol=1e-5)
    _set_constant_offsets(deformable, [[0.0, -1.0]] * 9)  # one column to the left
    shifted = tf.concat([tf.zeros_like(x[:, :, :1]), x[:, :, :-1]], axis=2)  # shifted[j] = x[j - 1]
    np.testing.assert_allclose(deformable(x)[:, :, :-1], conv(shifted)[:, :, :-1], atol=1e-5)


@pytest.mark.parametrize("rate", [2, 3])
def test_offsets_on_the_dilated_grid_equal_a_dilated_conv(rate):
    """The seed's claim (L105): dilated convolution is a special case of deformable convolution."""
    x = tf.random.normal([1, 11, 11, 2], seed=2)
    deformable, _ = _pair_with_conv(x, 3, 3)
    dilated = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=rate)
    dilated(x)
    dilated.set_weights([deformable.kernel.numpy(), deformable.bias.numpy()])
    taps = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij"), -1).reshape(9, 2)
    _set_constant_offsets(deformable, taps * (rate - 1))  # tap n moves from n to rate * n
    np.testing.assert_allclose(deformable(x), dilated(x), atol=1e-5)


def test_fractional_offsets_interpolate_bilinearly_with_zeros_outside():
    x = tf.random.normal([1, 5, 6, 2], seed=3)
    layer = DeformableConv2D(2, 1, use_bias=False)
    layer(x)
    layer.kernel.assign(np.eye(2, dtype=np.float32)[None, None])  # output = the sampled input
    _set_constant_offsets(layer, [[0.5, 0.25]])
    below = tf.concat([x[:, 1:], tf.zeros_like(x[:, :1])], axis=1)
    right = tf.concat([x[:, :, 1:], tf.zeros_like(x[:, :, :1])], axis=2)
    below_right = tf.concat([below[:, :, 1:], tf.zeros_like(below[:, :, :1])], axis=2)
    expected = 0.5 * 0.75 * x + 0.5 * 0.75 * below + 0.5 * 0.25 * right + 0.5 * 0.25 * below_right
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


def test_gradients_reach_the_offset_predictor():
    x = tf.random.normal([2, 8, 8, 4], seed=4)
    layer = DeformableConv2D(8, 3)
    layer(x)
    assert layer.offset_conv.filters == 18 and np.all(layer.offset_conv.kernel.numpy() == 0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == 4  # kernel, bias, offset kernel, offset bias
    for variable, grad in zip(layer.trainable_weights, grads):
        assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0, variable.path


def test_dynamic_spatial_size_under_tf_function():
    layer = DeformableConv2D(4, 3, strides=2)
    traced = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 3])])
    for size in (7, 12):
        assert traced(tf.zeros([2, size, size, 3])).shape == (2, (size + 1) // 2, (size + 1) // 2, 4)


def test_keras_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 4), name="image")
    features = DeformableConv2D(8, 3, strides=2, kernel_regularizer="l2", name="dcn")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(features))
    offset_kernel = model.get_layer("dcn").offset_conv.kernel
    offset_kernel.assign(tf.random.normal(offset_kernel.shape, stddev=0.3, seed=5))
    x = tf.random.normal([2, 8, 8, 4], seed=6)
    model.save(tmp_path / "dcn.keras")
    restored = keras.saving.load_model(tmp_path / "dcn.keras")
    np.testing.assert_array_equal(restored(x), model(x))
    layer = restored.get_layer("dcn")
    assert isinstance(layer, DeformableConv2D)
    assert layer.get_config()["strides"] == (2, 2) and layer.count_params() == 962


def test_invalid_arguments():
    with pytest.raises(ValueError, match="padding"):
        DeformableConv2D(4, 3, padding="causal")
    with pytest.raises(ValueError, match="kernel_size"):
        DeformableConv2D(4, (3, 3, 3))
    with pytest.raises(ValueError, match="dilation_rate"):
        DeformableConv2D(4, 3, strides=2, dilation_rate=2)


def test_saved_model_export_uses_core_ops(tmp_path):
    """A10 (f): the layer exports to a SavedModel built from core TensorFlow ops only."""
    from tensorflow.python.framework import op_def_registry

    from tfmodels.export.stock_tf_check import graph_ops

    inputs = keras.Input((None, None, 3), name="image")
    model = keras.Model(inputs, DeformableConv2D(4, 3, name="dcn")(inputs))
    model.export(str(tmp_path / "1"), format="tf_saved_model", verbose=False)
    ops = graph_ops(tmp_path / "1")
    assert {"GatherV2", "Conv2D"} <= ops
    assert [op for op in ops if op_def_registry.get(op) is None] == []
    x = tf.random.normal([1, 6, 7, 3], seed=7)
    served = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"](image=x)
    np.testing.assert_allclose(next(iter(served.values())), model(x), atol=1e-6)


def test_docstring_example():
    result = doctest.testmod(deformable_conv)
    assert result.attempted == 4 and result.failed == 0


def test_mixed_precision():
    layer = DeformableConv2D(4, 3, dtype="mixed_float16")
    y = layer(tf.random.normal([1, 6, 6, 3], seed=8))
    assert y.dtype == tf.float16 and layer.kernel.dtype == "float32"
