"""Instance masks relative to their boxes, pasted back into an image.

Mask R-CNN (He et al., 2017, §3, paper default; notes-002-part2.md §11) predicts for each RoI an
``M × M`` mask (M = 28) laid over the RoI's box: mask cell ``(i, j)`` covers the box's
``1 / M``-th slice ``[x1 + j·w/M, x1 + (j+1)·w/M)`` (same in y). Its outputs are pasted back
into the image, a pixel reading the bilinear interpolation of the cells around its centre (0
outside the box).

Pixel convention: pixel ``(y, x)`` covers ``[x, x + 1) × [y, y + 1)``, its centre at
``x + 0.5``, as for the boxes. Core ops only (``tf.image.crop_and_resize``), so the paste runs in
the served graph.
"""

from __future__ import annotations

import tensorflow as tf


def paste_masks(masks: tf.Tensor, boxes: tf.Tensor, height, width) -> tf.Tensor:
    """Box-relative masks pasted into a ``height × width`` frame: ``[B, K, M, M] -> [B, K, H, W]``.

    Each pixel whose centre lies in the box reads the mask bilinearly at that position (within
    half a cell of the box's edge, where no two cell centres surround it, the edge cell); every
    other pixel is 0.

    Args:
        masks: float ``[B, K, M, M]`` box-relative masks (probabilities).
        boxes: ``[B, K, 4]`` corner boxes in pixels of the frame; empty boxes give empty masks.
        height, width: the frame's size (ints or scalar tensors).

    Returns:
        float32 ``[B, K, height, width]``.

    Example:
        >>> pasted = paste_masks(tf.ones([1, 1, 4, 4]), tf.constant([[[2.0, 1.0, 6.0, 3.0]]]), 4, 8)
        >>> pasted[0, 0].numpy().astype(int).tolist()
        [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
    """
    masks = tf.cast(masks, tf.float32)
    cells = tf.cast(tf.shape(masks)[-1], tf.float32)
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    x1, y1, x2, y2 = tf.unstack(tf.reshape(tf.cast(boxes, tf.float32), [-1, 4]), axis=-1)

    def span(start, end, pixels):
        """crop_and_resize's normalised coordinates of the first and last pixel centre in the
        padded mask, and which pixel centres lie in ``[start, end)``."""
        centres = tf.range(tf.cast(pixels, tf.float32)) + 0.5
        extent = tf.maximum(end - start, 1e-3)
        first = (0.5 - start) / extent * cells + 0.5  # cell index, +1 for the padding cell
        last = (tf.cast(pixels, tf.float32) - 0.5 - start) / extent * cells + 0.5
        inside = (centres[None] >= start[:, None]) & (centres[None] < end[:, None])
        return first / (cells + 1.0), last / (cells + 1.0), tf.cast(inside, tf.float32)

    nx1, nx2, inside_x = span(x1, x2, width)
    ny1, ny2, inside_y = span(y1, y2, height)
    flat = tf.reshape(masks, tf.stack([-1, tf.shape(masks)[-2], tf.shape(masks)[-1], 1]))
    flat = tf.pad(flat, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # the edge cells, repeated
    pasted = tf.image.crop_and_resize(
        flat, tf.stack([ny1, nx1, ny2, nx2], axis=-1), tf.range(tf.shape(flat)[0]), tf.stack([height, width]),
    )[..., 0]
    pasted *= inside_y[:, :, None] * inside_x[:, None, :]  # 0 outside the box (and for empty boxes)
    return tf.reshape(pasted, tf.concat([tf.shape(masks)[:2], [height, width]], 0))
