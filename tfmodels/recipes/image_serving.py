"""Serving signatures shared by every image classifier (digit models and the CNN zoo).

``serving_default`` takes encoded image bytes (``image_bytes`` string [B]: PNG, JPEG, GIF or BMP,
any size, grey or colour), decoded and resized in the graph with core ops exactly as the
evaluation data were; ``predict_pixels`` takes float32 pixels [B, H, W, C] in 0..255. Both
return ``probabilities`` [B, K], ``class_id`` [B] and ``class_name`` [B].
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from pipelines import images
from tfmodels.export.signatures import Endpoint, Serving, class_probabilities


def image_classifier_serving(
    logits_fn: Callable[[tf.Tensor], tf.Tensor],
    image_size: tuple[int, int],
    channels: int,
    class_names: list[str],
) -> Serving:
    """Both signatures around ``logits_fn(pixels) -> logits`` (the model in inference mode)."""
    height, width = image_size
    example_pixels = np.zeros((2, height, width, channels), np.float32)
    example_pixels[0, height // 4 : 3 * height // 4, width // 2 - 1 : width // 2 + 1] = 255.0  # a bar
    example_pixels[1, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 255.0  # a blob
    example_bytes = np.array([images.encode_png(p).numpy() for p in example_pixels], dtype=object)

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
            "serving_default": Endpoint(
                from_bytes, {"image_bytes": tf.TensorSpec([None], tf.string)}, {"image_bytes": example_bytes}, outputs
            ),
            "predict_pixels": Endpoint(
                from_pixels,
                {"pixels": tf.TensorSpec([None, height, width, channels], tf.float32)},
                {"pixels": example_pixels},
                outputs,
            ),
        }
    )
