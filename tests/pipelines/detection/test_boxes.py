"""Box conversions, area, IoU, clipping and offsets against the notes' examples and numpy."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import boxes
from pipelines.detection.boxes import (
    box_area,
    center_to_corner,
    clip_boxes,
    corner_to_center,
    decode_offsets,
    encode_offsets,
    pairwise_generalized_iou,
    pairwise_iou,
)


def random_boxes(rng, n, extent=100.0, dtype=np.float32):
    top_left = rng.uniform(0, extent, (n, 2))
    return np.concatenate([top_left, top_left + rng.uniform(1, extent / 2, (n, 2))], axis=1).astype(dtype)


def numpy_iou(a, b):
    """IoU of two corner boxes, written out from the definition (notes-002-part2.md §4)."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_docstring_examples():
    result = doctest.testmod(boxes)
    assert result.attempted >= 7 and result.failed == 0


def test_the_notes_dog_box_converts_both_ways():
    # notes-002-part2.md §2: corner [60, 45, 378, 516] <-> center [219, 280.5, 318, 471]
    corner = tf.constant([[60.0, 45.0, 378.0, 516.0], [400.0, 112.0, 655.0, 493.0]])  # dog, cat
    center = corner_to_center(corner)
    np.testing.assert_array_equal(center[0].numpy(), [219.0, 280.5, 318.0, 471.0])
    np.testing.assert_array_equal(center[1].numpy(), [527.5, 302.5, 255.0, 381.0])
    np.testing.assert_array_equal(center_to_corner(center).numpy(), corner.numpy())


def test_conversions_round_trip_on_random_batches():
    corner = random_boxes(np.random.default_rng(0), 60).reshape(3, 20, 4)
    np.testing.assert_allclose(center_to_corner(corner_to_center(corner)).numpy(), corner, atol=1e-5)


def test_area_counts_inverted_sides_as_empty():
    areas = box_area(tf.constant([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0], [3.0, 0.0, 1.0, 2.0], [0.0] * 4]))
    np.testing.assert_array_equal(areas.numpy(), [6.0, 0.0, 0.0, 0.0])


def test_iou_of_the_notes_pair_identical_and_disjoint_boxes():
    a = tf.constant([[0.0, 0.0, 2.0, 2.0]])
    others = tf.constant([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0], [2.0, 0.0, 4.0, 2.0]])
    # 1/7: intersection 1, union 4 + 4 - 1; touching edges share no area
    np.testing.assert_allclose(pairwise_iou(a, others).numpy(), [[1 / 7, 1.0, 0.0, 0.0]], rtol=1e-6)


def test_iou_equals_the_definition_on_random_boxes_and_is_symmetric():
    rng = np.random.default_rng(1)
    first, second = random_boxes(rng, 30), random_boxes(rng, 17)
    expected = np.array([[numpy_iou(a, b) for b in second] for a in first])
    assert (expected > 0).any() and (expected == 0).any()  # the draw has overlaps and misses
    got = pairwise_iou(first, second).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pairwise_iou(second, first).numpy(), got.T, rtol=1e-6)


def test_iou_broadcasts_anchors_over_a_batch_and_padding_gives_zero_not_nan():
    rng = np.random.default_rng(2)
    anchors = random_boxes(rng, 6)
    batch = random_boxes(rng, 8).reshape(2, 4, 4)
    batch[1, 3] = 0  # a padding box
    got = pairwise_iou(anchors, batch).numpy()
    assert got.shape == (2, 6, 4)
    for b in range(2):
        np.testing.assert_allclose(got[b], pairwise_iou(anchors, batch[b]).numpy())
    np.testing.assert_array_equal(got[1, :, 3], 0.0)
    assert pairwise_iou(tf.zeros([1, 4]), tf.zeros([1, 4])).numpy()[0, 0] == 0.0


def numpy_giou(a, b):
    """GIoU of two corner boxes from its definition: IoU minus the enclosure's share outside the union."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclosure = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (enclosure - union) / enclosure


def test_giou_of_hand_worked_pairs():
    a = tf.constant([[0.0, 0.0, 2.0, 2.0]])
    others = tf.constant([
        [1.0, 1.0, 3.0, 3.0],  # intersection 1, union 7, enclosure 3x3: 1/7 - 2/9
        [0.0, 0.0, 2.0, 2.0],  # identical: 1
        [0.5, 0.5, 1.5, 1.5],  # nested: the enclosure is A, so GIoU = IoU = 1/4
        [2.0, 0.0, 4.0, 2.0],  # touching: IoU 0, union 8 = enclosure 4x2: 0
        [3.0, 0.0, 4.0, 1.0],  # disjoint: union 5, enclosure 4x2: -3/8
        [98.0, 98.0, 100.0, 100.0],  # far apart: 8 of 10,000 covered, near -1
    ])
    expected = [1 / 7 - 2 / 9, 1.0, 0.25, 0.0, -3 / 8, 8 / 10_000 - 1]
    np.testing.assert_allclose(pairwise_generalized_iou(a, others).numpy(), [expected], rtol=1e-6)


def test_giou_equals_the_definition_on_random_boxes_and_never_exceeds_iou():
    rng = np.random.default_rng(5)
    first, second = random_boxes(rng, 20), random_boxes(rng, 9)
    expected = np.array([[numpy_giou(a, b) for b in second] for a in first])
    assert (expected < 0).any() and (expected > 0).any()
    got = pairwise_generalized_iou(first, second).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got <= pairwise_iou(first, second).numpy() + 1e-6) and np.all(got > -1)


def test_giou_broadcasts_over_a_batch_and_empty_pairs_give_zero_not_nan():
    rng = np.random.default_rng(6)
    batch = random_boxes(rng, 12).reshape(2, 6, 4)
    got = pairwise_generalized_iou(batch[:, :2], batch).numpy()
    assert got.shape == (2, 2, 6)
    np.testing.assert_allclose(got[1], pairwise_generalized_iou(batch[1, :2], batch[1]).numpy())
    assert pairwise_generalized_iou(tf.zeros([1, 4]), tf.zeros([1, 4])).numpy()[0, 0] == 0.0


def test_clip_takes_height_then_width_and_accepts_a_shape_tensor():
    image = tf.zeros([50, 80, 3])
    clipped = clip_boxes(tf.constant([[-10.0, -5.0, 100.0, 60.0], [10.0, 10.0, 20.0, 20.0]]), tf.shape(image)[:2])
    np.testing.assert_array_equal(clipped.numpy(), [[0.0, 0.0, 80.0, 50.0], [10.0, 10.0, 20.0, 20.0]])


def test_offsets_of_a_hand_computed_pair():
    # anchor center (5, 10), size 10 x 20; box center (12, 14), size 20 x 20
    offsets = encode_offsets(tf.constant([0.0, 0.0, 10.0, 20.0]), tf.constant([2.0, 4.0, 22.0, 24.0]))
    expected = [(12 - 5) / 10 / 0.1, (14 - 10) / 20 / 0.1, np.log(20 / 10) / 0.2, np.log(20 / 20) / 0.2]
    np.testing.assert_allclose(offsets.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_offsets_round_trip_exactly(dtype, atol):
    rng = np.random.default_rng(3)
    anchors, targets = random_boxes(rng, 200, dtype=dtype), random_boxes(rng, 200, dtype=dtype)
    offsets = encode_offsets(anchors, targets)
    np.testing.assert_allclose(decode_offsets(anchors, offsets).numpy(), targets, atol=atol)
    again = encode_offsets(anchors, decode_offsets(anchors, offsets))
    np.testing.assert_allclose(again.numpy(), offsets.numpy(), atol=atol * 10)


def test_offsets_use_the_given_sigmas():
    anchor, box = tf.constant([0.0, 0.0, 10.0, 10.0]), tf.constant([1.0, 0.0, 21.0, 20.0])
    default = encode_offsets(anchor, box).numpy()
    unit = encode_offsets(anchor, box, center_sigma=1.0, size_sigma=1.0).numpy()
    np.testing.assert_allclose(default, unit / [0.1, 0.1, 0.2, 0.2], rtol=1e-6)


def test_iou_and_offsets_trace_once_for_unknown_shapes():
    spec = tf.TensorSpec([None, None], tf.float32)
    iou = tf.function(pairwise_iou, input_signature=[spec, spec])
    round_trip = tf.function(lambda a, b: decode_offsets(a, encode_offsets(a, b)), input_signature=[spec, spec])
    rng = np.random.default_rng(4)
    for n, m in [(3, 5), (7, 1)]:
        first, second = random_boxes(rng, n), random_boxes(rng, m)
        np.testing.assert_allclose(iou(first, second).numpy(), pairwise_iou(first, second).numpy())
        np.testing.assert_allclose(round_trip(first, first[::-1]).numpy(), first[::-1], atol=1e-4)
    assert iou.experimental_get_tracing_count() == 1
