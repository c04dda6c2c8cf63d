"""Multibox anchors: ``n + m - 1`` boxes centred on every pixel of a feature map (d2l's rule).

notes-002-part2.md §3 [REF d2l] (seed 002 L2070-2074, L2175: "for each pixel generate multiple
anchors centred on it"): with sizes ``s_1..s_n`` in (0, 1] and aspect ratios ``r_1..r_m`` each
pixel gets the anchors ``(s_i, r_1)`` for every i and ``(s_1, r_j)`` for j >= 2, of width
``s * sqrt(r)`` and height ``s / sqrt(r)`` in units of the image height.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def anchors_per_pixel(num_sizes: int, num_ratios: int) -> int:
    """``n + m - 1``: anchors per feature-map pixel for ``n`` sizes and ``m`` ratios.

    Args:
        num_sizes: number of anchor sizes ``n``.
        num_ratios: number of aspect ratios ``m``.

    Returns:
        The number of anchors centred on each pixel (notes-002-part2.md §3 [REF d2l]).

    Example:
        >>> anchors_per_pixel(3, 3)  # sizes [0.75, 0.5, 0.25], ratios [1, 2, 0.5]
        5
    """
    return num_sizes + num_ratios - 1


def multibox_anchors(
    feature_size, image_size, sizes: Sequence[float], ratios: Sequence[float], normalized: bool = False
) -> tf.Tensor:
    """Anchors centred on every pixel of an ``h x w`` feature map laid over an image.

    Pixel ``(i, j)`` of the feature map covers the image cell whose centre is
    ``((j + 0.5) * W / w, (i + 0.5) * H / h)``; every anchor on it shares that centre. An anchor of
    size ``s`` and ratio ``r`` is ``s * sqrt(r) * H`` wide and ``s / sqrt(r) * H`` high, so ratio
    1 gives a square in pixels and ``r`` is width / height (notes-002-part2.md §3 [REF d2l]).
    d2l's code scales the width by the *feature map's* ``h / w`` instead of the image's ``H / W``;
    both agree whenever the two have the same aspect ratio (every d2l and SSD use), and ours keeps
    ratio-1 anchors square when they do not.

    Order: pixels row-major, then per pixel ``(s_1, r_1), ..., (s_n, r_1), (s_1, r_2), ...,
    (s_1, r_m)``. This is the channels-last flatten order of a ``[h, w, A * k]`` prediction map
    reshaped to ``[h * w * A, k]``.

    Args:
        feature_size: ``(h, w)`` of the feature map, Python ints or scalar int tensors.
        image_size: ``(H, W)`` of the image in pixels, numbers or scalar tensors.
        sizes: anchor sizes ``s_1..s_n`` as fractions of the image height, a sequence or 1-D
            tensor; ``s_1`` is the one paired with every ratio.
        ratios: aspect ratios ``r_1..r_m`` (width / height); ``r_1`` is the one paired with every
            size.
        normalized: ``False`` (default): image pixels, the box convention of the element form.
            ``True``: fractions of the image, x / W and y / H, as d2l's ``multibox_prior``.

    Returns:
        float32 ``[h * w * (n + m - 1), 4]`` corner boxes ``[xmin, ymin, xmax, ymax]``; they may
        extend past the image border (not clipped, as in d2l).

    Example:
        >>> anchors = multibox_anchors((2, 2), (100, 100), sizes=[0.5, 0.25], ratios=[1.0])
        >>> anchors.shape
        TensorShape([8, 4])
        >>> anchors[:2].numpy().tolist()  # pixel (0, 0), centre (25, 25)
        [[0.0, 0.0, 50.0, 50.0], [12.5, 12.5, 37.5, 37.5]]
    """
    sizes = tf.cast(sizes, tf.float32)
    ratios = tf.cast(ratios, tf.float32)
    image_height, image_width = _pair(image_size)
    feature_height, feature_width = _pair(feature_size)

    # (s_i, r_1) for every size, then (s_1, r_j) for the other ratios: n + m - 1 pairs.
    num_sizes, num_ratios = tf.size(sizes), tf.size(ratios)
    pair_sizes = tf.concat([sizes, tf.fill([num_ratios - 1], sizes[0])], axis=0)
    pair_ratios = tf.concat([tf.fill([num_sizes], ratios[0]), ratios[1:]], axis=0)
    half_width = pair_sizes * tf.sqrt(pair_ratios) * image_height / 2
    half_height = pair_sizes / tf.sqrt(pair_ratios) * image_height / 2
    extents = tf.stack([-half_width, -half_height, half_width, half_height], axis=-1)  # [A, 4]

    center_y = (tf.range(feature_height) + 0.5) * image_height / feature_height
    center_x = (tf.range(feature_width) + 0.5) * image_width / feature_width
    center_y, center_x = tf.meshgrid(center_y, center_x, indexing="ij")
    centers = tf.reshape(tf.stack([center_x, center_y, center_x, center_y], axis=-1), [-1, 1, 4])
    anchors = tf.reshape(centers + extents, [-1, 4])
    if normalized:
        anchors /= tf.stack([image_width, image_height, image_width, image_height])
    return anchors


def _pair(size) -> tuple[tf.Tensor, tf.Tensor]:
    """``(height, width)`` as two float32 scalars, from numbers or tensors."""
    size = tf.cast(size, tf.float32)
    return size[0], size[1]
