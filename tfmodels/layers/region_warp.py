"""R-CNN's warp: every region of an image resized to the CNN's fixed input size, notes-002-part2.md §7.

The seed (L2103): "warp each proposal region to the input size the network needs" and run the
CNN on it. R-CNN (Girshick et al., 2014, §2.1 and Appendix A, paper default) warps every
proposal, whatever its size or aspect ratio, anisotropically to 227×227, after dilating the box so
that the warp holds ``p = 16`` pixels of context around the original box.

The warp here is bilinear resampling with ``tf.image.crop_and_resize`` (a core op, so it serves in
stock TF-Serving). Coordinates are pixel corners (``[xmin, ymin, xmax, ymax]``, pixel column
``j`` spans ``[j, j + 1)``, the detection layer's convention): output pixel ``i`` of a crop with
``h`` rows samples the image at ``y = ymin + (i + 0.5) (ymax - ymin) / h``, the centre of its
share of the box, as ``tf.image.resize`` (half-pixel centres, no antialiasing) samples a whole
image. So a box with integer corners warped to its own size reads its pixels exactly, and a box
twice the crop size reads the means of 2×2 pixel blocks. Samples beyond the image's outermost
pixel centres read 0 (the letterbox's padding value), where the paper fills with the mean pixel.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfmodels.layers.deformable_conv import _pair


def warp_regions(images, boxes, crop_size, context_padding: int = 0) -> tf.Tensor:
    """Every box of every image, bilinearly warped to ``crop_size`` (module docstring).

    Args:
        images: ``[B, H, W, C]`` images.
        boxes: ``[B, N, 4]`` corner boxes ``[xmin, ymin, xmax, ymax]`` in pixels of ``images``.
        crop_size: ``h`` or ``(h, w)``: the CNN's input size.
        context_padding: ``p``: each box is first dilated about its centre by ``h / (h - 2p)``
            (and ``w / (w - 2p)``), so the box itself fills the crop's inner ``h - 2p`` rows and
            ``p`` rows of context lie on each side (R-CNN's p = 16 at 227).

    Returns:
        float32 ``[B, N, h, w, C]``.

    Example:
        >>> image = tf.reshape(tf.range(16.0), [1, 4, 4, 1])
        >>> warp_regions(image, tf.constant([[[0.0, 0.0, 4.0, 4.0]]]), 2)[0, 0, ..., 0].numpy().tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    rows, cols = _pair(crop_size, "crop_size")
    if not 0 <= 2 * context_padding < min(rows, cols):
        raise ValueError(f"context_padding must be under half the crop, got {context_padding} at {rows}x{cols}")
    images = tf.convert_to_tensor(images)
    boxes = tf.cast(boxes, tf.float32)
    shape = tf.shape(boxes)
    x1, y1, x2, y2 = tf.unstack(tf.reshape(boxes, [-1, 4]), num=4, axis=-1)
    height, width = (tf.cast(tf.shape(images)[axis], tf.float32) for axis in (1, 2))
    first_y, last_y = _sample_span(y1, y2, rows, context_padding, height)
    first_x, last_x = _sample_span(x1, x2, cols, context_padding, width)
    crops = tf.image.crop_and_resize(
        images,
        tf.stack([first_y, first_x, last_y, last_x], axis=-1),
        tf.repeat(tf.range(shape[0]), shape[1]),
        (rows, cols),
    )
    channels = images.shape[-1] if images.shape[-1] is not None else tf.shape(images)[-1]
    return tf.reshape(crops, [shape[0], shape[1], rows, cols, channels])


def _sample_span(start, end, samples: int, padding: int, size):
    """First and last sample of ``[start, end]`` (pixel corners), as crop_and_resize coordinates.

    crop_and_resize's 0 and 1 are the centres of the first and last pixel, i.e. corner
    coordinates 0.5 and ``size - 0.5``.
    """
    centre, extent = (start + end) / 2, (end - start) * samples / (samples - 2 * padding)
    step = extent / samples
    first, last = centre - extent / 2 + 0.5 * step, centre + extent / 2 - 0.5 * step
    last_pixel = tf.maximum(size - 1.0, 1.0)
    return (first - 0.5) / last_pixel, (last - 0.5) / last_pixel


@keras.saving.register_keras_serializable(package="tfmodels")
class RegionWarp(keras.layers.Layer):
    """R-CNN's warp of a fixed set of windows: ``images [B, H, W, C] -> crops [B, N, h, w, C]``.

    Called on images, it warps its own ``windows`` (the same in every image: R-CNN's proposals
    when they are fixed sliding windows); :meth:`warp` warps any boxes (the training samples).

    Args:
        windows: ``[N, 4]`` corner boxes in pixels of the images it will receive.
        crop_size: ``h`` or ``(h, w)``: the CNN's input size (R-CNN: 227).
        context_padding: pixels of context around each box in the crop (R-CNN: 16 at 227).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Example:
        >>> layer = RegionWarp([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 24.0, 40.0]], 16)
        >>> layer(tf.zeros([3, 64, 64, 3])).shape
        TensorShape([3, 2, 16, 16, 3])
    """

    def __init__(self, windows, crop_size, context_padding: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.windows = np.asarray(windows, np.float32).reshape(-1, 4)
        self.crop_size = _pair(crop_size, "crop_size")
        self.context_padding = int(context_padding)
        # Keras would autocast the images to the compute dtype; crop_and_resize takes no bfloat16,
        # and warping full-precision pixels first rounds once, not twice.
        self._convert_input_args = False
        # XLA has no CropAndResize kernel: keeps Keras' jit_compile="auto" off for models using it.
        self.supports_jit = False

    def warp(self, images, boxes) -> tf.Tensor:
        """:func:`warp_regions` of ``boxes [B, N, 4]`` at this layer's size, in its compute dtype."""
        return tf.cast(warp_regions(images, boxes, self.crop_size, self.context_padding), self.compute_dtype)

    def call(self, images):
        windows = tf.tile(tf.constant(self.windows)[None], [tf.shape(images)[0], 1, 1])
        return self.warp(images, windows)

    def compute_output_shape(self, images_shape):
        return (images_shape[0], len(self.windows), *self.crop_size, images_shape[-1])

    def get_config(self):
        return {
            **super().get_config(), "windows": self.windows.tolist(), "crop_size": self.crop_size,
            "context_padding": self.context_padding,
        }
