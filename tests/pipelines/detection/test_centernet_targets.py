"""CenterNet targets: CornerNet's radius rule, Gaussian splats and the centre-pixel targets.

References are written here from the definitions (Objects as Points §3, CornerNet §3.1), in
NumPy loops and float64: box IoUs by hand, and a per-box window-paste Gaussian drawing like the
reference code's ``draw_umich_gaussian``.
"""

import doctest
import math

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import centernet_targets as module
from pipelines.detection.centernet_targets import centernet_targets, gaussian_radius


def test_doctests():
    assert doctest.testmod(module).failed == 0


def _iou(a, b):
    """IoU of two corner boxes, float64."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_radius_of_a_10x10_box_at_iou_half_is_the_shrunk_case_by_hand():
    # shrunk: 4r^2 - 40r + 50 = 0 -> r = (40 - sqrt(800)) / 8; shifted 1.835 and grown 3.090 are larger
    assert float(gaussian_radius(10.0, 10.0, 0.5)) == pytest.approx((40 - math.sqrt(800)) / 8, abs=1e-5)


@pytest.mark.parametrize("t", [0.3, 0.5, 0.7])
def test_radius_is_where_the_worst_corner_move_reaches_the_iou(t):
    """At the radius, the worst of the three moves (shift, shrink, grow) has IoU exactly t."""
    rng = np.random.default_rng(int(t * 10))
    heights, widths = rng.uniform(2, 60, 20), rng.uniform(2, 60, 20)
    radii = gaussian_radius(heights, widths, t).numpy()
    for h, w, r in zip(heights, widths, radii.astype(np.float64)):
        gt = (0.0, 0.0, w, h)
        moved = [(r, r, w + r, h + r), (r, r, w - r, h - r), (-r, -r, w + r, h + r)]
        assert min(_iou(gt, box) for box in moved) == pytest.approx(t, abs=1e-4)


def _reference_heatmap(boxes, classes, num_classes, out_hw, stride=4, t=0.3):
    """The reference encoder as loops: integer centre, radius from ceil'd output size, max-paste."""
    heatmap = np.zeros((*out_hw, num_classes))
    for (x0, y0, x1, y1), c in zip(boxes / stride, classes):
        w, h = x1 - x0, y1 - y0
        cx, cy = int(np.floor((x0 + x1) / 2)), int(np.floor((y0 + y1) / 2))
        # smallest root of the three quadratics, written out again here
        hh, ww = math.ceil(h), math.ceil(w)
        r1 = ((hh + ww) - math.sqrt((hh + ww) ** 2 - 4 * ww * hh * (1 - t) / (1 + t))) / 2
        r2 = (2 * (hh + ww) - math.sqrt(4 * (hh + ww) ** 2 - 16 * (1 - t) * ww * hh)) / 8
        r3 = (-2 * t * (hh + ww) + math.sqrt(4 * t * t * (hh + ww) ** 2 + 16 * t * (1 - t) * ww * hh)) / (8 * t)
        radius = max(0, int(min(r1, r2, r3)))
        sigma = (2 * radius + 1) / 6
        for y in range(cy - radius, cy + radius + 1):
            for x in range(cx - radius, cx + radius + 1):
                if 0 <= y < out_hw[0] and 0 <= x < out_hw[1]:
                    value = math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
                    heatmap[y, x, c] = max(heatmap[y, x, c], value)
    return heatmap


def _random_boxes(rng, count, size=128):
    xy = rng.uniform(0, size - 10, (count, 2))
    wh = rng.uniform(4, 60, (count, 2))
    return np.concatenate([xy, np.minimum(xy + wh, size)], axis=1).astype(np.float32)


def test_heatmap_equals_the_loop_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    for _ in range(5):
        boxes = _random_boxes(rng, 6)
        classes = rng.integers(0, 3, 6).astype(np.int32)  # repeated classes: overlapping splats keep the max
        padded_boxes = np.concatenate([boxes, np.zeros((2, 4), np.float32)])
        padded_classes = np.concatenate([classes, [-1, -1]]).astype(np.int32)
        targets = centernet_targets(padded_boxes, padded_classes, 6, 3, (32, 32))
        expected = _reference_heatmap(boxes, classes, 3, (32, 32))
        np.testing.assert_allclose(targets["heatmap"].numpy(), expected, atol=1e-6)


def test_key_points_are_exactly_one_in_their_class_channel():
    boxes = np.array([[8, 4, 24, 20], [40, 40, 80, 100], [0, 0, 0, 0]], np.float32)
    targets = centernet_targets(boxes, np.array([1, 0, -1], np.int32), 2, 2, (32, 32))
    heatmap = targets["heatmap"].numpy()
    assert heatmap[3, 4, 1] == 1.0 and heatmap[17, 15, 0] == 1.0  # centres (16, 12) and (60, 70), / 4
    assert np.count_nonzero(heatmap == 1.0) == 2 and heatmap.max() == 1.0 and heatmap.min() == 0.0
    assert targets["indices"].numpy().tolist() == [3 * 32 + 4, 17 * 32 + 15, 0]
    np.testing.assert_allclose(targets["size"].numpy(), [[4, 4], [10, 15], [0, 0]])
    np.testing.assert_allclose(targets["offset"].numpy(), [[0, 0], [0, 0.5], [0, 0]])
    assert targets["mask"].numpy().tolist() == [1, 1, 0]


def test_offset_is_the_sub_pixel_part_lost_by_the_stride():
    # centre (13.5, 22.25) -> output (3.375, 5.5625): pixel (3, 5), offset (0.375, 0.5625)
    targets = centernet_targets(np.array([[10, 20, 17, 24.5]], np.float32), np.array([0]), 1, 1, (8, 8))
    np.testing.assert_allclose(targets["offset"].numpy(), [[0.375, 0.5625]], atol=1e-6)
    assert int(targets["indices"][0]) == 5 * 8 + 3
    np.testing.assert_allclose(targets["size"].numpy(), [[7 / 4, 4.5 / 4]], atol=1e-6)


def test_empty_boxes_and_padding_give_no_targets():
    boxes = np.array([[5, 5, 5, 20], [1, 1, 9, 9]], np.float32)  # zero width, then a padding row
    targets = centernet_targets(boxes, np.array([0, 0], np.int32), 1, 1, (8, 8))
    assert targets["mask"].numpy().tolist() == [0, 0]
    assert targets["heatmap"].numpy().max() == 0.0


def test_batched_equals_one_by_one_under_tf_function_with_unknown_shapes():
    rng = np.random.default_rng(3)
    boxes = np.stack([np.concatenate([_random_boxes(rng, n), np.zeros((4 - n, 4), np.float32)]) for n in (1, 4, 0)])
    classes = np.where(np.arange(4)[None] < np.array([[1], [4], [0]]), rng.integers(0, 5, (3, 4)), -1).astype(np.int32)
    counts = np.array([1, 4, 0], np.int32)
    encode = tf.function(
        lambda b, c, n: centernet_targets(b, c, n, 5, (32, 32)),
        input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
    )
    batched = encode(boxes, classes, counts)
    for i in range(3):
        single = centernet_targets(boxes[i], classes[i], counts[i], 5, (32, 32))
        for key, value in single.items():
            np.testing.assert_allclose(batched[key][i].numpy(), value.numpy(), atol=1e-6, err_msg=key)


def test_runs_in_a_tf_data_map():
    element = {"boxes": tf.constant([[8.0, 4.0, 24.0, 20.0]]), "classes": tf.constant([1]), "num_boxes": tf.constant(1)}
    dataset = tf.data.Dataset.from_tensors(element).map(
        lambda e: centernet_targets(e["boxes"], e["classes"], e["num_boxes"], 2, (8, 8))["heatmap"]
    )
    assert next(iter(dataset)).shape == (8, 8, 2)
