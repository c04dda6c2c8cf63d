"""CenterNet training targets: Gaussian centre heatmaps, and size and offset at the centre pixels.

Spec: notes-002-part2.md §15 (seed 002 L2194-2198: boxes become per-pixel labels, "is this pixel
the centre of a box"), with the paper's encoding (Zhou et al. 2019, "Objects as Points", §3;
paper default): a box with centre ``p`` (input pixels) has its key point at ``p~ = floor(p / R)``
on the stride-``R`` output map. Its class channel of the heatmap gets the Gaussian
``exp(-((x - p~x)^2 + (y - p~y)^2) / (2 sigma^2))`` (exactly 1 at ``p~``); where two Gaussians
of a class meet, the larger value is kept. The size target is the box's ``(w, h) / R`` and the
offset target ``p / R - p~`` (in [0, 1)), both read only at ``p~``.

The Gaussian's extent is CornerNet's size-adaptive radius rule, which CenterNet cites for
sigma: the largest ``r`` such that any box whose corners both move by up to ``r`` still has IoU
``>= min_overlap`` with the ground truth (three cases: a shifted box, a shrunk box, a grown box;
each a quadratic in ``r``). CornerNet's paper sets ``min_overlap`` 0.3. The CornerNet/CenterNet
reference code solves the quadratics with a misplaced formula (``(b + sqrt(b^2 - 4ac)) / 2``,
CornerNet issue #110), giving larger radii, and CenterNet's code uses 0.7; here the quadratics
are solved as stated (as mmdetection does) with the paper's 0.3. As in the reference code, the
radius is computed from the box size in output pixels rounded up, then floored to an integer;
``sigma = (2 r + 1) / 6`` and the Gaussian is cut to the ``(2 r + 1)^2`` window.

Core TensorFlow ops only (dense Gaussians per box and a segment max per class), so the encoder
runs in ``tf.data`` or inside a model's ``train_step`` on a batch.
"""

from __future__ import annotations

import tensorflow as tf

MIN_OVERLAP = 0.3  # CornerNet's t (paper default)
OUTPUT_STRIDE = 4  # CenterNet's R (paper default)


def gaussian_radius(height: tf.Tensor, width: tf.Tensor, min_overlap: float = MIN_OVERLAP) -> tf.Tensor:
    """CornerNet's radius: how far both corners may move while the box keeps ``min_overlap`` IoU.

    With ``t = min_overlap`` the three cases give (smallest positive root of each):

    * shifted (one corner in, one out): ``(w - r)(h - r) / (2wh - (w - r)(h - r)) = t``;
    * shrunk (both corners in): ``(w - 2r)(h - 2r) / (wh) = t``;
    * grown (both corners out): ``wh / ((w + 2r)(h + 2r)) = t``.

    Args:
        height: box heights, any shape.
        width: box widths, the same shape.
        min_overlap: the IoU ``t`` every such box keeps.

    Returns:
        float32 radii (not rounded), the minimum of the three cases.

    Example:
        >>> round(float(gaussian_radius(10.0, 10.0, 0.5)), 4)  # shrunk case: 4r^2 - 40r + 50 = 0
        1.4645
    """
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    t = tf.constant(min_overlap, tf.float32)

    def smaller_root(a, b, c):  # of a r^2 + b r + c = 0, with b < 0 < c
        return (-b - tf.sqrt(tf.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)

    shifted = smaller_root(1.0, -(h + w), w * h * (1 - t) / (1 + t))
    shrunk = smaller_root(4.0, -2 * (h + w), (1 - t) * w * h)
    b_grown, c_grown = 2 * t * (h + w), (t - 1) * w * h  # 4t r^2 + b r + c = 0, c <= 0: the positive root
    grown = (-b_grown + tf.sqrt(b_grown * b_grown - 16 * t * c_grown)) / (8 * t)
    return tf.minimum(tf.minimum(shifted, shrunk), grown)


def _splats(center_x, center_y, radius, output_size) -> tf.Tensor:
    """``[B, G, h, w]``: each box's Gaussian (1 at its integer centre), cut to its window."""
    sigma = (2.0 * radius + 1.0) / 6.0
    columns = tf.range(output_size[1], dtype=tf.float32)
    rows = tf.range(output_size[0], dtype=tf.float32)
    dx = columns[None, None, :] - center_x[..., None]  # [B, G, w]
    dy = rows[None, None, :] - center_y[..., None]  # [B, G, h]
    two_sigma_sq = (2.0 * sigma * sigma)[..., None]
    gx = tf.where(tf.abs(dx) <= radius[..., None], tf.exp(-dx * dx / two_sigma_sq), 0.0)
    gy = tf.where(tf.abs(dy) <= radius[..., None], tf.exp(-dy * dy / two_sigma_sq), 0.0)
    return gy[..., :, None] * gx[..., None, :]


def _class_max(splats: tf.Tensor, classes: tf.Tensor, valid: tf.Tensor, num_classes: int) -> tf.Tensor:
    """``[B, h, w, C]``: per class, the largest of its boxes' splats (0 where it has none)."""
    batch, boxes = tf.shape(splats)[0], tf.shape(splats)[1]
    slots = num_classes + 1  # one spare slot per example collects the padding boxes
    slot = tf.where(valid, classes, num_classes) + tf.range(batch)[:, None] * slots
    flat = tf.reshape(splats, tf.concat([[batch * boxes], tf.shape(splats)[2:]], axis=0))
    per_class = tf.math.unsorted_segment_max(flat, tf.reshape(slot, [-1]), batch * slots)
    per_class = tf.reshape(per_class, tf.concat([[batch, slots], tf.shape(splats)[2:]], axis=0))[:, :num_classes]
    return tf.maximum(tf.transpose(per_class, [0, 2, 3, 1]), 0.0)  # empty classes hold the lowest float


def centernet_targets(
    boxes: tf.Tensor,
    classes: tf.Tensor,
    num_boxes: tf.Tensor,
    num_classes: int,
    output_size: tuple[int, int],
    stride: int = OUTPUT_STRIDE,
    min_overlap: float = MIN_OVERLAP,
) -> dict[str, tf.Tensor]:
    """CenterNet targets of one example or a batch in the detection element form.

    Args:
        boxes: ``[..., G, 4]`` padded corner boxes ``[xmin, ymin, xmax, ymax]`` in input pixels
            (``[B, G, 4]`` for a batch).
        classes: int ``[..., G]`` classes in ``[0, num_classes)`` (-1 on padding).
        num_boxes: int ``[...]`` real boxes per example.
        num_classes: heatmap channels C.
        output_size: ``(h, w)`` of the output map (the input size / ``stride``).
        stride: the output stride R.
        min_overlap: the radius rule's IoU (:func:`gaussian_radius`).

    Returns:
        A dict of
        ``heatmap`` float32 ``[..., h, w, C]`` (1 exactly at each key point),
        ``size`` float32 ``[..., G, 2]`` (width, height in output pixels),
        ``offset`` float32 ``[..., G, 2]`` (x, y of ``p / R - p~``),
        ``indices`` int32 ``[..., G]`` (the key point's row-major pixel, ``y * w + x``),
        ``mask`` float32 ``[..., G]`` (1 on real boxes with positive width and height);
        size, offset and indices are 0 where the mask is.

    Example:
        >>> targets = centernet_targets(tf.constant([[8.0, 4.0, 24.0, 20.0]]), tf.constant([1]),
        ...                             tf.constant(1), num_classes=2, output_size=(8, 8))
        >>> int(targets["indices"][0]), targets["size"][0].numpy().tolist()  # centre (16, 12) / 4
        (28, [4.0, 4.0])
        >>> float(targets["heatmap"][3, 4, 1]), targets["offset"][0].numpy().tolist()
        (1.0, [0.0, 0.0])
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if boxes.shape.rank == 2:  # one example: a batch of one
        one = centernet_targets(boxes[None], classes[None], tf.reshape(num_boxes, [1]), num_classes, output_size, stride, min_overlap)
        return {key: value[0] for key, value in one.items()}
    classes = tf.cast(classes, tf.int32)
    out_h, out_w = output_size
    scaled = boxes / float(stride)
    size = scaled[..., 2:] - scaled[..., :2]  # (w, h)
    center = (scaled[..., :2] + scaled[..., 2:]) / 2.0
    valid = tf.sequence_mask(num_boxes, tf.shape(boxes)[1]) & (size[..., 0] > 0) & (size[..., 1] > 0) & (classes >= 0)
    upper = tf.constant([out_w - 1, out_h - 1], tf.float32)
    key_point = tf.clip_by_value(tf.floor(center), 0.0, upper)
    radius = tf.floor(tf.maximum(gaussian_radius(tf.math.ceil(size[..., 1]), tf.math.ceil(size[..., 0]), min_overlap), 0.0))
    splats = _splats(key_point[..., 0], key_point[..., 1], radius, (out_h, out_w))
    mask = tf.cast(valid, tf.float32)
    key_int = tf.cast(key_point, tf.int32)
    return {
        "heatmap": _class_max(splats, classes, valid, num_classes),
        "size": size * mask[..., None],
        "offset": (center - key_point) * mask[..., None],
        "indices": tf.where(valid, key_int[..., 1] * out_w + key_int[..., 0], 0),
        "mask": mask,
    }
