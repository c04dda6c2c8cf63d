"""Detection data sources (``DATA=...``) in the detection element form.

Sources:

* ``embedded``: digit scenes, real MNIST digits pasted on textured canvases
  (:mod:`pipelines.detection.digit_scenes`), offline; instance masks on request.
* ``tfds:<name>``: a TFDS detection set, ``tfds:voc/2007`` or ``tfds:coco/2017``
  (:mod:`pipelines.detection.tfds_detection`).
* ``coco:<folder>``: images with COCO-JSON annotations (:mod:`pipelines.detection.coco_json`).
* ``voc:<folder>``: a Pascal VOC folder with XML annotations (:mod:`pipelines.detection.voc_xml`).

Every split is an unbatched ``tf.data`` dataset of element dicts: ``image`` float32 ``[H, W, 3]``
in 0..255 (the image's own size: resizing to the model is the recipe's step, see
:func:`pipelines.detection.augment.resize`), ``boxes`` float32 ``[max_boxes, 4]`` corner boxes
``[xmin, ymin, xmax, ymax]`` in pixels of ``image`` padded with 0, ``classes`` int32
``[max_boxes]`` (-1 on padding), ``num_boxes`` int32, and with ``masks=True`` (digit scenes)
``masks`` uint8 ``[max_boxes, H, W]``. An image with more than ``max_boxes`` objects keeps the
``max_boxes`` largest boxes (in their original order; the smallest are dropped, since a model
learns least from them and COCO's few crowded images are the only ones affected at 100).

Folders whose annotation files name no split are split 80/10/10 % with the data seed; with a
``train`` and a ``val`` file but no ``test`` file, ``val`` is the test split (COCO's val2017 is
what papers report on) and 10% of ``train`` selects the checkpoint. Corrupt image files are
skipped with a logged warning.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines import images
from pipelines import sources as data_sources
from pipelines.detection import coco_json, digit_scenes, tfds_detection, voc_xml
from pipelines.detection.boxes import box_area
from pipelines.splits import Splits, split_indices

SOURCES = ("embedded", "tfds:*", "coco:*", "voc:*")
FRACTIONS = (0.1, 0.1)  # validation and test shares of a folder without split files
READERS = {"coco": coco_json.read, "voc": voc_xml.read}


def pad_boxes(element: dict, max_boxes: int) -> dict:
    """Pads (or cuts) an element's boxes, classes and masks to ``max_boxes`` rows.

    The first ``num_boxes`` rows (all rows when the element has no ``num_boxes``) are the
    objects; beyond ``max_boxes`` the largest boxes are kept, in their original order.

    Args:
        element: a dict with ``boxes`` ``[n, 4]``, ``classes`` ``[n]``, optionally ``num_boxes``
            and ``masks`` ``[n, H, W]``; other keys pass through.
        max_boxes: rows of the result.

    Returns:
        The element with ``boxes`` ``[max_boxes, 4]`` (0 on padding), ``classes``
        ``[max_boxes]`` (-1 on padding), ``num_boxes`` int32 and padded ``masks``.

    Example:
        >>> padded = pad_boxes({"boxes": tf.constant([[0., 0, 1, 1], [0, 0, 4, 4], [0, 0, 2, 2]]),
        ...                     "classes": tf.constant([1, 2, 3])}, 2)
        >>> padded["classes"].numpy().tolist(), int(padded["num_boxes"])
        ([2, 3], 2)
    """
    count = element.get("num_boxes", tf.shape(element["boxes"])[0])
    objects = {key: element[key][:count] for key in ("boxes", "classes", "masks") if key in element}
    keep = tf.minimum(count, max_boxes)
    largest = tf.sort(tf.math.top_k(box_area(objects["boxes"]), k=keep).indices)  # ties: lower index first
    padded = {**element, "num_boxes": tf.cast(keep, tf.int32)}
    for key, rows in objects.items():
        rows = tf.gather(rows, largest)
        padding = [[0, max_boxes - keep]] + [[0, 0]] * (rows.shape.rank - 1)
        padded[key] = tf.pad(rows, padding, constant_values=-1 if key == "classes" else 0)
    padded["boxes"] = tf.ensure_shape(padded["boxes"], [max_boxes, 4])
    padded["classes"] = tf.ensure_shape(padded["classes"], [max_boxes])
    return padded


def assign_splits(
    parts: dict[str, list], seed: int, fractions: tuple[float, float] = FRACTIONS
) -> tuple[list, list, list]:
    """Train / validation / test record lists from a reader's ``parts`` (module docstring).

    Args:
        parts: ``train`` / ``validation`` / ``test`` / ``all`` -> records.
        seed: the data seed of the seeded splits.
        fractions: validation and test shares when they are carved out of ``train`` / ``all``.

    Example:
        >>> [len(part) for part in assign_splits({"train": list(range(20)), "validation": [0, 1]}, seed=0)]
        [18, 2, 2]
    """
    if "all" in parts and len(parts) > 1 or not ({"train", "all"} & parts.keys()):
        raise data_sources.DataSourceError(f"cannot make train / validation / test splits of {sorted(parts)}")
    train = parts.get("train", parts.get("all"))
    if "validation" not in parts and "test" not in parts:
        return tuple([train[i] for i in part] for part in split_indices(len(train), fractions, seed))
    test = parts.get("test", parts.get("validation"))
    if "test" in parts and "validation" in parts:
        return train, parts["validation"], test
    order = np.random.default_rng(seed).permutation(len(train))
    carved = max(1, int(round(len(train) * fractions[0])))
    return [train[i] for i in sorted(order[carved:])], [train[i] for i in sorted(order[:carved])], test


def records_dataset(records: list[tuple[str, np.ndarray, np.ndarray]]) -> tf.data.Dataset:
    """Unpadded elements ``{image, boxes, classes}`` of ``(image path, boxes [n, 4], classes [n])`` records.

    The annotations are in memory; ``tf.data`` reads and decodes the images (PNG, JPEG, GIF, BMP;
    grey images get 3 channels). Files that fail to decode are skipped with a logged warning.
    """
    lengths = [len(classes) for _, _, classes in records]
    boxes = np.concatenate([np.zeros((0, 4), np.float32)] + [b for _, b, _ in records]).astype(np.float32)
    classes = np.concatenate([np.zeros(0, np.int32)] + [c for _, _, c in records]).astype(np.int32)
    paths = tf.constant([path for path, _, _ in records], tf.string, shape=[len(records)])
    ragged = (tf.RaggedTensor.from_row_lengths(column, lengths) for column in (boxes, classes))
    columns = (paths, *ragged)

    def read(path, boxes, classes):
        image = images.decode_image(tf.io.read_file(path), (None, None), channels=3)
        return {"image": image, "boxes": tf.reshape(boxes, [-1, 4]), "classes": tf.reshape(classes, [-1])}

    dataset = tf.data.Dataset.from_tensor_slices(columns).map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.ignore_errors(log_warning=True)


def _folder_splits(kind: str, folder: str, seed: int, class_names: list[str] | None) -> Splits:
    parts, names = READERS[kind](folder, class_names)
    records = assign_splits(parts, seed)
    sizes = dict(zip(("train", "validation", "test"), (len(part) for part in records)))
    info = {"source": f"{kind}:{folder}", "class_names": names, "sizes": sizes}
    return Splits(*(records_dataset(part) for part in records), info)


def load(
    spec: str,
    seed: int = 0,
    max_boxes: int = 100,
    num_scenes: tuple[int, int, int] = (4000, 500, 500),
    scene_config: digit_scenes.SceneConfig | None = None,
    masks: bool = False,
    class_names: list[str] | None = None,
) -> Splits:
    """Train / validation / test detection elements of the source ``spec`` (module docstring).

    Args:
        spec: ``embedded``, ``tfds:<name>``, ``coco:<folder>`` or ``voc:<folder>``.
        seed: the data seed (digit pools and scenes; splits of folders without split files).
        max_boxes: box rows per element; more objects keep the largest (module docstring).
        num_scenes: digit scenes per split (``embedded``).
        scene_config: how digit scenes look (``embedded``; ``None``: the defaults).
        masks: add instance ``masks`` (``embedded`` only; real sources give boxes).
        class_names: the run's classes: folders map names to these ids, other sources must
            have exactly these classes.

    Returns:
        :class:`Splits` of padded element dicts; ``info`` holds ``source``, ``class_names``,
        ``max_boxes`` and, where known, ``sizes``.

    Raises:
        DataSourceError: an unknown spec, masks from a real source, or classes that differ from
            the run's.
    """
    kind, argument = data_sources.parse(spec, SOURCES)
    if masks and kind != "embedded":
        raise data_sources.DataSourceError(f"instance masks come only with the embedded digit scenes, not {spec!r}")
    if kind == "embedded":
        fields = digit_scenes.DETECTION_FIELDS + (("masks",) if masks else ())
        splits = digit_scenes.splits(num_scenes, seed, scene_config or digit_scenes.SceneConfig(), fields)
    elif kind == "tfds":
        splits = tfds_detection.load(argument)
    else:
        splits = _folder_splits(kind, argument, seed, class_names)
    if class_names is not None and list(class_names) != splits.info["class_names"]:
        raise data_sources.DataSourceError(
            f"{spec} has the classes {splits.info['class_names']}, the run has {list(class_names)}"
        )

    def pad(element):
        return pad_boxes(element, max_boxes)

    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    padded = (ds.map(pad, **parallel) for ds in (splits.train, splits.validation, splits.test))
    return Splits(*padded, {**splits.info, "max_boxes": max_boxes})
