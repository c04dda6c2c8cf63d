"""Bounding-box arithmetic in core TensorFlow ops: conversions, area, IoU and GIoU, clipping, offsets.

Boxes are corner boxes ``[xmin, ymin, xmax, ymax]`` (x grows to the right, y downwards, origin at
the top-left: notes-002-part2.md §2, seed 002 L2054-2062) in float pixels of the image they belong
to; center boxes are ``[center_x, center_y, width, height]``. Every function takes any number of
leading dimensions (``[..., 4]``), uses no Python loops over tensors, and so runs inside
``tf.data``, ``tf.function`` with unknown shapes and a served graph.
"""

from __future__ import annotations

import tensorflow as tf

# Offset normalisation of d2l's ``offset_boxes`` (notes-002-part2.md §3 [REF d2l]: mu = 0,
# sigma_x = sigma_y = 0.1, sigma_w = sigma_h = 0.2): it scales the targets to roughly unit variance.
CENTER_SIGMA = 0.1
SIZE_SIGMA = 0.2


def corner_to_center(boxes: tf.Tensor) -> tf.Tensor:
    """Corner boxes ``[xmin, ymin, xmax, ymax]`` -> center boxes ``[cx, cy, w, h]``.

    notes-002-part2.md §2 (seed 002 L2054-2057: the two box representations).

    Args:
        boxes: ``[..., 4]`` corner boxes.

    Returns:
        ``[..., 4]`` center boxes, same dtype.

    Example:
        >>> corner_to_center(tf.constant([60.0, 45.0, 378.0, 516.0])).numpy().tolist()  # the dog
        [219.0, 280.5, 318.0, 471.0]
    """
    boxes = tf.convert_to_tensor(boxes)
    top_left, bottom_right = boxes[..., :2], boxes[..., 2:]
    return tf.concat([(top_left + bottom_right) / 2, bottom_right - top_left], axis=-1)


def center_to_corner(boxes: tf.Tensor) -> tf.Tensor:
    """Center boxes ``[cx, cy, w, h]`` -> corner boxes ``[xmin, ymin, xmax, ymax]``.

    notes-002-part2.md §2 (seed 002 L2054-2057); the inverse of :func:`corner_to_center`.

    Args:
        boxes: ``[..., 4]`` center boxes.

    Returns:
        ``[..., 4]`` corner boxes, same dtype.

    Example:
        >>> center_to_corner(tf.constant([219.0, 280.5, 318.0, 471.0])).numpy().tolist()
        [60.0, 45.0, 378.0, 516.0]
    """
    boxes = tf.convert_to_tensor(boxes)
    center, half_size = boxes[..., :2], boxes[..., 2:] / 2
    return tf.concat([center - half_size, center + half_size], axis=-1)


def box_area(boxes: tf.Tensor) -> tf.Tensor:
    """Areas of corner boxes; an inverted side (``xmax < xmin``) counts as empty, not negative.

    Args:
        boxes: ``[..., 4]`` corner boxes.

    Returns:
        ``[...]`` areas (0 for the all-zero padding boxes of the element form).

    Example:
        >>> box_area(tf.constant([[0.0, 0.0, 2.0, 3.0], [5.0, 5.0, 4.0, 9.0]])).numpy().tolist()
        [6.0, 0.0]
    """
    boxes = tf.convert_to_tensor(boxes)
    size = tf.maximum(boxes[..., 2:] - boxes[..., :2], 0)
    return size[..., 0] * size[..., 1]


def pairwise_iou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Intersection over union of every box in ``boxes1`` with every box in ``boxes2``.

    ``IoU(A, B) = |A n B| / (|A| + |B| - |A n B|)`` (notes-002-part2.md §4, seed 002 L2076-2078).
    Leading dimensions broadcast, so anchors ``[A, 4]`` against a batch of ground truth
    ``[B, G, 4]`` give ``[B, A, G]``. Two empty boxes (e.g. padding) have IoU 0, not NaN.

    Args:
        boxes1: ``[..., N, 4]`` corner boxes.
        boxes2: ``[..., M, 4]`` corner boxes, leading dimensions broadcastable with ``boxes1``'s.

    Returns:
        ``[..., N, M]`` IoU values in [0, 1].

    Example:
        >>> pairwise_iou(tf.constant([[0.0, 0.0, 2.0, 2.0]]), tf.constant([[1.0, 1.0, 3.0, 3.0]])).numpy()
        array([[0.14285715]], dtype=float32)
    """
    intersection, union, _ = _pairwise_extents(boxes1, boxes2)
    return tf.math.divide_no_nan(intersection, union)


def pairwise_generalized_iou(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """Generalized IoU of every box in ``boxes1`` with every box in ``boxes2``.

    ``GIoU(A, B) = IoU(A, B) - |C \\ (A u B)| / |C|`` with C the smallest box enclosing A and B
    (Rezatofighi et al. 2019; DETR's box loss: notes-001.md §28, seed 001 L781-790). It lies in
    (-1, 1]: 1 for identical boxes, IoU when one box holds the other, and it keeps falling as
    disjoint boxes move apart, where IoU stays 0, so ``1 - GIoU`` still has a gradient there.
    Leading dimensions broadcast as in :func:`pairwise_iou`; a pair whose enclosing box is empty
    (two empty boxes at one point) has GIoU 0, not NaN.

    Args:
        boxes1: ``[..., N, 4]`` corner boxes.
        boxes2: ``[..., M, 4]`` corner boxes, leading dimensions broadcastable with ``boxes1``'s.

    Returns:
        ``[..., N, M]`` GIoU values in (-1, 1].

    Example:
        >>> a = tf.constant([[0.0, 0.0, 2.0, 2.0]])
        >>> others = tf.constant([[1.0, 1.0, 3.0, 3.0], [3.0, 0.0, 4.0, 1.0]])
        >>> pairwise_generalized_iou(a, others).numpy().astype(float).round(4).tolist()  # 1/7 - 2/9; 0 - 3/8
        [[-0.0794, -0.375]]
    """
    intersection, union, enclosure = _pairwise_extents(boxes1, boxes2)
    return tf.math.divide_no_nan(intersection, union) - tf.math.divide_no_nan(enclosure - union, enclosure)


def _pairwise_extents(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``[..., N, M]`` areas of the intersection, the union and the enclosing box of every pair."""
    boxes1, boxes2 = tf.convert_to_tensor(boxes1), tf.convert_to_tensor(boxes2)
    pairs1, pairs2 = boxes1[..., :, None, :], boxes2[..., None, :, :]

    def area(top_left, bottom_right):  # 0 where the sides are inverted (disjoint boxes)
        size = tf.maximum(bottom_right - top_left, 0)
        return size[..., 0] * size[..., 1]

    intersection = area(tf.maximum(pairs1[..., :2], pairs2[..., :2]), tf.minimum(pairs1[..., 2:], pairs2[..., 2:]))
    union = box_area(boxes1)[..., :, None] + box_area(boxes2)[..., None, :] - intersection
    enclosure = area(tf.minimum(pairs1[..., :2], pairs2[..., :2]), tf.maximum(pairs1[..., 2:], pairs2[..., 2:]))
    return intersection, union, enclosure


def clip_boxes(boxes: tf.Tensor, image_size) -> tf.Tensor:
    """Clips corner boxes to the image ``[0, width] x [0, height]``.

    Args:
        boxes: ``[..., 4]`` corner boxes in pixels.
        image_size: ``(height, width)`` of the image, Python numbers or scalar tensors (e.g.
            ``tf.shape(image)[:2]``).

    Returns:
        ``[..., 4]`` clipped boxes, same dtype. A box wholly outside the image collapses to an
        empty box on the border (area 0).

    Example:
        >>> clip_boxes(tf.constant([-5.0, 10.0, 50.0, 300.0]), (200, 40)).numpy().tolist()
        [0.0, 10.0, 40.0, 200.0]
    """
    boxes = tf.convert_to_tensor(boxes)
    size = tf.cast(image_size, boxes.dtype)
    upper = tf.stack([size[1], size[0], size[1], size[0]])
    return tf.clip_by_value(boxes, tf.zeros_like(upper), upper)


def encode_offsets(
    anchors: tf.Tensor, boxes: tf.Tensor, center_sigma: float = CENTER_SIGMA, size_sigma: float = SIZE_SIGMA
) -> tf.Tensor:
    """Offsets of ``boxes`` from ``anchors``, d2l's ``offset_boxes``.

    For anchor (xa, ya, wa, ha) and box (xb, yb, wb, hb) in center form, the offsets are
    ``((xb - xa) / wa / sc, (yb - ya) / ha / sc, log(wb / wa) / ss, log(hb / ha) / ss)``
    with ``sc = 0.1``, ``ss = 0.2`` (notes-002-part2.md §3 [REF d2l]). Unlike d2l, no epsilon is
    added inside the log, so :func:`decode_offsets` inverts this exactly (up to rounding); an
    empty box therefore gets ``-inf`` size offsets: mask such rows out (``tf.where``, not a
    multiplication, which would give NaN).

    Args:
        anchors: ``[..., 4]`` corner boxes with positive width and height.
        boxes: ``[..., 4]`` corner boxes, broadcastable with ``anchors``.
        center_sigma: scale of the center offsets.
        size_sigma: scale of the log size ratios.

    Returns:
        ``[..., 4]`` offsets ``[dx, dy, dw, dh]``.

    Example:
        >>> encode_offsets(tf.constant([0.0, 0.0, 10.0, 10.0]), tf.constant([1.0, 0.0, 11.0, 10.0])).numpy()
        array([1., 0., 0., 0.], dtype=float32)
    """
    anchors, boxes = corner_to_center(anchors), corner_to_center(boxes)
    center = (boxes[..., :2] - anchors[..., :2]) / anchors[..., 2:] / center_sigma
    size = tf.math.log(boxes[..., 2:] / anchors[..., 2:]) / size_sigma
    return tf.concat([center, size], axis=-1)


def decode_offsets(
    anchors: tf.Tensor, offsets: tf.Tensor, center_sigma: float = CENTER_SIGMA, size_sigma: float = SIZE_SIGMA
) -> tf.Tensor:
    """Corner boxes from offsets to ``anchors``, d2l's ``offset_inverse``.

    The inverse of :func:`encode_offsets` (notes-002-part2.md §3 [REF d2l]): ``xb = xa + dx *
    wa * sc``, ``wb = wa * exp(dw * ss)``, likewise for y and h.

    Args:
        anchors: ``[..., 4]`` corner boxes.
        offsets: ``[..., 4]`` offsets ``[dx, dy, dw, dh]``, broadcastable with ``anchors``.
        center_sigma: scale of the center offsets.
        size_sigma: scale of the log size ratios.

    Returns:
        ``[..., 4]`` corner boxes.

    Example:
        >>> decode_offsets(tf.constant([0.0, 0.0, 10.0, 10.0]), tf.constant([1.0, 0.0, 0.0, 0.0])).numpy()
        array([ 1.,  0., 11., 10.], dtype=float32)
    """
    anchors, offsets = corner_to_center(anchors), tf.convert_to_tensor(offsets)
    center = anchors[..., :2] + offsets[..., :2] * center_sigma * anchors[..., 2:]
    size = anchors[..., 2:] * tf.exp(offsets[..., 2:] * size_sigma)
    return center_to_corner(tf.concat([center, size], axis=-1))
