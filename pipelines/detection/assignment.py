"""Ground truth -> anchor assignment and per-anchor training targets (d2l's ``multibox_target``).

notes-002-part2.md §5 (seed 002 L2080-2092): every anchor is a training sample, labelled
background or tied to one ground-truth box. The notes' greedy rule takes the largest entry of the
anchors x ground-truth IoU matrix (``x23``: anchor 2 predicts box 3), deletes its row and column,
and repeats until every ground-truth box has an anchor; [REF d2l] then gives every other anchor
the box it overlaps most if that IoU is >= 0.5. Core TensorFlow ops only (a ``tf.while_loop``
bounded by the number of boxes), so it runs per element in ``tf.data`` and on batches.
"""

from __future__ import annotations

import tensorflow as tf

from pipelines.detection.boxes import CENTER_SIGMA, SIZE_SIGMA, encode_offsets, pairwise_iou

IOU_THRESHOLD = 0.5  # notes-002-part2.md §5 [REF d2l] iou_threshold
_DELETED = -1.0  # below every IoU: marks deleted rows/columns and padding boxes


def assign_anchors(iou: tf.Tensor, valid: tf.Tensor | None = None, iou_threshold: float = IOU_THRESHOLD) -> tf.Tensor:
    """The ground-truth box of every anchor under the notes' greedy max-IoU rule, -1 for none.

    Greedy step (notes-002-part2.md §5, seed 002 L2088): take the largest remaining IoU,
    assign that anchor to that box, delete the row and column, until every valid box has an
    anchor (or the anchors run out). Threshold step ([REF d2l] ``assign_anchor_to_bbox``): every
    anchor left over takes its highest-IoU box if that IoU is ``>= iou_threshold``. Ties go to the
    lowest anchor index, then the lowest box index (row-major, like d2l's argmax), on every device.

    Args:
        iou: ``[..., A, G]`` IoU of A anchors with G ground-truth boxes (e.g. from
            :func:`~pipelines.detection.boxes.pairwise_iou`).
        valid: optional bool ``[..., G]``: which boxes are real (False on padding). Default: all.
        iou_threshold: the IoU a non-greedy anchor needs to become positive.

    Returns:
        int32 ``[..., A]``: the index of each anchor's box in ``[0, G)``, or -1 for background.

    Example:
        >>> iou = tf.constant([[0.1, 0.6], [0.7, 0.8], [0.2, 0.55]])
        >>> # Greedy: 0.8 pairs anchor 1 with box 1; its row goes, so box 0 gets anchor 2 (0.2).
        >>> # Threshold: anchor 0's best IoU, 0.6 with box 1, passes 0.5.
        >>> assign_anchors(iou).numpy().tolist()
        [1, 1, 0]
    """
    iou = tf.convert_to_tensor(iou)
    if valid is not None:
        iou = tf.where(valid[..., None, :], iou, _DELETED)
    batch_shape, num_anchors, num_boxes = tf.shape(iou)[:-2], tf.shape(iou)[-2], tf.shape(iou)[-1]
    flat_iou = tf.reshape(iou, [-1, num_anchors, num_boxes])

    # d2l's order: the greedy pairs overwrite the threshold step's, as if greedy came first.
    best_box, best_iou = _first_argmax(flat_iou)  # [B, A] each
    assigned = tf.where(best_iou >= iou_threshold, best_box, -1)
    assigned = _greedy_assign(flat_iou, assigned)
    return tf.reshape(assigned, tf.concat([batch_shape, [num_anchors]], axis=0))


def _greedy_assign(iou: tf.Tensor, assigned: tf.Tensor) -> tf.Tensor:
    """Overwrites ``assigned`` [B, A] with the greedy pairs of ``iou`` [B, A, G] (deleted: -1)."""
    num_anchors, num_boxes = tf.shape(iou)[1], tf.shape(iou)[2]

    def step(k, remaining, assigned):
        flat_best, best_iou = _first_argmax(tf.reshape(remaining, [tf.shape(iou)[0], -1]))
        found = best_iou >= 0  # False once this example's valid boxes (or anchors) are used up
        anchor, box = flat_best // num_boxes, flat_best % num_boxes
        is_anchor = tf.equal(tf.range(num_anchors)[None, :], anchor[:, None]) & found[:, None]
        is_box = tf.equal(tf.range(num_boxes)[None, :], box[:, None]) & found[:, None]
        assigned = tf.where(is_anchor, box[:, None], assigned)
        remaining = tf.where(is_anchor[:, :, None] | is_box[:, None, :], _DELETED, remaining)
        return k + 1, remaining, assigned

    # Each pass takes one box per example, so G passes give every valid box its anchor.
    _, _, assigned = tf.while_loop(lambda k, *_: k < num_boxes, step, (tf.constant(0), iou, assigned))
    return assigned


def _first_argmax(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Index (int32) and value of the maximum along the last axis; ties: the lowest index.

    ``tf.argmax`` leaves the winner of a tie unspecified; targets must not change with the device.
    """
    best = tf.reduce_max(x, axis=-1)
    size = tf.shape(x)[-1]
    index = tf.where(tf.equal(x, best[..., None]), tf.range(size), size)
    return tf.reduce_min(index, axis=-1), best


def multibox_targets(
    anchors: tf.Tensor,
    boxes: tf.Tensor,
    classes: tf.Tensor,
    num_boxes: tf.Tensor,
    iou_threshold: float = IOU_THRESHOLD,
    center_sigma: float = CENTER_SIGMA,
    size_sigma: float = SIZE_SIGMA,
) -> dict[str, tf.Tensor]:
    """Per-anchor class and offset targets for one example or a batch, d2l's ``multibox_target``.

    Anchors are assigned with :func:`assign_anchors` (notes-002-part2.md §5); a positive anchor's
    class target is its box's class + 1 (0 is background) and its offset target is
    :func:`~pipelines.detection.boxes.encode_offsets` of its box ([REF d2l], sigma 0.1 / 0.2).
    Anchors and boxes must share a frame (pixels, or both normalised): IoU and offsets do not
    depend on the scale.

    Args:
        anchors: ``[A, 4]`` corner anchors ``[xmin, ymin, xmax, ymax]``.
        boxes: ``[..., G, 4]`` padded corner boxes of the element form (``[B, G, 4]`` for a
            batch), ``G >= 1``.
        classes: int ``[..., G]`` box classes (-1 on padding).
        num_boxes: int ``[...]`` real boxes per example; boxes past it are padding.
        iou_threshold: the IoU a non-greedy anchor needs to become positive.
        center_sigma: offset scale of the centers.
        size_sigma: offset scale of the log sizes.

    Returns:
        A dict of
        ``class_targets`` int32 ``[..., A]`` (0 background, class + 1 otherwise),
        ``offset_targets`` float32 ``[..., A, 4]`` (0 on background anchors),
        ``offset_mask`` float32 ``[..., A, 4]`` (1 on positive anchors, 0 otherwise: the L1 mask),
        ``assigned_box`` int32 ``[..., A]`` (the box index, -1 on background).

    Example:
        >>> anchors = tf.constant([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
        >>> boxes = tf.constant([[1.0, 0.0, 11.0, 10.0], [0.0, 0.0, 0.0, 0.0]])
        >>> targets = multibox_targets(anchors, boxes, tf.constant([4, -1]), tf.constant(1))
        >>> targets["class_targets"].numpy().tolist(), targets["offset_targets"][0].numpy().tolist()
        ([5, 0], [1.0, 0.0, 0.0, 0.0])
    """
    anchors, boxes = tf.cast(anchors, tf.float32), tf.cast(boxes, tf.float32)
    valid = tf.sequence_mask(num_boxes, tf.shape(boxes)[-2])
    assigned = assign_anchors(pairwise_iou(anchors, boxes), valid, iou_threshold)
    positive = assigned >= 0

    batch_dims = boxes.shape.rank - 2
    safe_index = tf.maximum(assigned, 0)
    matched_boxes = tf.gather(boxes, safe_index, batch_dims=batch_dims)
    matched_classes = tf.gather(tf.cast(classes, tf.int32), safe_index, batch_dims=batch_dims)
    # tf.where, not a product with the mask: a background anchor's padding box encodes to -inf.
    offsets = encode_offsets(anchors, matched_boxes, center_sigma, size_sigma)
    mask = tf.broadcast_to(positive[..., None], tf.shape(offsets))
    return {
        "class_targets": tf.where(positive, matched_classes + 1, 0),
        "offset_targets": tf.where(mask, offsets, 0.0),
        "offset_mask": tf.cast(mask, tf.float32),
        "assigned_box": assigned,
    }
