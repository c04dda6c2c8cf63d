"""Joint crops of an image and its label map: crop, never resize, so labels stay class ids.

notes-002-part2.md §16 (seed 002 L2200-2229): rescaling a label map would have to interpolate
class ids, which mixes them (a pixel between class 1 and class 3 is not class 2), so the notes
crop image and label at the same random window instead, and drop images smaller than the crop
(d2l's ``VOCSegDataset.filter``). Evaluation pads a smaller image (pixels 0, labels
:data:`IGNORE`) and takes the centre window, so every pixel of an image up to the window's size
counts and padding never does.

Elements are ``(image float32 [H, W, 3], class_map int32 [H, W])``.
"""

from __future__ import annotations

import tensorflow as tf

IGNORE = 255  # label of pixels no loss or metric counts (VOC's object borders, trimap borders, padding)


def at_least(size: tuple[int, int]):
    """A ``Dataset.filter`` predicate: the image is at least ``size = (height, width)`` (notes' filter).

    Example:
        >>> keep = at_least((4, 4))
        >>> bool(keep(tf.zeros([5, 3, 3]), tf.zeros([5, 3], tf.int32)))
        False
    """

    def keep(image, class_map):
        shape = tf.shape(class_map)
        return tf.logical_and(shape[0] >= size[0], shape[1] >= size[1])

    return keep


def random_crop(seed: tf.Tensor, image: tf.Tensor, class_map: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """The same random ``size`` window of ``image`` and ``class_map`` (stateless: one window per ``seed``).

    Args:
        seed: int ``[2]``, a stateless random seed.
        image: ``[H, W, C]`` with ``H, W`` at least ``size`` (filter first with :func:`at_least`).
        class_map: ``[H, W]`` class ids.
        size: ``(height, width)`` of the window.

    Returns:
        ``(image [h, w, C], class_map [h, w])``: the window, every window position equally likely.

    Example:
        >>> image, labels = tf.zeros([6, 8, 3]), tf.reshape(tf.range(48), [6, 8])
        >>> crop, crop_labels = random_crop(tf.constant([1, 2]), image, labels, (2, 3))
        >>> crop.shape, crop_labels.shape
        (TensorShape([2, 3, 3]), TensorShape([2, 3]))
    """
    shape = tf.shape(class_map)
    tf.debugging.assert_greater_equal(shape, tf.constant(size), message="image smaller than the crop: filter it first")
    spare = shape - tf.constant(size)  # the window's top-left corner ranges over 0..spare
    uniform = tf.random.stateless_uniform([2], seed)  # [0, 1)
    corner = tf.cast(tf.floor(uniform * tf.cast(spare + 1, tf.float32)), tf.int32)
    top, left = corner[0], corner[1]
    cropped_image = image[top : top + size[0], left : left + size[1]]
    cropped_map = class_map[top : top + size[0], left : left + size[1]]
    return (
        tf.ensure_shape(cropped_image, [size[0], size[1], image.shape[-1]]),
        tf.ensure_shape(cropped_map, [size[0], size[1]]),
    )


def centre_window(image: tf.Tensor, class_map: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """The centre ``size`` window of an image padded to at least ``size`` (pixels 0, labels :data:`IGNORE`).

    Example:
        >>> image, labels = centre_window(tf.ones([2, 2, 3]), tf.ones([2, 2], tf.int32), (4, 4))
        >>> labels.numpy().tolist()[0], labels.numpy().tolist()[1]
        ([255, 255, 255, 255], [255, 1, 1, 255])
    """
    shape = tf.shape(class_map)
    target = tf.constant(size)
    missing = tf.maximum(target - shape, 0)
    before = missing // 2
    padding = tf.stack([before, missing - before], axis=1)  # [[top, bottom], [left, right]]
    image = tf.pad(image, tf.concat([padding, [[0, 0]]], axis=0))
    class_map = tf.pad(class_map, padding, constant_values=IGNORE)
    corner = (tf.shape(class_map) - target) // 2
    top, left = corner[0], corner[1]
    return (
        tf.ensure_shape(image[top : top + size[0], left : left + size[1]], [size[0], size[1], image.shape[-1]]),
        tf.ensure_shape(class_map[top : top + size[0], left : left + size[1]], [size[0], size[1]]),
    )
