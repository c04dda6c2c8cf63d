"""Pascal VOC's label colours <-> class ids (notes-002-part2.md §16, d2l's ``VOC_COLORMAP``).

VOC stores a segmentation label as a colour PNG: class ``i`` is drawn in the colour the VOC
devkit's ``labelcolormap`` gives ``i`` (the bits of ``i`` spread over the high bits of R, G and
B: background black, aeroplane ``[128, 0, 0]``, ...), object borders in ``[224, 224, 192]``.
:func:`colors_to_classes` maps each pixel's colour through a lookup table keyed by
``r·256² + g·256 + b`` (the notes' ``voc_colormap2label``); a colour that is none of the 21
classes, the borders included, becomes :data:`~pipelines.segmentation.crop.IGNORE`. The same
palette colours the pictures of every segmentation run (:func:`palette`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines.segmentation.crop import IGNORE

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train", "tv/monitor",
)


def palette(count: int = 256) -> np.ndarray:
    """The VOC devkit's colour of each class id ``0 .. count-1``, uint8 ``[count, 3]``.

    Example:
        >>> palette(3).tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    colors = np.zeros((count, 3), np.uint8)
    for index in range(count):
        code, rgb = index, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << (7 - bit)
            code >>= 3
        colors[index] = rgb
    return colors


def _colour_keys(rgb):
    """``r·256² + g·256 + b`` of each colour (NumPy or TensorFlow, int)."""
    return (rgb[..., 0] * 256 + rgb[..., 1]) * 256 + rgb[..., 2]


def colors_to_classes(rgb: tf.Tensor, num_classes: int = len(VOC_CLASSES)) -> tf.Tensor:
    """Class ids ``int32 [H, W]`` of a VOC colour label ``[H, W, 3]``; unknown colours -> ``IGNORE``.

    Example:
        >>> colors_to_classes(tf.constant([[[128, 0, 0], [224, 224, 192]]], tf.uint8)).numpy().tolist()
        [[1, 255]]
    """
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            _colour_keys(palette(num_classes).astype(np.int32)), tf.range(num_classes, dtype=tf.int32)
        ),
        default_value=IGNORE,
    )
    return table.lookup(_colour_keys(tf.cast(rgb, tf.int32)))


def classes_to_colors(class_map: np.ndarray) -> np.ndarray:
    """The VOC colour of each pixel's class, uint8 ``[H, W, 3]`` (``IGNORE`` = 255 gets VOC's border colour).

    Example:
        >>> classes_to_colors(np.array([[0, 1, 255]])).tolist()
        [[[0, 0, 0], [128, 0, 0], [224, 224, 192]]]
    """
    return palette(256)[np.asarray(class_map).astype(np.int64) % 256]
