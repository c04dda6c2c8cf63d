"""YOLO v1 targets: padded ground-truth boxes -> the S×S×(B·5 + C) grid, and grids -> boxes.

Spec: notes-003-004.md D2 (seed S4:L114-117): the image is divided into an S×S grid; a box belongs
to the cell that contains its centre, cell ``(⌊cy·S⌋, ⌊cx·S⌋)`` for a centre in image fractions;
x, y are the centre's offset inside that cell (0..1), w, h the box size as fractions of the image
width and height. notes-002-part2.md §14: "each cell is an anchor that predicts B boxes".

Layout of a cell's ``B·5 + C`` channels (the same as the network's, :mod:`tfmodels.models.yolo_v1`):
``[x, y, w, h, confidence] × B`` then C class probabilities. In a target the ground-truth box is
written into all B slots with confidence 1 (the loss picks which predictor is responsible for it,
the one with the highest IoU) and the classes are one-hot; cells without an object are all 0.

A cell holds one object (its class probabilities are per cell: paper, Section 2). When several
box centres fall into one cell the largest box is kept and the others get no target (the paper
does not say which; a large box is the one a model learns most from, the same reason
:func:`pipelines.detection.sources.pad_boxes` keeps the largest); ties keep the earlier box.

Core TensorFlow ops only, any leading batch dimensions: usable in ``tf.data``, in a ``train_step``
and in a served graph.
"""

from __future__ import annotations

import tensorflow as tf

from pipelines.detection.boxes import box_area, center_to_corner, corner_to_center

BOX_VALUES = 5  # x, y, w, h, confidence


def _valid(boxes: tf.Tensor, classes: tf.Tensor, num_boxes: tf.Tensor | None) -> tf.Tensor:
    """``[..., G]`` real boxes: inside ``num_boxes``, a class >= 0 and a positive area."""
    valid = (classes >= 0) & (box_area(boxes) > 0)
    if num_boxes is not None:
        valid &= tf.range(tf.shape(classes)[-1]) < tf.cast(num_boxes, tf.int32)[..., None]
    return valid


def _size_priority(boxes: tf.Tensor) -> tf.Tensor:
    """``[..., G]`` distinct priorities, larger for larger boxes (ties: the earlier box higher)."""
    order = tf.argsort(box_area(boxes), axis=-1, direction="DESCENDING", stable=True)
    rank = tf.argsort(order, axis=-1, stable=True)
    return tf.shape(boxes)[-2] - rank  # G .. 1, so every box outranks an empty slot (0)


def encode_targets(
    boxes: tf.Tensor,
    classes: tf.Tensor,
    num_boxes: tf.Tensor | None,
    image_size: tuple[int, int],
    grid_size: int,
    boxes_per_cell: int,
    num_classes: int,
) -> tf.Tensor:
    """The YOLOv1 target grid of padded ground truth (module docstring).

    Args:
        boxes: float ``[..., G, 4]`` corner boxes ``[xmin, ymin, xmax, ymax]`` in pixels of the
            model input, padded.
        classes: int ``[..., G]`` class ids, -1 on padding.
        num_boxes: int ``[...]`` boxes per image, or ``None`` (padding known from the classes).
        image_size: ``(height, width)`` of the model input in pixels.
        grid_size: S.
        boxes_per_cell: B.
        num_classes: C.

    Returns:
        float32 ``[..., S, S, B·5 + C]``.

    Example:
        >>> grid = encode_targets(tf.constant([[32.0, 96.0, 64.0, 128.0]]), tf.constant([1]), None,
        ...                       (128, 128), grid_size=4, boxes_per_cell=1, num_classes=2)
        >>> grid[3, 1].numpy().tolist()  # centre (48, 112): cell row 3, column 1
        [0.5, 0.5, 0.25, 0.25, 1.0, 0.0, 1.0]
    """
    boxes, classes = tf.convert_to_tensor(boxes, tf.float32), tf.convert_to_tensor(classes, tf.int32)
    s = grid_size
    size_xy = tf.constant([image_size[1], image_size[0]], tf.float32)
    center = corner_to_center(boxes)
    in_grid = center[..., :2] / size_xy * s  # the centre in cell units
    cell_xy = tf.clip_by_value(tf.floor(in_grid), 0, s - 1)  # a centre on the far edge stays in the last cell
    cell = tf.cast(cell_xy[..., 1] * s + cell_xy[..., 0], tf.int32)  # row-major index of the cell
    valid = _valid(boxes, classes, num_boxes)
    priority = tf.where(valid, _size_priority(boxes), 0)
    claims = tf.one_hot(cell, s * s, dtype=tf.int32) * priority[..., None]  # [..., G, S²]
    winner = tf.argmax(claims, axis=-2, output_type=tf.int32)  # [..., S²]: the cell's box
    has_object = tf.reduce_max(claims, axis=-2) > 0
    box = tf.concat([in_grid - cell_xy, center[..., 2:] / size_xy, tf.ones_like(center[..., :1])], axis=-1)
    values = tf.concat([tf.tile(box, [1] * (box.shape.rank - 1) + [boxes_per_cell]), tf.one_hot(classes, num_classes)], axis=-1)
    per_cell = tf.gather(values, winner, batch_dims=winner.shape.rank - 1)  # [..., S², B·5 + C]
    per_cell = tf.where(has_object[..., None], per_cell, 0.0)
    leading = tf.shape(per_cell)[:-2]
    return tf.reshape(per_cell, tf.concat([leading, [s, s, boxes_per_cell * BOX_VALUES + num_classes]], axis=0))


def box_channels(grid: tf.Tensor, boxes_per_cell: int) -> tf.Tensor:
    """A grid's ``[..., S, S, B·5 + C]`` box channels as ``[..., S, S, B, 5]`` (x, y, w, h, confidence).

    Example:
        >>> box_channels(tf.zeros([2, 7, 7, 30]), 2).shape
        TensorShape([2, 7, 7, 2, 5])
    """
    grid = tf.convert_to_tensor(grid, tf.float32)
    shape = tf.concat([tf.shape(grid)[:-1], [boxes_per_cell, BOX_VALUES]], axis=0)
    return tf.reshape(grid[..., : boxes_per_cell * BOX_VALUES], shape)


def grid_boxes(grid: tf.Tensor, image_size: tuple[int, int], boxes_per_cell: int) -> tf.Tensor:
    """The B boxes of every cell as corner boxes in pixels: the inverse of :func:`encode_targets`.

    Args:
        grid: float ``[..., S, S, B·5 + C]`` (or just the ``B·5`` box channels) holding x, y
            (in the cell) and w, h (of the image), as targets do; a network's √w, √h are squared first.
        image_size: ``(height, width)`` of the model input in pixels.
        boxes_per_cell: B.

    Returns:
        float32 ``[..., S, S, B, 4]`` corner boxes ``[xmin, ymin, xmax, ymax]``.

    Example:
        >>> grid = tf.constant([0.5, 0.5, 0.25, 0.25, 1.0])[None, None]
        >>> grid = tf.pad(grid, [[3, 0], [1, 2], [0, 0]])  # cell row 3, column 1 of a 4x4 grid
        >>> grid_boxes(grid, (128, 128), 1)[3, 1, 0].numpy().tolist()
        [32.0, 96.0, 64.0, 128.0]
    """
    return cell_boxes(box_channels(grid, boxes_per_cell), image_size)


def cell_boxes(per_box: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """:func:`grid_boxes` of box channels already split per box, ``[..., S, S, B, >=4]`` -> ``[..., S, S, B, 4]``."""
    per_box = tf.convert_to_tensor(per_box, tf.float32)
    s = tf.shape(per_box)[-3]
    cells = tf.cast(tf.range(s), tf.float32)
    cell_xy = tf.stack(tf.meshgrid(cells, cells), axis=-1)[:, :, None, :]  # [S, S, 1, (column, row)]
    size_xy = tf.constant([image_size[1], image_size[0]], tf.float32)
    center = (cell_xy + per_box[..., :2]) / tf.cast(s, tf.float32) * size_xy
    return center_to_corner(tf.concat([center, per_box[..., 2:4] * size_xy], axis=-1))
