"""Non-maximum suppression with a fixed number of padded outputs, for served detection graphs.

notes-002-part2.md §6 [REF d2l] (seed 002 L2146: "use NMS to de-duplicate"): sort by confidence,
keep the best box, drop every remaining box that overlaps it by more than the IoU threshold,
repeat. Both functions wrap TensorFlow's own NMS kernels, so they select exactly what
``tf.image.non_max_suppression`` selects, run under ``tf.function`` with unknown batch and box
counts, and keep a served graph to core ops. Their outputs have a fixed size ``max_detections``,
padded, plus ``num_detections``, as TF-Serving signatures need.

Boxes are corner boxes ``[xmin, ymin, xmax, ymax]`` in pixels; TensorFlow's ops document
``[ymin, xmin, ymax, xmax]``, but IoU is the same with x and y swapped, so boxes go in as they
are and come out unchanged.
"""

from __future__ import annotations

import tensorflow as tf

IOU_THRESHOLD = 0.5  # notes-002-part2.md §6 [REF d2l] nms_threshold


def non_max_suppression(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_detections: int,
    iou_threshold: float = IOU_THRESHOLD,
    score_threshold: float = float("-inf"),
) -> dict[str, tf.Tensor]:
    """Single-class NMS of one image or a batch, padded to ``max_detections``.

    Selects what ``tf.image.non_max_suppression`` selects (its first ``max_detections``), in the
    same order: score descending. A box is dropped when its IoU with a kept box is above
    ``iou_threshold`` or its score is not above ``score_threshold``.

    Args:
        boxes: float ``[..., N, 4]`` corner boxes; leading dimensions are batch dimensions.
        scores: float ``[..., N]`` scores.
        max_detections: the fixed output size K (a Python int).
        iou_threshold: overlap above which the lower-scored box is suppressed.
        score_threshold: boxes scoring at or below it are never kept.

    Returns:
        A dict of ``detection_indices`` int32 ``[..., K]`` (into N, -1 on padding),
        ``detection_boxes`` ``[..., K, 4]`` and ``detection_scores`` ``[..., K]`` (0 on padding),
        ``num_detections`` int32 ``[...]``.

    Example:
        >>> boxes = tf.constant([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 8.0], [20.0, 20.0, 30.0, 30.0]])
        >>> kept = non_max_suppression(boxes, tf.constant([0.9, 0.8, 0.7]), max_detections=4)
        >>> kept["detection_indices"].numpy().tolist(), int(kept["num_detections"])  # IoU 0.8 > 0.5
        ([0, 2, -1, -1], 2)
    """
    boxes, scores = tf.convert_to_tensor(boxes), tf.convert_to_tensor(scores)
    indices, num_detections = _select(boxes, scores, max_detections, iou_threshold, score_threshold)
    is_detection = tf.sequence_mask(num_detections, max_detections)
    # Padding slots point at an appended zero box, so the gathers are valid even when N = 0.
    batch_dims = boxes.shape.rank - 2
    padded_indices = tf.where(is_detection, indices, tf.shape(scores)[-1])
    padded_boxes = tf.pad(boxes, [[0, 0]] * batch_dims + [[0, 1], [0, 0]])
    padded_scores = tf.pad(scores, [[0, 0]] * batch_dims + [[0, 1]])
    return {
        "detection_indices": tf.where(is_detection, indices, -1),
        "detection_boxes": tf.gather(padded_boxes, padded_indices, batch_dims=batch_dims),
        "detection_scores": tf.gather(padded_scores, padded_indices, batch_dims=batch_dims),
        "num_detections": num_detections,
    }


def _select(boxes, scores, max_detections, iou_threshold, score_threshold) -> tuple[tf.Tensor, tf.Tensor]:
    """Kept indices ``[..., K]`` (padded with 0) and their count ``[...]``, image by image."""
    batch_shape, num_boxes = tf.shape(scores)[:-1], tf.shape(scores)[-1]

    def one_image(image_boxes_and_scores):
        image_boxes, image_scores = image_boxes_and_scores
        # NonMaxSuppressionV4 is tf.image.non_max_suppression's kernel with padding; we avoid
        # tf.image.non_max_suppression_padded, a composite that ran 5-20x slower on CPU here
        # and retraces for every new Python argument when called eagerly.
        selected = tf.raw_ops.NonMaxSuppressionV4(
            boxes=image_boxes,
            scores=image_scores,
            max_output_size=max_detections,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            pad_to_max_output_size=True,
        )
        return selected.selected_indices, selected.valid_outputs

    indices, num_selected = tf.map_fn(
        one_image,
        (tf.reshape(boxes, [-1, num_boxes, 4]), tf.reshape(scores, [-1, num_boxes])),
        fn_output_signature=(tf.TensorSpec([max_detections], tf.int32), tf.TensorSpec([], tf.int32)),
    )
    indices = tf.reshape(indices, tf.concat([batch_shape, [max_detections]], axis=0))
    return indices, tf.reshape(num_selected, batch_shape)


def multiclass_non_max_suppression(
    boxes: tf.Tensor,
    scores: tf.Tensor,
    max_detections: int,
    max_detections_per_class: int | None = None,
    iou_threshold: float = IOU_THRESHOLD,
    score_threshold: float = float("-inf"),
) -> dict[str, tf.Tensor]:
    """NMS per class over a batch, then the best ``max_detections`` of all classes per image.

    Each class is suppressed on its own (boxes of different classes never suppress each other),
    keeping at most ``max_detections_per_class``; the survivors of all classes are merged and
    the ``max_detections`` highest-scoring are returned, score descending. Built on
    ``tf.image.combined_non_max_suppression`` with ``clip_boxes=False`` (its default clips to
    [0, 1], which would wreck pixel boxes).

    Args:
        boxes: float ``[B, N, 4]`` corner boxes shared by all classes (anchor decoders), or
            ``[B, N, C, 4]`` one box per class.
        scores: float ``[B, N, C]`` per-class scores (drop a background column first).
        max_detections: the fixed output size K per image (a Python int).
        max_detections_per_class: at most this many per class; default ``max_detections``.
        iou_threshold: overlap above which the lower-scored box of a class is suppressed.
        score_threshold: (box, class) pairs scoring at or below it are never kept.

    Returns:
        A dict of ``detection_boxes`` ``[B, K, 4]`` and ``detection_scores`` ``[B, K]`` (0 on
        padding), ``detection_classes`` int32 ``[B, K]`` (columns of ``scores``, -1 on padding)
        and ``num_detections`` int32 ``[B]``.

    Example:
        >>> boxes = tf.constant([[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 8.0]]])
        >>> scores = tf.constant([[[0.9, 0.1], [0.2, 0.8]]])  # the two boxes are different classes
        >>> kept = multiclass_non_max_suppression(boxes, scores, max_detections=3, score_threshold=0.5)
        >>> kept["detection_classes"].numpy().tolist(), kept["num_detections"].numpy().tolist()
        ([[0, 1, -1]], [2])
    """
    boxes = tf.convert_to_tensor(boxes)
    if boxes.shape.rank == 3:
        boxes = boxes[:, :, None, :]  # q = 1: one box serves every class
    detection_boxes, detection_scores, detection_classes, num_detections = tf.image.combined_non_max_suppression(
        boxes,
        scores,
        max_output_size_per_class=max_detections_per_class or max_detections,
        max_total_size=max_detections,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        pad_per_class=False,
        clip_boxes=False,
    )
    is_detection = tf.sequence_mask(num_detections, max_detections)
    return {
        "detection_boxes": detection_boxes,
        "detection_scores": detection_scores,
        "detection_classes": tf.where(is_detection, tf.cast(detection_classes, tf.int32), -1),
        "num_detections": num_detections,
    }
