"""RoI pooling (notes-002-part2.md §8) and RoI Align (§11): worked examples, NumPy references."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import RoIAlign, RoIPooling
from tfmodels.layers.roi_align import roi_align
from tfmodels.layers.roi_pooling import roi_pool


def _numpy_roi_pool(features, boxes, box_indices, output_size, spatial_scale):
    """torchvision's roi_pool CPU kernel, loop for loop (channels last), in float32 like it."""
    (pooled_h, pooled_w), scale = output_size, np.float32(spatial_scale)
    _, height, width, channels = features.shape
    out = np.zeros((len(boxes), pooled_h, pooled_w, channels), np.float32)
    c_round = lambda v: int(np.sign(v) * np.floor(abs(v) + 0.5))  # noqa: E731
    for r, (box, image) in enumerate(zip(boxes.astype(np.float32), box_indices)):
        x1, y1, x2, y2 = (c_round(v * scale) for v in box)
        bin_h = np.float32(max(y2 - y1 + 1, 1)) / np.float32(pooled_h)
        bin_w = np.float32(max(x2 - x1 + 1, 1)) / np.float32(pooled_w)
        for i in range(pooled_h):
            h0 = min(max(int(np.floor(np.float32(i) * bin_h)) + y1, 0), height)
            h1 = min(max(int(np.ceil(np.float32(i + 1) * bin_h)) + y1, 0), height)
            for j in range(pooled_w):
                w0 = min(max(int(np.floor(np.float32(j) * bin_w)) + x1, 0), width)
                w1 = min(max(int(np.ceil(np.float32(j + 1) * bin_w)) + x1, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, i, j] = features[image, h0:h1, w0:w1].max(axis=(0, 1))
    return out


def _bilinear(feature_map, y, x):
    """torchvision's bilinear_interpolate: 0 beyond one cell outside, the edge within one."""
    height, width = feature_map.shape[:2]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(feature_map.shape[-1])
    y, x = min(max(y, 0.0), height - 1.0), min(max(x, 0.0), width - 1.0)
    y0, x0 = int(y), int(x)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * feature_map[y0, x0]
        + (1 - ly) * lx * feature_map[y0, x1]
        + ly * (1 - lx) * feature_map[y1, x0]
        + ly * lx * feature_map[y1, x1]
    )


def _numpy_roi_align(features, boxes, box_indices, output_size, spatial_scale, sampling_ratio, aligned=True):
    """torchvision's roi_align: every bin the mean of sampling_ratio^2 bilinear samples."""
    (pooled_h, pooled_w), offset = output_size, 0.5 if aligned else 0.0
    out = np.zeros((len(boxes), pooled_h, pooled_w, features.shape[-1]))
    for r, (box, image) in enumerate(zip(boxes, box_indices)):
        x1, y1, x2, y2 = np.asarray(box, np.float64) * spatial_scale - offset
        bin_h, bin_w = (y2 - y1) / pooled_h, (x2 - x1) / pooled_w
        if not aligned:
            bin_h, bin_w = max(y2 - y1, 1.0) / pooled_h, max(x2 - x1, 1.0) / pooled_w
        for i in range(pooled_h):
            for j in range(pooled_w):
                points = [
                    (y1 + (i + (a + 0.5) / sampling_ratio) * bin_h, x1 + (j + (b + 0.5) / sampling_ratio) * bin_w)
                    for a in range(sampling_ratio)
                    for b in range(sampling_ratio)
                ]
                out[r, i, j] = np.mean([_bilinear(features[image], y, x) for y, x in points], axis=0)
    return out


def _ramp(height, width, axis):
    """f = the continuous coordinate (x for axis 1, y for axis 0) of each cell's centre."""
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    return tf.constant((cols if axis == 1 else rows)[None, :, :, None], tf.float32)


# --- RoI pooling (§8) ---------------------------------------------------------------------------


def test_roi_pool_reproduces_d2l_example():
    """d2l: torchvision.ops.roi_pool(arange(16) 4x4, rois, (2, 2), spatial_scale=0.1)."""
    x = tf.reshape(tf.range(16.0), [1, 4, 4, 1])
    boxes = tf.constant([[0.0, 0.0, 20.0, 20.0], [0.0, 10.0, 30.0, 30.0]])  # d2l's rois minus the image index
    y = roi_pool(x, boxes, tf.constant([0, 0]), (2, 2), spatial_scale=0.1)
    assert y.shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(y[..., 0], [[[5, 6], [9, 10]], [[9, 11], [13, 15]]])


def test_roi_pool_splits_three_by_three_as_torchvision_does():
    """Seed L2116-2118: a 3x3 region pooled to 2x2 cannot split evenly, so the edges are rounded.

    The seed (and d2l's figure) draws disjoint blocks 2x2, 1x2, 2x1, 1x1. torchvision's / Caffe's
    floor/ceil rule, which this layer follows (and which gives d2l's printed values), rounds both
    edges outwards instead: a 3-cell side gives bins [0, 2) and [1, 3), two cells each, sharing the
    middle one. A maximum placed in each corner shows each bin's own corner; a larger one in the
    middle cell then wins all four bins (with disjoint blocks it would win only the 2x2 one).
    """
    region = np.zeros((5, 5), np.float32)  # the 3x3 region sits at rows/cols 1..3
    region[1, 1], region[1, 3], region[3, 1], region[3, 3] = 7.0, 8.0, 9.0, 6.0
    box = tf.constant([[1.0, 1.0, 3.0, 3.0]])
    y = roi_pool(tf.constant(region[None, :, :, None]), box, tf.constant([0]), 2)
    np.testing.assert_array_equal(y[0, ..., 0], [[7, 8], [9, 6]])
    region[2, 2] = 10.0
    y = roi_pool(tf.constant(region[None, :, :, None]), box, tf.constant([0]), 2)
    np.testing.assert_array_equal(y[0, ..., 0], [[10, 10], [10, 10]])


def test_roi_pool_matches_torchvision_loops_on_random_boxes():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 9, 11, 4)).astype(np.float32)
    corners = rng.uniform(-30.0, 120.0, size=(40, 2, 2))  # some partly or wholly off the map
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)
    boxes[:4] = [[20, 20, 20, 20], [25, 25, 35, 45], [-15, -5, 5, 5], [200, 10, 250, 30]]  # point, .5, empty
    box_indices = rng.integers(0, 3, size=40)
    for output_size in [(2, 2), (3, 4), (7, 7)]:
        expected = _numpy_roi_pool(features, boxes, box_indices, output_size, 0.1)
        np.testing.assert_array_equal(roi_pool(features, boxes, box_indices, output_size, 0.1), expected)


def test_roi_pool_bins_are_the_same_in_a_graph_as_eagerly():
    # A 3-cell box pooled to 7 bins: the last bin is cell 2 alone (ceil(7 * 3 / 7) = 3). In float32
    # the graph optimiser once folded "/ 7" into "* (1 / 7)", and ceil(7 * 3 * fl(1/7)) = 4 reached
    # the row below the box, which holds the only non-zero values.
    features = np.zeros([1, 8, 8, 1], np.float32)
    features[0, 4, :, 0] = 10.0
    args = (tf.constant(features), tf.constant([[0.0, 1.0, 2.0, 3.0]]), tf.constant([0]), (7, 7), 1.0)
    assert float(tf.reduce_max(roi_pool(*args))) == 0.0
    assert float(tf.reduce_max(tf.function(roi_pool)(*args))) == 0.0
    rng = np.random.default_rng(3)
    features = tf.constant(rng.normal(size=[2, 16, 16, 3]).astype(np.float32))
    corners = np.sort(rng.uniform(0, 64, size=[200, 2, 2]), axis=1).reshape(200, 4)[:, [0, 2, 1, 3]].astype(np.float32)
    random = (features, tf.constant(corners), tf.constant(rng.integers(0, 2, 200)), (7, 7), 0.25)
    np.testing.assert_array_equal(roi_pool(*random).numpy(), tf.function(roi_pool)(*random).numpy())


def test_roi_pool_output_shape_is_independent_of_box_size():
    x = tf.random.normal([2, 16, 16, 3], seed=0)
    for box in ([0.0, 0.0, 1.0, 1.0], [2.0, 3.0, 9.0, 5.0], [0.0, 0.0, 15.0, 15.0]):
        assert roi_pool(x, tf.constant([box]), tf.constant([1]), (3, 5)).shape == (1, 3, 5, 3)


def test_roi_pool_reads_the_indexed_image():
    x = tf.stack([tf.fill([6, 6, 2], float(b)) for b in range(3)])
    boxes = tf.tile(tf.constant([[1.0, 1.0, 4.0, 4.0]]), [4, 1])
    y = roi_pool(x, boxes, tf.constant([2, 0, 1, 2]), 2)
    np.testing.assert_array_equal(y[:, 0, 0, 0], [2, 0, 1, 2])


def test_roi_pool_gradient_reaches_the_bin_maxima():
    x = tf.Variable(tf.reshape(tf.range(16.0), [1, 4, 4, 1]))
    boxes = tf.constant([[0.0, 0.0, 20.0, 20.0], [0.0, 10.0, 30.0, 30.0]])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(roi_pool(x, boxes, tf.constant([0, 0]), 2, spatial_scale=0.1))
    grad = tape.gradient(y, x)[0, ..., 0].numpy()
    expected = np.zeros((4, 4))
    for value in [5, 6, 9, 10, 9, 11, 13, 15]:  # the two outputs of the d2l example
        expected.flat[value] += 1
    np.testing.assert_array_equal(grad, expected)


# --- RoI Align (§11) ----------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1])
def test_roi_align_on_a_ramp_returns_bin_centres_where_roi_pool_does_not(axis):
    """§11 test: for f(x, y) = x (or y) RoI Align returns the bin centres; RoI pooling's rounding misses them."""
    features = _ramp(12, 14, axis)
    boxes = np.array([[1.3, 2.7, 6.1, 9.4], [0.6, 0.9, 12.8, 11.2], [4.25, 3.5, 5.0, 4.0]], np.float32)
    box_indices = tf.zeros([3], tf.int32)
    for output_size, sampling_ratio in [((2, 2), 2), ((3, 5), 1), ((4, 3), 3)]:
        aligned = roi_align(features, boxes, box_indices, output_size, sampling_ratio=sampling_ratio)
        start, end = boxes[:, [1 - axis]], boxes[:, [3 - axis]]
        bins = output_size[axis]
        centres = start + (np.arange(bins) + 0.5) * (end - start) / bins  # [R, bins]
        expected = centres[:, :, None] if axis == 0 else centres[:, None, :]
        np.testing.assert_allclose(aligned[..., 0], np.broadcast_to(expected, aligned.shape[:3]), atol=1e-5)
        pooled = roi_pool(features, boxes, box_indices, output_size)
        assert np.abs(pooled[..., 0] - expected).max() > 0.1


@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
def test_roi_align_matches_numpy_bilinear_reference(sampling_ratio):
    rng = np.random.default_rng(sampling_ratio)
    features = rng.normal(size=(3, 10, 13, 5)).astype(np.float32)
    top_left = rng.uniform([0.0, 0.0], [40.0, 30.0], size=(20, 2))  # image 52 x 40 px, stride 4
    boxes = np.concatenate([top_left, top_left + rng.uniform(0.5, 11.0, size=(20, 2))], axis=1)
    box_indices = rng.integers(0, 3, size=20)
    for output_size in [(2, 2), (3, 4)]:
        result = roi_align(features, boxes, box_indices, output_size, 0.25, sampling_ratio)
        expected = _numpy_roi_align(features, boxes, box_indices, output_size, 0.25, sampling_ratio)
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_roi_align_boundary_and_unaligned_follow_torchvision():
    """Samples within one cell of the edge read the edge cell, farther ones read 0; aligned=False."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(2, 6, 7, 3)).astype(np.float32)
    boxes = np.array(  # crosses top-left, bottom-right, left of the map, smaller than a cell, flipped
        [[-3.3, -2.2, 4.1, 3.7], [4.2, 3.1, 9.6, 8.3], [-9.0, 1.0, -2.5, 2.0], [0.2, 0.3, 0.9, 0.4], [5.9, 1, 2.2, 4]]
    )
    for aligned in (True, False):
        result = roi_align(features, boxes, [0, 1, 0, 1, 0], (3, 2), 1.0, 2, aligned=aligned)
        expected = _numpy_roi_align(features, boxes, [0, 1, 0, 1, 0], (3, 2), 1.0, 2, aligned=aligned)
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_roi_align_gradient_flows_to_features():
    x = tf.Variable(tf.random.normal([2, 8, 8, 3], seed=1))
    boxes = tf.constant([[1.0, 1.0, 5.5, 6.0], [2.0, 0.5, 7.0, 3.0]])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(roi_align(x, boxes, tf.constant([0, 1]), 2))
    grad = tape.gradient(y, x).numpy()
    # Each bin is a mean of 4 samples whose bilinear weights sum to 1: the gradient totals 1 per bin.
    np.testing.assert_allclose(grad.sum(axis=(1, 2)), np.full([2, 3], 4.0), atol=1e-5)
    assert grad[0, 7].max() == 0 and grad[1, :, 7].max() == 0  # outside the boxes


# --- both layers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer", [RoIPooling((2, 3), spatial_scale=0.5), RoIAlign((2, 3), spatial_scale=0.5, sampling_ratio=1)]
)
def test_layers_run_in_tf_function_with_unknown_roi_count(layer):
    traced = tf.function(
        layer,
        input_signature=[
            tf.TensorSpec([None, None, None, 4]),
            tf.TensorSpec([None, 4]),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    x = tf.random.normal([2, 9, 10, 4], seed=2)
    for count in (0, 1, 5):
        boxes = tf.random.uniform([count, 2], 0, 8, seed=3)
        boxes = tf.concat([boxes, boxes + 6.0], axis=1)
        indices = tf.range(count) % 2
        y = traced(x, boxes, indices)
        assert y.shape == (count, 2, 3, 4)
        np.testing.assert_allclose(y, layer(x, boxes, indices), atol=1e-6)


def test_layers_keras_round_trip(tmp_path):
    features = keras.Input((12, 12, 3), name="features")
    boxes = keras.Input((4,), name="boxes")
    box_indices = keras.Input((), dtype="int32", name="box_indices")
    pooled = RoIPooling(3, spatial_scale=0.5, name="pool")(features, boxes, box_indices)
    aligned = RoIAlign((2, 4), spatial_scale=0.5, sampling_ratio=3, aligned=False, name="align")(
        features, boxes, box_indices
    )
    assert tuple(pooled.shape) == (None, 3, 3, 3) and tuple(aligned.shape) == (None, 2, 4, 3)
    model = keras.Model([features, boxes, box_indices], [pooled, aligned])
    x = tf.random.normal([2, 12, 12, 3], seed=4)
    inputs = [x, tf.constant([[0.0, 2.0, 11.0, 20.0], [3.5, 1.0, 9.0, 7.0]]), tf.constant([1, 0])]
    model.save(tmp_path / "roi.keras")
    restored = keras.saving.load_model(tmp_path / "roi.keras")
    for got, want in zip(restored(inputs), model(inputs)):
        np.testing.assert_array_equal(got, want)
    assert restored.get_layer("align").get_config()["aligned"] is False
    for name, cls in (("pool", RoIPooling), ("align", RoIAlign)):
        layer = restored.get_layer(name)
        assert isinstance(layer, cls)
        assert cls.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.warns(UserWarning, match="jit_compile"):  # XLA has no CropAndResize kernel
        restored.compile(loss="mse", jit_compile=True)
    assert restored.jit_compile is False


def test_mixed_precision_keeps_boxes_float32():
    """Features run in float16, boxes stay float32: float16 would round x = 2049 to 2048."""
    x = np.zeros([1, 2, 2100, 1], np.float32)
    x[0, :, 2049] = 1.0
    boxes = tf.constant([[2049.0, 0.0, 2049.0, 1.0]])
    for layer_class, expected in ((RoIPooling, 1.0), (RoIAlign, 0.5)):  # align: one sample at x = 2048.5
        y = layer_class(1, dtype="mixed_float16")(tf.constant(x), boxes, tf.constant([0]))
        assert y.dtype == tf.float16 and float(y[0, 0, 0, 0]) == expected


def test_saved_model_export_uses_core_ops(tmp_path):
    from tensorflow.python.framework import op_def_registry

    from tfmodels.export.stock_tf_check import graph_ops

    features = keras.Input((None, None, 3), name="features")
    boxes = keras.Input((4,), name="boxes")
    box_indices = keras.Input((), dtype="int32", name="box_indices")
    outputs = [RoIPooling(2)(features, boxes, box_indices), RoIAlign(2)(features, boxes, box_indices)]
    model = keras.Model([features, boxes, box_indices], outputs)
    model.export(str(tmp_path / "1"), format="tf_saved_model", verbose=False)
    ops = graph_ops(tmp_path / "1")
    assert {"CropAndResize", "GatherV2"} <= ops
    assert [op for op in ops if op_def_registry.get(op) is None] == []


def test_invalid_arguments():
    with pytest.raises(ValueError, match="output_size"):
        RoIPooling((2, 2, 2))
    with pytest.raises(ValueError, match="sampling_ratio"):
        RoIAlign(7, sampling_ratio=0)


@pytest.mark.parametrize(("module", "examples"), [("roi_pooling", 8), ("roi_align", 7)])
def test_docstring_examples(module, examples):
    result = doctest.testmod(importlib.import_module(f"tfmodels.layers.{module}"))
    assert result.attempted == examples and result.failed == 0
