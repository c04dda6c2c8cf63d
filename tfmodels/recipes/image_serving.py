"""Serving signatures shared by every image classifier (digit models and the CNN zoo).

``serving_default`` takes encoded image bytes (``image_bytes`` string [B]: PNG, JPEG, GIF or BMP,
any size, grey or colour), decoded and resized in the graph with core ops exactly as the
evaluation data were; ``predict_pixels`` takes float32 pixels [B, H, W, C] in 0..255. Both
return ``probabilities`` [B, K], ``class_id`` [B] and ``class_name`` [B].

The export's examples (:func:`image_classifier_examples`) are test images: the pixels of the
test pipeline, encoded as 8-bit PNG as any stored image is, and the evaluation path's answers
(the model called on those pixels, softmax and argmax in NumPy).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from pipelines import images
from tfmodels.export.signatures import Endpoint, Serving, ServingExample, class_probabilities


def image_classifier_serving(
    logits_fn: Callable[[tf.Tensor], tf.Tensor],
    image_size: tuple[int, int],
    channels: int,
    class_names: list[str],
) -> Serving:
    """Both signatures around ``logits_fn(pixels) -> logits`` (the model in inference mode)."""
    height, width = image_size

    def from_pixels(pixels):
        return class_probabilities(logits_fn(pixels), class_names)

    def from_bytes(image_bytes):
        return from_pixels(images.decode_batch(image_bytes, image_size, channels))

    k = len(class_names)
    outputs = {
        "probabilities": f"float32 [B, {k}]: softmax over the classes",
        "class_id": "int32 [B]: the most likely class",
        "class_name": "string [B]: the most likely class's name",
    }
    return Serving(
        {
            "serving_default": Endpoint(from_bytes, {"image_bytes": tf.TensorSpec([None], tf.string)}, outputs),
            "predict_pixels": Endpoint(
                from_pixels, {"pixels": tf.TensorSpec([None, height, width, channels], tf.float32)}, outputs
            ),
        }
    )


def image_classifier_examples(
    logits_fn: Callable[[tf.Tensor], tf.Tensor], test: tf.data.Dataset, class_names: list[str], count: int = 4
) -> dict[str, ServingExample]:
    """``count`` test images as PNG bytes and as pixels, with the evaluation path's answers.

    Args:
        logits_fn: the model in inference mode, ``pixels -> logits``.
        test: the unbatched test split, ``(pixels [H, W, C] in 0..255, label)`` elements.
        class_names: the run's class names.
    """
    pixels = next(iter(test.map(lambda x, *_: x).batch(count))).numpy()
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.float32)  # what an 8-bit image file holds
    logits = np.asarray(logits_fn(tf.constant(pixels)), np.float64)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    class_id = probabilities.argmax(-1).astype(np.int32)
    expected = {
        "probabilities": probabilities.astype(np.float32),
        "class_id": class_id,
        "class_name": np.array([class_names[i].encode() for i in class_id], object),
    }
    encoded = np.array([images.encode_png(p).numpy() for p in pixels], dtype=object)
    return {
        "serving_default": ServingExample({"image_bytes": encoded}, expected),
        "predict_pixels": ServingExample({"pixels": pixels}, expected),
    }
