"""Image decoding shared by training, evaluation and serving (core TensorFlow ops only).

Models take raw pixel values in [0, 255] (float32, channels-last) and normalise inside the
model, so the served graph and the evaluation pipeline cannot disagree on preprocessing.
"""

from __future__ import annotations

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
