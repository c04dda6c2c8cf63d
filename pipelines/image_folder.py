"""Users' own images: a folder with one sub-folder per class (like torchvision's ImageFolder).

``DATA=folder:/path/to/photos`` reads ``photos/<class>/<image>`` files (PNG, JPEG, GIF, BMP).
A new run's classes are the sorted sub-folder names (ImageFolder's ``class_to_idx``); the run
saves them, and from then on ids come from those saved names (``class_names=``), not from the
folder's current contents: a class folder added or removed later shifts no id. Images in a
folder of a class the run does not know are skipped with a warning that names the folder (a
model cannot score a class it never learnt; the classes it knows are still read). Every file is
decoded once up front: files that do not decode are counted, named in a warning and skipped,
so one corrupt file cannot stop a training run hours in.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines import images
from pipelines.sources import DataSourceError
from pipelines.splits import Splits, split_indices

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def _class_folders(root: Path) -> list[str]:
    if not root.is_dir():
        raise DataSourceError(f"image folder {root} does not exist")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_names(root: str | Path) -> list[str]:
    """The sorted class sub-folder names of ``root``: a new run's classes."""
    root = Path(root)
    class_names = _class_folders(root)
    if len(class_names) < 2:
        raise DataSourceError(f"{root} needs at least two class sub-folders, found {class_names}")
    return class_names


def scan(
    root: str | Path, class_names: list[str] | None = None
) -> tuple[list[str], list[int], list[str], list[str]]:
    """Lists ``(paths, labels, class_names, skipped)`` of a class-per-sub-folder tree.

    Args:
        root: the folder with one sub-folder per class.
        class_names: the run's classes: label ``i`` is the sub-folder named ``class_names[i]``.
            Sub-folders of other classes are skipped with a warning. ``None``: the sorted
            sub-folders of ``root`` (:func:`scan_class_names`).

    Example:
        >>> paths, labels, classes, skipped = scan("photos")   # doctest: +SKIP
    """
    root = Path(root)
    if class_names is None:
        class_names = scan_class_names(root)
    folders = _class_folders(root)
    unknown = [name for name in folders if name not in class_names]
    if unknown:
        warnings.warn(
            f"{root}: skipped the images of class folder(s) {unknown}: the run's classes are {class_names}, "
            "and a model cannot score a class it was not trained on",
            stacklevel=2,
        )
    paths, labels, skipped = [], [], []
    for label, name in enumerate(class_names):
        if name not in folders:
            continue
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
            except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
                skipped.append(str(path))
                continue
            paths.append(str(path))
            labels.append(label)
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} image file(s) that do not decode: {shown}", stacklevel=2)
    if not paths:
        raise DataSourceError(f"no decodable images of the classes {class_names} under {root}")
    return paths, labels, class_names, skipped


def load(
    root: str | Path,
    image_size: tuple[int, int],
    seed: int = 0,
    fractions=(0.1, 0.1),
    class_names: list[str] | None = None,
) -> Splits:
    """Seeded train / validation / test splits of ``(pixels [H, W, 3] in 0..255, label)``.

    ``class_names``: the run's classes, which fix the ids (see :func:`scan`).
    """
    paths, labels, class_names, skipped = scan(root, class_names)
    paths_arr, labels_arr = np.array(paths), np.array(labels, np.int32)
    parts = split_indices(len(paths), fractions, seed)

    def decode(path, label):
        return images.decode_image(tf.io.read_file(path), image_size, channels=3), label

    def dataset(idx):
        ds = tf.data.Dataset.from_tensor_slices((paths_arr[idx], labels_arr[idx]))
        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)

    sizes = dict(zip(("train", "validation", "test"), (len(p) for p in parts)))
    info = {"source": f"folder:{root}", "class_names": class_names, "sizes": sizes, "skipped_files": len(skipped)}
    return Splits(*(dataset(p) for p in parts), info)
