"""RoI Align (Mask R-CNN), notes-002-part2.md §11 (seed 002 L2151-2163).

The seed: Mask R-CNN replaces RoI pooling by RoI Align because pooling's integer rounding (a 3x3
region split into uneven 2x2 parts) is harmless for boxes but costly for per-pixel masks; RoI
Align does not round: it splits pixels and reads each part as a bilinear-weighted share of the
original pixels (L2157-2161).

The mechanics are those of ``torchvision.ops.roi_align``: the box is divided into ``n x m`` equal
bins (no rounding) and each bin is the mean of ``sampling_ratio x sampling_ratio`` bilinear
samples at the regular points ``(k + 0.5) / sampling_ratio`` of the bin (paper default: 2x2 = four
points per bin).

Coordinate frame. Boxes are ``[x1, y1, x2, y2]`` in input-image pixels, continuous coordinates in
which feature cell ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)`` after ``* spatial_scale``, i.e.
its centre is at ``(j + 0.5, i + 0.5)``. With ``aligned=True`` (paper default as corrected by
Detectron2 and torchvision) 0.5 is subtracted after scaling, so sampling at cell indices reads
cell centres; ``aligned=False`` is the original Detectron code: no shift, and box sides shorter
than one cell are stretched to one.

Boundary (torchvision's): a sample more than one cell outside the map (``y < -1`` or ``y > H``,
in cell indices) contributes 0; one within a cell of the edge reads the edge cell. This is done
with ``tf.image.crop_and_resize`` (a core op) on the map padded by one replicated edge cell on
every side, with extrapolation value 0, and its crop boxes chosen so that its grid points are
exactly the sample points; a ``sampling_ratio``-wide average pool then forms the bins. Unlike
torchvision, ``sampling_ratio`` must be >= 1 (its adaptive ``ceil(box / bins)`` samples per bin
vary per box, which a fixed crop size cannot), the gradient also flows to ``boxes`` (wrap them
in ``tf.stop_gradient`` for torchvision's behaviour), and XLA cannot compile it (no CropAndResize
kernel), so ``RoIAlign`` turns Keras' ``jit_compile="auto"`` off.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.layers.deformable_conv import _pair


def roi_align(features, boxes, box_indices, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True):
    """Bilinearly pools every box of ``features`` into a fixed ``output_size`` grid, without rounding.

    Args:
        features: ``[B, H, W, C]`` feature map, channels last.
        boxes: ``[R, 4]`` boxes ``[x1, y1, x2, y2]`` in input-image pixels (see the module's
            coordinate frame).
        box_indices: ``[R]`` int, the image of ``features`` each box belongs to.
        output_size: ``n`` or ``(n, m)``, rows and columns of the pooled grid.
        spatial_scale: feature-map cells per input pixel (1 / the backbone's stride).
        sampling_ratio: bilinear samples per bin along each axis (paper default 2).
        aligned: shift by half a cell so cell centres sit at half-integers (paper default as
            corrected in Detectron2 / torchvision); ``False`` for the original Detectron code.

    Returns:
        ``[R, n, m, C]`` in the features' dtype.

    Example:
        >>> ramp = tf.tile(tf.range(8.0)[None, :, None] + 0.5, [8, 1, 1])[None]  # f = x at centres
        >>> box = tf.constant([[1.0, 2.0, 5.0, 6.5]])
        >>> roi_align(ramp, box, [0], (2, 2))[0, ..., 0].numpy().tolist()   # x of the bin centres
        [[2.0, 4.0], [2.0, 4.0]]
    """
    pooled_rows, pooled_cols = _pair(output_size, "output_size")
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be >= 1 (adaptive sampling is not supported), got {sampling_ratio}")
    features = tf.convert_to_tensor(features)
    height, width = tf.shape(features)[1], tf.shape(features)[2]
    boxes = tf.cast(boxes, tf.float32) * tf.cast(spatial_scale, tf.float32) - (0.5 if aligned else 0.0)
    x1, y1, x2, y2 = tf.unstack(boxes, num=4, axis=-1)
    row_samples, col_samples = pooled_rows * sampling_ratio, pooled_cols * sampling_ratio
    first_row, last_row = _sample_span(y1, y2, row_samples, height, aligned)
    first_col, last_col = _sample_span(x1, x2, col_samples, width, aligned)

    # Padded cell p holds cell p - 1, so [-1, 0] and [H - 1, H] read the edge and beyond reads 0.
    padded = tf.pad(tf.cast(features, tf.float32), [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    samples = tf.image.crop_and_resize(
        padded,
        tf.stack([first_row, first_col, last_row, last_col], axis=-1),
        tf.cast(box_indices, tf.int32),
        (row_samples, col_samples),
        extrapolation_value=0.0,
    )
    pooled = tf.nn.avg_pool2d(samples, sampling_ratio, sampling_ratio, "VALID")
    return tf.cast(pooled, features.dtype)


def _sample_span(start, end, samples, size, aligned):
    """First and last of ``samples`` regular points of ``[start, end]`` (cell indices), as
    crop_and_resize box coordinates on the padded map (0 -> padded cell 0, 1 -> padded cell size + 1).
    """
    extent = end - start if aligned else tf.maximum(end - start, 1.0)
    step = extent / samples
    first, last = start + 0.5 * step, start + (samples - 0.5) * step
    padded_last_cell = tf.cast(size + 1, tf.float32)
    return (first + 1.0) / padded_last_cell, (last + 1.0) / padded_last_cell


@keras.saving.register_keras_serializable(package="tfmodels")
class RoIAlign(keras.layers.Layer):
    """RoI Align layer (Mask R-CNN): ``roi_align`` as a Keras layer.

    Called as ``layer(features, boxes, box_indices)``; see ``roi_align`` for shapes, the
    coordinate frame and the boundary rule.

    Args:
        output_size: ``n`` or ``(n, m)``, the pooled grid (Mask R-CNN: 7x7 box head, 14x14 mask head).
        spatial_scale: feature-map cells per input pixel (1 / the backbone's stride).
        sampling_ratio: bilinear samples per bin along each axis (paper default 2).
        aligned: half-cell shift (paper default as corrected in Detectron2 / torchvision).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Example:
        >>> layer = RoIAlign(7, spatial_scale=1 / 16)
        >>> features = tf.random.normal([2, 20, 20, 8])
        >>> boxes = tf.constant([[10.0, 20.0, 200.0, 120.5], [0.0, 0.0, 319.0, 319.0]])
        >>> layer(features, boxes, tf.constant([1, 0])).shape
        TensorShape([2, 7, 7, 8])
    """

    def __init__(
        self, output_size, spatial_scale: float = 1.0, sampling_ratio: int = 2, aligned: bool = True, **kwargs
    ):
        super().__init__(**kwargs)
        if sampling_ratio < 1:
            raise ValueError(f"sampling_ratio must be >= 1, got {sampling_ratio}")
        self.output_size = _pair(output_size, "output_size")
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        # Keras would autocast every float input; boxes must stay float32 (float16 rounds pixels).
        self._convert_input_args = False
        # XLA has no CropAndResize kernel: keeps Keras' jit_compile="auto" off for models using it.
        self.supports_jit = False

    def call(self, features, boxes, box_indices):
        features = tf.cast(features, self.compute_dtype)
        return roi_align(
            features, boxes, box_indices, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def compute_output_shape(self, features_shape, boxes_shape, box_indices_shape):
        return (boxes_shape[0], *self.output_size, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            output_size=self.output_size,
            spatial_scale=self.spatial_scale,
            sampling_ratio=self.sampling_ratio,
            aligned=self.aligned,
        )
        return config
