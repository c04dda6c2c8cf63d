"""Segmentation data sources (``DATA=...``) as ``(image, class_map)`` elements.

Sources:

* ``embedded``: digit scenes (:mod:`pipelines.detection.digit_scenes`, the generator detection
  uses too): per pixel 0 for background and ``digit + 1`` for the topmost digit; classes
  ``background, 0, ..., 9``. Offline.
* ``tfds:oxford_iiit_pet``: the Oxford-IIIT pets with their trimaps (1 pet, 2 background,
  3 border): classes ``background, pet``, the border pixels :data:`~pipelines.segmentation.crop.IGNORE`.
  Its ``train`` split (90/10 % for training and checkpoint selection) and ``test``.
* ``voc:<folder>``: a Pascal VOC 2012 folder (``JPEGImages/``, ``SegmentationClass/`` colour
  PNGs, ``ImageSets/Segmentation/train.txt`` and ``val.txt``): VOC's 21 classes through its
  colour map, borders ignored (:mod:`pipelines.segmentation.voc_colormap`). VOC's test labels
  are not public, so ``val`` is the test split and 10% of ``train`` selects the checkpoint.
  (TFDS' ``voc`` has boxes only, no segmentation labels, so VOC segmentation is read from the
  folder the VOC tarball unpacks to.)
* ``folder:<folder>``: your data: ``images/`` (PNG / JPEG / BMP / GIF), ``labels/`` (a PNG per
  image with the same stem, one channel, a class id per pixel, 255 = ignore) and
  ``class_names.txt`` (one name per line, line ``i`` naming id ``i``); split 80/10/10 % with
  the data seed.

Every split is an unbatched dataset of ``(image float32 [H, W, 3] in 0..255, class_map int32
[H, W])`` at the image's own size; cropping to the model is the recipe's step
(:mod:`pipelines.segmentation.crop`).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from pipelines import images
from pipelines import sources as data_sources
from pipelines.detection import digit_scenes
from pipelines.detection.sources import assign_splits
from pipelines.digits import CLASS_NAMES as DIGITS
from pipelines.segmentation.crop import IGNORE
from pipelines.segmentation.voc_colormap import VOC_CLASSES, colors_to_classes
from pipelines.splits import Splits

SOURCES = ("embedded", "tfds:oxford_iiit_pet", "voc:*", "folder:*")
DIGIT_SCENE_CLASSES = ("background", *DIGITS)
PET_CLASSES = ("background", "pet")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def trimap_to_classes(trimap: tf.Tensor) -> tf.Tensor:
    """Oxford-IIIT trimap values (1 pet, 2 background, 3 border) -> class ids (0 background, 1 pet, border ignored).

    Example:
        >>> trimap_to_classes(tf.constant([[1, 2, 3, 0]], tf.uint8)).numpy().tolist()
        [[1, 0, 255, 255]]
    """
    lookup = tf.constant([IGNORE, 1, 0, IGNORE], tf.int32)  # trimap value -> class
    values = tf.cast(trimap, tf.int32)
    return tf.where(values < 4, tf.gather(lookup, tf.minimum(values, 3)), IGNORE)


def class_names(spec: str) -> list[str]:
    """The classes of source ``spec`` (index = class id), read without loading images."""
    kind, argument = data_sources.parse(spec, SOURCES)
    if kind == "embedded":
        return list(DIGIT_SCENE_CLASSES)
    if kind == "tfds":
        return list(PET_CLASSES)
    if kind == "voc":
        return list(VOC_CLASSES)
    names_file = Path(argument) / "class_names.txt"
    if not names_file.is_file():
        raise data_sources.DataSourceError(f"{names_file} is missing: a segmentation folder names its classes there, one per line")
    return [line.strip() for line in names_file.read_text().splitlines() if line.strip()]


def _digit_scenes(seed: int, num_scenes: tuple[int, int, int]) -> Splits:
    scenes = digit_scenes.splits(num_scenes, seed, fields=("image", "class_map"))

    def element(scene):
        return scene["image"], tf.cast(scene["class_map"], tf.int32)

    datasets = (split.map(element) for split in (scenes.train, scenes.validation, scenes.test))
    return Splits(*datasets, {**scenes.info, "class_names": list(DIGIT_SCENE_CLASSES)})


def _pets() -> Splits:
    parts = data_sources.tfds_load("oxford_iiit_pet", ["train[:90%]", "train[90%:]", "test"])

    def element(example):
        image = tf.cast(example["image"], tf.float32)
        return image, trimap_to_classes(example["segmentation_mask"][..., 0])

    datasets = (part.map(element, num_parallel_calls=tf.data.AUTOTUNE) for part in parts)
    return Splits(*datasets, {"source": "tfds:oxford_iiit_pet", "class_names": list(PET_CLASSES)})


def _pairs_dataset(pairs: list[tuple[str, str]], colour_labels: bool) -> tf.data.Dataset:
    """``(image, class_map)`` elements of ``(image path, label PNG path)`` pairs; unreadable files skipped with a warning."""
    paths = tf.constant([list(pair) for pair in pairs], tf.string, shape=[len(pairs), 2])

    def read(pair):
        image = images.decode_image(tf.io.read_file(pair[0]), (None, None), channels=3)
        label_png = tf.io.read_file(pair[1])
        if colour_labels:
            class_map = colors_to_classes(tf.io.decode_png(label_png, channels=3))
        else:
            class_map = tf.cast(tf.io.decode_png(label_png, channels=1)[..., 0], tf.int32)
        tf.debugging.assert_equal(tf.shape(image)[:2], tf.shape(class_map), message="image and label sizes differ")
        return image, class_map

    dataset = tf.data.Dataset.from_tensor_slices(paths).map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.ignore_errors(log_warning=True)


def _voc_parts(folder: Path) -> dict[str, list[tuple[str, str]]]:
    lists = folder / "ImageSets" / "Segmentation"
    parts = {}
    for part, file_name in (("train", "train.txt"), ("validation", "val.txt")):
        if (lists / file_name).is_file():
            names = (lists / file_name).read_text().split()
            parts[part] = [(str(folder / "JPEGImages" / f"{n}.jpg"), str(folder / "SegmentationClass" / f"{n}.png")) for n in names]
    if not parts:
        raise data_sources.DataSourceError(f"{lists} has no train.txt / val.txt: is {folder} a VOC2012 folder?")
    return parts


def _folder_parts(folder: Path) -> dict[str, list[tuple[str, str]]]:
    image_dir, label_dir = folder / "images", folder / "labels"
    if not (image_dir.is_dir() and label_dir.is_dir()):
        raise data_sources.DataSourceError(f"{folder} needs an images/ and a labels/ folder")
    pairs = [
        (str(path), str(label_dir / f"{path.stem}.png"))
        for path in sorted(image_dir.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and (label_dir / f"{path.stem}.png").is_file()
    ]
    if len(pairs) < 3:
        raise data_sources.DataSourceError(f"{folder} has {len(pairs)} image/label pairs; at least 3 are needed to split")
    return {"all": pairs}


def load(spec: str, seed: int = 0, num_scenes: tuple[int, int, int] = (2000, 200, 200)) -> Splits:
    """Train / validation / test ``(image, class_map)`` elements of source ``spec`` (module docstring).

    Args:
        spec: ``embedded``, ``tfds:oxford_iiit_pet``, ``voc:<folder>`` or ``folder:<folder>``.
        seed: the data seed (digit scenes; splits of folders).
        num_scenes: digit scenes per split (``embedded``).

    Returns:
        :class:`Splits`; ``info`` holds ``source`` and ``class_names``.

    Raises:
        DataSourceError: an unknown spec, or a folder that is not laid out as documented.
    """
    kind, argument = data_sources.parse(spec, SOURCES)
    if kind == "embedded":
        return _digit_scenes(seed, num_scenes)
    if kind == "tfds":
        return _pets()
    folder = Path(argument)
    parts = _voc_parts(folder) if kind == "voc" else _folder_parts(folder)
    records = assign_splits(parts, seed)
    datasets = (_pairs_dataset(part, colour_labels=kind == "voc") for part in records)
    sizes = dict(zip(("train", "validation", "test"), (len(part) for part in records)))
    return Splits(*datasets, {"source": spec, "class_names": class_names(spec), "sizes": sizes})
