"""Padded NMS equals tf.image.non_max_suppression: single class, per class, batched."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import nms
from pipelines.detection.nms import multiclass_non_max_suppression, non_max_suppression


def random_case(rng, n, classes=None, extent=100.0):
    """Pixel boxes crowded enough that NMS suppresses many, with distinct random scores."""
    top_left = rng.uniform(0, extent, (n, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(5, extent / 2, (n, 2))], axis=1).astype(np.float32)
    shape = (n,) if classes is None else (n, classes)
    return boxes, rng.uniform(0, 1, shape).astype(np.float32)


def reference_multiclass(boxes, scores, max_detections, per_class, iou_threshold, score_threshold):
    """Per-class tf.image.non_max_suppression, merged by score: (boxes, scores, classes) kept.
    ``boxes`` is [N, 4] shared by every class or [N, C, 4]."""
    kept = []
    for c in range(scores.shape[1]):
        class_boxes = boxes if boxes.ndim == 2 else boxes[:, c]
        selected = tf.image.non_max_suppression(class_boxes, scores[:, c], per_class, iou_threshold, score_threshold)
        kept += [(scores[i, c], c, class_boxes[i]) for i in selected.numpy()]
    kept = sorted(kept, key=lambda k: -k[0])[:max_detections]
    kept_scores, kept_classes, kept_boxes = zip(*kept) if kept else ((), (), ())
    return np.array(kept_boxes).reshape(-1, 4), np.array(kept_scores), np.array(kept_classes)


def test_docstring_examples():
    result = doctest.testmod(nms)
    assert result.attempted >= 7 and result.failed == 0


def test_the_notes_three_boxes_keep_two():
    # notes-002-part2.md §6: two boxes with IoU 0.8 (scores 0.9, 0.8) and a separate one, threshold 0.5
    boxes = tf.constant([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 8.0], [20.0, 20.0, 30.0, 30.0]])
    scores = tf.constant([0.9, 0.8, 0.7])
    kept = non_max_suppression(boxes, scores, max_detections=3)
    expected = tf.image.non_max_suppression(boxes, scores, 3, 0.5).numpy()
    np.testing.assert_array_equal(expected, [0, 2])
    np.testing.assert_array_equal(kept["detection_indices"].numpy(), [0, 2, -1])
    np.testing.assert_array_equal(kept["detection_boxes"].numpy(), [boxes[0], boxes[2], [0, 0, 0, 0]])
    np.testing.assert_allclose(kept["detection_scores"].numpy(), [0.9, 0.7, 0.0])
    assert int(kept["num_detections"]) == 2


def test_single_class_equals_tf_image_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(30):
        boxes, scores = random_case(rng, int(rng.integers(1, 150)))
        k, iou, floor = int(rng.integers(1, 40)), float(rng.uniform(0.2, 0.8)), float(rng.choice([-np.inf, 0.5]))
        expected = tf.image.non_max_suppression(boxes, scores, k, iou, floor).numpy()
        kept = non_max_suppression(boxes, scores, k, iou, floor)
        num = int(kept["num_detections"])
        assert num == len(expected)
        np.testing.assert_array_equal(kept["detection_indices"].numpy()[:num], expected)
        np.testing.assert_array_equal(kept["detection_indices"].numpy()[num:], -1)
        np.testing.assert_array_equal(kept["detection_boxes"].numpy()[:num], boxes[expected])
        np.testing.assert_array_equal(kept["detection_scores"].numpy()[num:], 0.0)


def test_single_class_batched_equals_tf_image_per_image():
    rng = np.random.default_rng(1)
    boxes, scores = random_case(rng, 4 * 60)
    boxes, scores = boxes.reshape(4, 60, 4), scores.reshape(4, 60)
    scores[2] = 0.1  # an image where the score floor removes everything
    kept = non_max_suppression(boxes, scores, 25, 0.4, 0.3)
    assert kept["detection_indices"].shape == (4, 25)
    for b in range(4):
        expected = tf.image.non_max_suppression(boxes[b], scores[b], 25, 0.4, 0.3).numpy()
        assert int(kept["num_detections"][b]) == len(expected)
        np.testing.assert_array_equal(kept["detection_indices"][b, : len(expected)].numpy(), expected)
    assert int(kept["num_detections"][2]) == 0


@pytest.mark.parametrize("per_class_boxes", [False, True])
def test_per_class_batched_equals_per_class_tf_image_merged_by_score(per_class_boxes):
    rng = np.random.default_rng(2)
    batch, n, classes, k, per_class = 3, 80, 4, 30, 10
    boxes, _ = random_case(rng, batch * n * (classes if per_class_boxes else 1))
    boxes = boxes.reshape(batch, n, classes, 4) if per_class_boxes else boxes.reshape(batch, n, 4)
    scores = rng.uniform(0, 1, (batch, n, classes)).astype(np.float32)
    kept = multiclass_non_max_suppression(boxes, scores, k, per_class, iou_threshold=0.45, score_threshold=0.2)
    for b in range(batch):
        want_boxes, want_scores, want_classes = reference_multiclass(boxes[b], scores[b], k, per_class, 0.45, 0.2)
        num = int(kept["num_detections"][b])
        assert num == len(want_scores) and len(set(want_classes)) == classes  # every class took part
        np.testing.assert_array_equal(kept["detection_classes"][b, :num].numpy(), want_classes)
        np.testing.assert_array_equal(kept["detection_boxes"][b, :num].numpy(), want_boxes)
        np.testing.assert_allclose(kept["detection_scores"][b, :num].numpy(), want_scores)
        np.testing.assert_array_equal(kept["detection_classes"][b, num:].numpy(), -1)


def test_boxes_of_different_classes_do_not_suppress_each_other_and_pixels_are_not_clipped():
    boxes = np.array([[[100.0, 100.0, 300.0, 200.0], [100.0, 100.0, 300.0, 190.0]]], np.float32)
    scores = np.array([[[0.9, 0.0], [0.0, 0.8]]], np.float32)
    kept = multiclass_non_max_suppression(boxes, scores, 4, score_threshold=0.1)
    np.testing.assert_array_equal(kept["detection_classes"].numpy(), [[0, 1, -1, -1]])
    np.testing.assert_array_equal(kept["detection_boxes"][0, :2].numpy(), boxes[0])
    same_class = multiclass_non_max_suppression(boxes, np.array([[[0.9], [0.8]]], np.float32), 4)
    assert same_class["num_detections"].numpy().tolist() == [1]  # one class, IoU 0.9: suppressed


@pytest.mark.parametrize("batch, n", [(2, 0), (0, 5)])
def test_no_boxes_or_no_images_give_empty_padded_results(batch, n):
    single = non_max_suppression(tf.zeros([batch, n, 4]), tf.zeros([batch, n]), 3)
    multi = multiclass_non_max_suppression(tf.zeros([batch, n, 4]), tf.zeros([batch, n, 2]), 3)
    for kept in (single, multi):
        assert kept["detection_boxes"].shape == (batch, 3, 4) and kept["num_detections"].shape == (batch,)
        np.testing.assert_array_equal(kept["num_detections"].numpy(), 0)
    np.testing.assert_array_equal(single["detection_indices"].numpy(), -1)
    np.testing.assert_array_equal(multi["detection_classes"].numpy(), -1)


def test_both_trace_once_for_unknown_batch_and_box_counts():
    single = tf.function(
        lambda b, s: non_max_suppression(b, s, 10, 0.5),
        input_signature=[tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None], tf.float32)],
    )
    multi = tf.function(
        lambda b, s: multiclass_non_max_suppression(b, s, 10, 5, 0.5),
        input_signature=[tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None, None], tf.float32)],
    )
    rng = np.random.default_rng(3)
    for batch, n, classes in [(2, 30, 3), (1, 7, 1)]:
        boxes, _ = random_case(rng, batch * n)
        boxes = boxes.reshape(batch, n, 4)
        scores = rng.uniform(0, 1, (batch, n, classes)).astype(np.float32)
        got, want = single(boxes, scores[..., 0]), non_max_suppression(boxes, scores[..., 0], 10, 0.5)
        np.testing.assert_array_equal(got["detection_indices"].numpy(), want["detection_indices"].numpy())
        got, want = multi(boxes, scores), multiclass_non_max_suppression(boxes, scores, 10, 5, 0.5)
        for key in want:
            np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
        assert got["detection_boxes"].shape == (batch, 10, 4)
    assert single.experimental_get_tracing_count() == 1 and multi.experimental_get_tracing_count() == 1


def test_a_saved_model_with_both_keeps_to_core_ops_and_reloads(tmp_path):
    from tensorflow.python.framework import op_def_registry

    from tfmodels.export.stock_tf_check import graph_ops

    class Detector(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None, None], tf.float32)]
        )
        def serve(self, boxes, scores):
            single = non_max_suppression(boxes, tf.reduce_max(scores, -1), 6)
            return {**multiclass_non_max_suppression(boxes, scores, 6), "single_indices": single["detection_indices"]}

    detector = Detector()
    tf.saved_model.save(detector, str(tmp_path), signatures={"serving_default": detector.serve})
    assert all(op_def_registry.get(op) is not None for op in graph_ops(tmp_path))
    assert {"NonMaxSuppressionV4", "CombinedNonMaxSuppression"} <= graph_ops(tmp_path)
    boxes, _ = random_case(np.random.default_rng(4), 40)
    boxes = boxes.reshape(2, 20, 4)
    scores = np.random.default_rng(5).uniform(0, 1, (2, 20, 3)).astype(np.float32)
    served = tf.saved_model.load(str(tmp_path)).signatures["serving_default"](boxes=boxes, scores=scores)
    want = multiclass_non_max_suppression(boxes, scores, 6)
    np.testing.assert_array_equal(served["detection_classes"].numpy(), want["detection_classes"].numpy())
    np.testing.assert_array_equal(
        served["single_indices"].numpy(), non_max_suppression(boxes, scores.max(-1), 6)["detection_indices"].numpy()
    )
