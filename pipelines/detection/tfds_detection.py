"""TensorFlow Datasets detection sets (``voc/2007``, ``coco/2017``, ...) as detection elements.

TFDS stores a box as ``objects/bbox`` = ``[ymin, xmin, ymax, xmax]`` normalised by the image's
height and width; here it becomes the corner box ``[xmin, ymin, xmax, ymax]`` in float pixels of
the image (x to the right, y down, notes-002-part2.md §2, seed 002 L2054-2062), and
``objects/label`` becomes ``classes``. COCO's crowd annotations (``is_crowd``: one box around a
group of objects) are dropped: they are not single objects to detect. VOC's ``is_difficult``
objects are kept. Note that TFDS' ``voc`` subtracts 1 from all four of VOC's 1-based pixel
indices, so its boxes are one pixel smaller than :mod:`pipelines.detection.voc_xml`'s corner boxes.

Splits (train / validation / test): ``voc``'s own three splits; for ``coco``, whose ``test``
split has no annotations, 1% of ``train`` selects the checkpoint and ``validation`` (val2017, what
papers report on) is the test split; other datasets use 90/10 % of ``train`` and ``test``.
"""

from __future__ import annotations

import tensorflow as tf

from pipelines import sources as data_sources
from pipelines.splits import Splits

SPLITS = {
    "voc": ("train", "validation", "test"),
    "coco": ("train[:99%]", "train[99%:]", "validation"),
}
DEFAULT_SPLITS = ("train[:90%]", "train[90%:]", "test")


def to_element(example: dict) -> dict:
    """A TFDS detection example -> ``{image float32 [H, W, 3], boxes float32 [n, 4], classes int32 [n]}``.

    Args:
        example: a TFDS example with ``image`` and ``objects`` (``bbox``, ``label``, optionally
            ``is_crowd``).

    Returns:
        The unpadded element: corner boxes in pixels of ``image``, crowd boxes removed.

    Example:
        >>> example = {"image": tf.zeros([10, 20, 3], tf.uint8), "objects": {
        ...     "bbox": tf.constant([[0.1, 0.25, 0.5, 1.0]]), "label": tf.constant([7], tf.int64)}}
        >>> to_element(example)["boxes"].numpy().tolist()
        [[5.0, 1.0, 20.0, 5.0]]
    """
    image = tf.cast(example["image"], tf.float32)
    objects = example["objects"]
    height, width = tf.unstack(tf.cast(tf.shape(image)[:2], tf.float32))
    ymin, xmin, ymax, xmax = tf.unstack(tf.cast(objects["bbox"], tf.float32), 4, axis=-1)
    boxes = tf.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=-1)
    classes = tf.cast(objects["label"], tf.int32)
    if "is_crowd" in objects:
        single = tf.logical_not(objects["is_crowd"])
        boxes, classes = tf.boolean_mask(boxes, single), tf.boolean_mask(classes, single)
    return {"image": image, "boxes": tf.reshape(boxes, [-1, 4]), "classes": classes}


def class_names(name: str) -> list[str]:
    """The names of ``objects/label`` of TFDS dataset ``name`` (e.g. VOC's 20 classes)."""
    import tensorflow_datasets as tfds

    try:
        return list(tfds.builder(name).info.features["objects"]["label"].names)
    except Exception as err:  # unknown name, not a detection dataset, no network
        raise data_sources.DataSourceError(
            f"could not read the detection classes of TFDS dataset {name!r} ({type(err).__name__}: {err})"
        ) from err


def load(name: str, data_dir: str | None = None) -> Splits:
    """Train / validation / test splits of TFDS detection dataset ``name`` as unpadded elements.

    Args:
        name: a TFDS name with ``image`` and ``objects/{bbox,label}`` features, e.g. ``voc/2007``
            or ``coco/2017``.
        data_dir: TFDS' data folder (``None``: ``~/tensorflow_datasets``).

    Returns:
        :class:`Splits` of :func:`to_element` dicts; ``info`` holds ``source``, ``class_names``
        and ``tfds_splits``.
    """
    splits = SPLITS.get(name.split("/")[0], DEFAULT_SPLITS)
    names = class_names(name)
    datasets = data_sources.tfds_load(name, list(splits), data_dir=data_dir)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    train, validation, test = (ds.map(to_element, **parallel) for ds in datasets)
    return Splits(train, validation, test, {"source": f"tfds:{name}", "class_names": names, "tfds_splits": splits})
