"""RoI pooling (Fast R-CNN), notes-002-part2.md §8 (seed 002 L2109-2123).

The seed: split each region of interest evenly into ``n x m`` blocks and output the max of each,
so regions of any size give the same ``n x m`` grid and can be batched; the output shape is set
directly, not through window, padding and stride as in ordinary pooling. When the region does not
divide evenly the block edges are rounded, e.g. a 3x3 region pooled to 2x2 splits into blocks of
2x2, 1x2, 2x1 and 1x1 (L2116-2118).

The rounding is exactly that of ``torchvision.ops.roi_pool`` (the Caffe layer of Fast R-CNN), in
float32 like its kernel: a box corner maps to cell ``round(x * spatial_scale)`` (C ``round``,
half away from zero); the region spans ``size = max(end - start + 1, 1)`` cells (both corners
included); bin ``i`` covers cells ``[floor(i * size / n), ceil((i + 1) * size / n))`` from
``start`` (computed in integers, exactly), clipped to the map; a bin with no cell inside the map gives 0.

Written with core TF ops only (gathers and reductions, no per-RoI loop), so the number of RoIs may
be unknown in a graph and a SavedModel using it loads in stock TF-Serving.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.layers.deformable_conv import _pair


def roi_pool(features, boxes, box_indices, output_size, spatial_scale=1.0):
    """Max-pools every box of ``features`` into a fixed ``output_size`` grid of quantised bins.

    The max is separable: first over the rows of each bin row (for the columns of the box's
    window), then over the columns of each bin column, so the largest intermediate is about the
    area of the largest box times ``C``, never ``H * W`` per box. The gradient flows to the
    maximum of each bin (split evenly between tied maxima, where torchvision picks the first).

    Args:
        features: ``[B, H, W, C]`` feature map, channels last.
        boxes: ``[R, 4]`` boxes ``[x1, y1, x2, y2]`` in input-image pixels.
        box_indices: ``[R]`` int, the image of ``features`` each box belongs to.
        output_size: ``n`` or ``(n, m)``, rows and columns of the pooled grid.
        spatial_scale: feature-map cells per input pixel (1 / the backbone's stride).

    Returns:
        ``[R, n, m, C]`` in the features' dtype.

    Example:
        >>> x = tf.reshape(tf.range(16.0), [1, 4, 4, 1])           # d2l's 4x4 example
        >>> boxes = tf.constant([[0.0, 0.0, 20.0, 20.0], [0.0, 10.0, 30.0, 30.0]])
        >>> y = roi_pool(x, boxes, [0, 0], (2, 2), spatial_scale=0.1)
        >>> y[..., 0].numpy().tolist()
        [[[5.0, 6.0], [9.0, 10.0]], [[9.0, 11.0], [13.0, 15.0]]]
    """
    pooled_rows, pooled_cols = _pair(output_size, "output_size")
    features = tf.convert_to_tensor(features)
    height, width = tf.shape(features)[1], tf.shape(features)[2]
    corners = _round_half_away_from_zero(tf.cast(boxes, tf.float32) * tf.cast(spatial_scale, tf.float32))
    x1, y1, x2, y2 = tf.unstack(tf.cast(corners, tf.int32), num=4, axis=-1)
    row_start, row_end = _bin_edges(y1, y2, pooled_rows, height)  # [R, n]
    col_start, col_end = _bin_edges(x1, x2, pooled_cols, width)  # [R, m]
    lowest = tf.constant(features.dtype.min, features.dtype)

    # Rows: for every bin row, the max over its rows, read only in the box's column window.
    bin_rows, row_inside = _bin_cells(row_start, row_end, height)  # [R, n, K]
    window_start = col_start[:, :1]
    window_cols, _ = _bin_cells(window_start, col_end[:, -1:], width)  # [R, 1, Wr]
    images = tf.cast(box_indices, tf.int32)[:, None, None, None]
    flat_index = (images * height + bin_rows[..., None]) * width + window_cols[:, :, None, :]
    values = tf.gather(tf.reshape(features, [-1, tf.shape(features)[3]]), flat_index)  # [R, n, K, Wr, C]
    row_max = tf.reduce_max(tf.where(row_inside[..., None, None], values, lowest), axis=2)

    # Columns: for every bin column, the max over its columns of the window.
    bin_cols, col_inside = _bin_cells(col_start - window_start, col_end - window_start, tf.shape(row_max)[2])
    values = tf.gather(row_max, bin_cols, axis=2, batch_dims=1)  # [R, n, m, Km, C]
    pooled = tf.reduce_max(tf.where(col_inside[:, None, :, :, None], values, lowest), axis=3)

    empty = (row_end <= row_start)[:, :, None] | (col_end <= col_start)[:, None, :]
    return tf.where(empty[..., None], tf.zeros_like(pooled), pooled)


def _round_half_away_from_zero(x):
    # C's round(), as in torchvision; tf.round would round half to even (2.5 -> 2, not 3).
    return tf.sign(x) * tf.floor(tf.abs(x) + 0.5)


def _bin_edges(start, end, pooled, size):
    """Cell ranges ``[lo, hi)`` of the ``pooled`` bins of each box along one axis: ``[R, pooled]`` each."""
    # Integer floor / ceil of i * cells / pooled: exact, so eager and graph agree (in float32, the
    # graph optimiser turns "/ pooled" into "* (1 / pooled)", whose rounding moved a bin's end by a cell).
    cells = tf.maximum(end - start + 1, 1)[:, None]
    steps = tf.range(pooled, dtype=tf.int32)[None]
    lo = steps * cells // pooled + start[:, None]
    hi = ((steps + 1) * cells + pooled - 1) // pooled + start[:, None]
    return tf.clip_by_value(lo, 0, size), tf.clip_by_value(hi, 0, size)


def _bin_cells(lo, hi, size):
    """Cells of ranges ``[lo, hi)`` ``[R, p]``, padded to the longest: indices and mask ``[R, p, K]``.

    Padding indices are clamped into ``[0, size)`` so that reading them is safe; the mask drops them.
    """
    longest = tf.maximum(tf.reduce_max(hi - lo), 1)  # >= 1 keeps the reductions well defined
    cells = lo[..., None] + tf.range(longest)
    return tf.minimum(cells, size - 1), cells < hi[..., None]


@keras.saving.register_keras_serializable(package="tfmodels")
class RoIPooling(keras.layers.Layer):
    """RoI pooling layer: ``roi_pool`` (quantised bins, max per bin) as a Keras layer.

    Called as ``layer(features, boxes, box_indices)``; see ``roi_pool`` for shapes and the exact
    bin rule (torchvision's / Caffe's).

    Args:
        output_size: ``n`` or ``(n, m)``, the pooled grid (Fast R-CNN's paper default is 7x7).
        spatial_scale: feature-map cells per input pixel (1 / the backbone's stride).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Example:
        >>> layer = RoIPooling((2, 3), spatial_scale=0.25)
        >>> features = tf.random.normal([2, 8, 8, 5])
        >>> boxes = tf.constant([[0.0, 0.0, 31.0, 31.0], [4.0, 8.0, 12.0, 30.0], [0.0, 0.0, 3.0, 3.0]])
        >>> layer(features, boxes, tf.constant([0, 1, 1])).shape
        TensorShape([3, 2, 3, 5])
    """

    def __init__(self, output_size, spatial_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.output_size = _pair(output_size, "output_size")
        self.spatial_scale = float(spatial_scale)
        # Keras would autocast every float input; boxes must stay float32 (float16 rounds pixels).
        self._convert_input_args = False

    def call(self, features, boxes, box_indices):
        features = tf.cast(features, self.compute_dtype)
        return roi_pool(features, boxes, box_indices, self.output_size, self.spatial_scale)

    def compute_output_shape(self, features_shape, boxes_shape, box_indices_shape):
        return (boxes_shape[0], *self.output_size, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, spatial_scale=self.spatial_scale)
        return config
