"""Greedy anchor assignment and multibox targets: the notes' 9 x 4 figure and a loop reference."""

import doctest

import numpy as np
import tensorflow as tf

from pipelines.detection import assignment
from pipelines.detection.anchors import multibox_anchors
from pipelines.detection.assignment import assign_anchors, multibox_targets
from pipelines.detection.boxes import pairwise_iou

# Rows: anchors A1..A9, columns: ground-truth boxes B1..B4 (1-based, as in the notes' figure,
# notes-002-part2.md §5, seed 002 L2088-2090).
NOTES_IOU = np.array(
    [
        [0.00, 0.10, 0.20, 0.05],  # A1: best 0.20 < 0.5 -> background
        [0.80, 0.30, 0.90, 0.10],  # A2: x23 = 0.90 is the global maximum -> A2 predicts B3
        [0.10, 0.55, 0.85, 0.00],  # A3: x33 dies with column 3; afterwards its best, 0.85 -> B3
        [0.49, 0.49, 0.49, 0.49],  # A4: 0.49 everywhere -> background
        [0.72, 0.10, 0.30, 0.70],  # A5: row max is B1, but greedy gives it B4 (x54, step 3)
        [0.60, 0.05, 0.00, 0.65],  # A6: threshold step -> B4 (0.65 > 0.60)
        [0.75, 0.20, 0.40, 0.10],  # A7: x71 = 0.75 is the largest once row 2 / column 3 go
        [0.30, 0.40, 0.10, 0.20],  # A8: best 0.40 -> background
        [0.10, 0.60, 0.05, 0.30],  # A9: x92 = 0.60, the last greedy pick (only column B2 left)
    ],
    np.float32,
)
# Greedy: x23 (0.90); delete row A2, column B3 -> x71 (0.75, beats x51 0.72); delete A7, B1 ->
# x54 (0.70, beats x64 0.65); delete A5, B4 -> only B2 is left: x92 (0.60, beats x32 0.55).
NOTES_GREEDY = [-1, 2, -1, -1, 3, -1, 0, -1, 1]  # 0-based box per anchor, -1 = none
# Threshold step (IoU >= 0.5) for the other anchors: A3 -> B3 (0.85), A6 -> B4 (0.65).
NOTES_ASSIGNED = [-1, 2, 2, -1, 3, 3, 0, -1, 1]


def reference_assign(iou, num_valid, threshold=0.5):
    """The notes' procedure as loops: pick the largest remaining entry (first in row-major order),
    delete its row and column, until the boxes or anchors run out; then the 0.5 rule [REF d2l]."""
    num_anchors = iou.shape[0]
    rows, cols = list(range(num_anchors)), list(range(num_valid))
    assigned = np.full(num_anchors, -1)
    while rows and cols:
        i, j = max(((i, j) for i in rows for j in cols), key=lambda ij: (iou[ij], -ij[0], -ij[1]))
        assigned[i] = j
        rows.remove(i)
        cols.remove(j)
    for i in rows:
        if num_valid and iou[i, :num_valid].max() >= threshold:
            assigned[i] = int(np.argmax(iou[i, :num_valid]))
    return assigned


def reference_targets(anchors, boxes, classes, assigned):
    """Class + 1 and d2l's offsets (sigma 0.1 / 0.2) from the definition, in float64."""
    anchors, boxes = anchors.astype(np.float64), boxes.astype(np.float64)
    class_targets = np.zeros(len(anchors), int)
    offsets = np.zeros((len(anchors), 4))
    for a, g in enumerate(assigned):
        if g < 0:
            continue
        class_targets[a] = classes[g] + 1
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = anchors[a], boxes[g]
        wa, ha, wb, hb = ax1 - ax0, ay1 - ay0, bx1 - bx0, by1 - by0
        offsets[a] = [
            ((bx0 + bx1) / 2 - (ax0 + ax1) / 2) / wa / 0.1,
            ((by0 + by1) / 2 - (ay0 + ay1) / 2) / ha / 0.1,
            np.log(wb / wa) / 0.2,
            np.log(hb / ha) / 0.2,
        ]
    return class_targets, offsets


def random_scene(rng, max_boxes=5, extent=64.0):
    num = int(rng.integers(0, max_boxes + 1))
    boxes = np.zeros((max_boxes, 4), np.float32)
    classes = np.full(max_boxes, -1, np.int32)
    top_left = rng.uniform(0, extent * 0.7, (num, 2))
    boxes[:num] = np.concatenate([top_left, top_left + rng.uniform(4, extent * 0.3, (num, 2))], axis=1)
    classes[:num] = rng.integers(0, 10, num)
    return boxes, classes, np.int32(num)


def assert_same_targets(got, want):
    """Equal targets; offsets up to graph-rewrite rounding (a traced graph may fuse the ops)."""
    for key in ("assigned_box", "class_targets", "offset_mask"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
    np.testing.assert_allclose(got["offset_targets"].numpy(), want["offset_targets"].numpy(), rtol=1e-6, atol=1e-6)


ANCHORS = multibox_anchors((4, 4), (64, 64), [0.3, 0.15], [1.0, 2.0, 0.5]).numpy()  # 64 anchors


def test_docstring_examples():
    result = doctest.testmod(assignment)
    assert result.attempted >= 6 and result.failed == 0


def test_the_notes_nine_by_four_figure():
    np.testing.assert_array_equal(assign_anchors(NOTES_IOU).numpy(), NOTES_ASSIGNED)
    # a threshold no IoU reaches leaves the greedy pairs: every box exactly one anchor
    np.testing.assert_array_equal(assign_anchors(NOTES_IOU, iou_threshold=1.01).numpy(), NOTES_GREEDY)
    np.testing.assert_array_equal(reference_assign(NOTES_IOU, 4), NOTES_ASSIGNED)  # the reference agrees


def test_padding_columns_are_never_assigned_and_batches_are_independent():
    padded = np.concatenate([NOTES_IOU, np.full((9, 1), 0.99, np.float32)], axis=1)  # a 5th, padding column
    permuted = padded[:, [3, 0, 2, 1, 4]]
    batch = np.stack([padded, permuted])
    valid = np.array([[True] * 4 + [False]] * 2)
    got = assign_anchors(batch, valid).numpy()
    np.testing.assert_array_equal(got[0], NOTES_ASSIGNED)
    to_permuted = {-1: -1, 3: 0, 0: 1, 2: 2, 1: 3}  # column k of padded is column to_permuted[k]
    np.testing.assert_array_equal(got[1], [to_permuted[k] for k in NOTES_ASSIGNED])


def test_fewer_anchors_than_boxes_leaves_the_last_boxes_without_an_anchor():
    iou = np.array([[0.3, 0.9, 0.1], [0.2, 0.8, 0.4]], np.float32)  # x12, then x23; box 1 gets none
    np.testing.assert_array_equal(assign_anchors(iou).numpy(), [1, 2])


def test_a_box_that_overlaps_no_anchor_still_gets_one():
    # anchor 0 takes box 1 (0.7) first; box 0 is left with IoU 0 to anchor 1 alone and takes it
    # (the notes: "until every GT has an anchor"; d2l does the same)
    iou = np.array([[0.0, 0.7], [0.0, 0.2]], np.float32)
    np.testing.assert_array_equal(assign_anchors(iou).numpy(), [1, 0])


def test_equals_the_loop_reference_on_random_matrices_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(40):
        num_anchors, num_boxes = rng.integers(1, 12), rng.integers(1, 6)
        iou = np.round(rng.uniform(0, 1, (num_anchors, num_boxes)), 1).astype(np.float32)  # ties
        num_valid = int(rng.integers(0, num_boxes + 1))
        got = assign_anchors(iou, np.arange(num_boxes) < num_valid).numpy()
        np.testing.assert_array_equal(got, reference_assign(iou, num_valid), err_msg=f"{iou}, {num_valid} valid")


def test_targets_equal_the_reference_on_random_scenes_one_by_one_and_batched():
    rng = np.random.default_rng(1)
    scenes = [random_scene(rng) for _ in range(12)]
    boxes, classes, counts = (np.stack(parts) for parts in zip(*scenes))
    batched = multibox_targets(ANCHORS, boxes, classes, counts)
    assert (batched["class_targets"].numpy() > 0).sum() > counts.sum()  # the 0.5 rule adds positives
    for b, (scene_boxes, scene_classes, num) in enumerate(scenes):
        # the reference takes the tested IoU matrix so that near-ties order the same in float32
        iou = pairwise_iou(ANCHORS, scene_boxes).numpy()
        assigned = reference_assign(iou, int(num))
        class_targets, offsets = reference_targets(ANCHORS, scene_boxes, scene_classes, assigned)
        single = multibox_targets(ANCHORS, scene_boxes, scene_classes, num)
        for targets in (single, {k: v[b] for k, v in batched.items()}):
            np.testing.assert_array_equal(targets["assigned_box"].numpy(), assigned)
            np.testing.assert_array_equal(targets["class_targets"].numpy(), class_targets)
            np.testing.assert_allclose(targets["offset_targets"].numpy(), offsets, rtol=1e-4, atol=1e-4)
            np.testing.assert_array_equal(targets["offset_mask"].numpy(), np.repeat(assigned[:, None] >= 0, 4, 1))
            assert np.isfinite(targets["offset_targets"].numpy()).all()


def test_every_real_box_gets_an_anchor_even_with_low_overlap():
    boxes = np.array([[0.0, 0.0, 2.0, 2.0], [30.0, 30.0, 34.0, 34.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    targets = multibox_targets(ANCHORS, boxes, np.array([3, 7, -1]), np.int32(2))
    assigned = targets["assigned_box"].numpy()
    assert (assigned == 0).sum() >= 1 and (assigned == 1).sum() >= 1 and not (assigned == 2).any()
    assert sorted(set(targets["class_targets"].numpy()) - {0}) == [4, 8]


def test_traces_once_for_unknown_batch_anchor_and_box_counts_and_maps_over_tf_data():
    targets = tf.function(
        multibox_targets,
        input_signature=[
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([None, None, 4], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    rng = np.random.default_rng(2)
    for batch_size, max_boxes, num_anchors in [(3, 5, 64), (2, 2, 40)]:
        scenes = [random_scene(rng, max_boxes) for _ in range(batch_size)]
        boxes, classes, counts = (np.stack(parts) for parts in zip(*scenes))
        got = targets(ANCHORS[:num_anchors], boxes, classes, counts)
        want = multibox_targets(ANCHORS[:num_anchors], boxes, classes, counts)
        assert_same_targets(got, want)
    assert targets.experimental_get_tracing_count() == 1

    dataset = tf.data.Dataset.from_tensor_slices({"boxes": boxes, "classes": classes, "num_boxes": counts})
    mapped = dataset.map(lambda x: multibox_targets(ANCHORS, x["boxes"], x["classes"], x["num_boxes"])).batch(8)
    want = multibox_targets(ANCHORS, boxes, classes, counts)
    assert_same_targets(next(iter(mapped)), want)
