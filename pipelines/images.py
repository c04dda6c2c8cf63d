"""Image decoding shared by training, evaluation and serving (core TensorFlow ops only).

Models take raw pixel values in [0, 255] (float32, channels-last) and normalise inside the
model, so the served graph and the evaluation pipeline cannot disagree on preprocessing.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def decode_image(image_bytes: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """Decodes one encoded image (PNG, JPEG, GIF, BMP) to float32 pixels ``[*size, channels]``.

    Colour images are converted to ``channels`` (1 = grayscale) by the decoder; other sizes are
    resized bilinearly. Empty or corrupt bytes raise ``InvalidArgumentError`` with a message
    that says so.
    """
    not_empty = tf.debugging.assert_greater(
        tf.strings.length(image_bytes), 0, message="image_bytes is an empty string, not an encoded image"
    )
    # In a graph nothing orders the check before the decoder, whose own error ("Input is empty")
    # could otherwise win the race: the decoder's input waits for the check.
    with tf.control_dependencies([not_empty]):
        image_bytes = tf.identity(image_bytes)
    image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
    image = tf.cast(image, tf.float32)
    if tuple(size) != (None, None):
        image = tf.image.resize(image, size, method="bilinear")
    return tf.ensure_shape(image, [*size, channels])


def decode_batch(image_bytes: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """:func:`decode_image` over a batch ``[B]`` of encoded images -> ``[B, *size, channels]``."""
    return tf.map_fn(
        lambda b: decode_image(b, size, channels),
        image_bytes,
        fn_output_signature=tf.TensorSpec([*size, channels], tf.float32),
    )


def encode_png(pixels: tf.Tensor) -> tf.Tensor:
    """Encodes ``[H, W, C]`` pixel values in [0, 255] as PNG bytes (examples and tests)."""
    return tf.io.encode_png(tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8))


def image_grid(rows, scale: int = 1, gap: int = 2) -> np.ndarray:
    """Tiles rows of equally sized images into one picture, white gaps between the cells.

    Args:
        rows: a sequence of R batches ``[N, H, W, C]`` of pixels in 0..255 (arrays or tensors,
            rounded and clipped here), one picture row each.
        scale: integer nearest-neighbour enlargement (4 makes 28² digits readable).
        gap: white pixels between the cells (before scaling).

    Returns:
        ``uint8 [R·(H + gap) − gap, N·(W + gap) − gap, C]`` (times ``scale``), ready for
        :func:`encode_png`.

    Example:
        >>> x = np.zeros((2, 4, 4, 3))
        >>> grid = image_grid([x, x + 127.5, x + 255], gap=1)
        >>> grid.shape, grid.dtype, grid[:, 0, 0].tolist()   # column 0: black, white gap, grey, gap, white
        ((14, 9, 3), dtype('uint8'), [0, 0, 0, 0, 255, 128, 128, 128, 128, 255, 255, 255, 255, 255])
    """
    rows = [np.clip(np.round(np.asarray(x, dtype="float32")), 0, 255).astype(np.uint8) for x in rows]
    count, height, width, channels = rows[0].shape
    grid = np.full((len(rows) * (height + gap) - gap, count * (width + gap) - gap, channels), 255, np.uint8)
    for r, row in enumerate(rows):
        for c in range(count):
            top, left = r * (height + gap), c * (width + gap)
            grid[top : top + height, left : left + width] = row[c]
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)
