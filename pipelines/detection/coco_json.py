"""COCO-JSON detection annotations that users hold: a folder of images beside instances JSON files.

``DATA=coco:<folder>`` reads the JSON files in ``<folder>``, ``<folder>/annotations`` or one
level of sub-folders that hold the ``images``, ``annotations`` and ``categories`` keys of COCO's
instances format (when files named ``instances_*`` exist, as in COCO's own download, only those:
captions and keypoints files are left alone). Both COCO's layout (``annotations/instances_
train2017.json`` with images in ``train2017/``) and the one-folder-per-split exports of labelling
tools (``train/_annotations.coco.json`` beside its images) work. A file's split comes from its name
(``train``, ``val``, ``test``); a file whose name says none is ``all`` (split by seed later).

An annotation's ``bbox`` ``[x, y, width, height]`` (pixels from the top-left corner) becomes the
corner box ``[x, y, x + width, y + height]`` (notes-002-part2.md §2, seed 002 L2054-2057).
Categories map to class ids ``0..K-1`` in the order of their COCO ids (or of the run's class
names, when given); ``iscrowd`` annotations (one box around a group) are dropped; images without
annotations are kept (they teach the background). The JSON is parsed once, in Python, when the
data is loaded; ``tf.data`` reads the images.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from pipelines.sources import DataSourceError

Record = tuple[str, np.ndarray, np.ndarray]  # (image path, boxes float32 [n, 4], classes int32 [n])


def split_of(path: Path) -> str:
    """``train``, ``validation``, ``test`` or ``all``, from an annotation file's name or folder.

    Example:
        >>> split_of(Path("annotations/instances_val2017.json")), split_of(Path("labels.json"))
        ('validation', 'all')
    """
    words = (path.name.lower(), path.parent.name.lower())
    for word, split in (("test", "test"), ("val", "validation"), ("train", "train")):
        if any(word in text for text in words):
            return split
    return "all"


def annotation_files(root: Path) -> list[tuple[Path, dict]]:
    """``(path, parsed content)`` of the COCO instances JSON files of ``root`` (module docstring)."""
    found = []
    for path in sorted({*root.glob("*.json"), *root.glob("*/*.json")}):
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):  # not JSON: not an annotation file
            continue
        if isinstance(content, dict) and {"images", "annotations", "categories"} <= content.keys():
            found.append((path, content))
    instances = [(path, content) for path, content in found if path.name.startswith("instances")]
    return instances or found


def _image_folder(root: Path, json_path: Path, first_file: str) -> Path:
    """Where a JSON file's images are: the first candidate folder that holds its first image."""
    stem_word = json_path.stem.rsplit("_", 1)[-1]  # instances_train2017 -> train2017
    candidates = [json_path.parent, json_path.parent / "images", root, root / "images", root / stem_word]
    for folder in candidates:
        if (folder / first_file).is_file():
            return folder
    tried = ", ".join(str(folder) for folder in candidates)
    raise DataSourceError(f"{json_path}: cannot find its image {first_file!r} in any of {tried}")


def _category_ids(files: list[dict], class_names: list[str] | None) -> tuple[dict[int, int], list[str]]:
    """COCO category id -> class id, and the class names."""
    categories = {c["id"]: c["name"] for content in files for c in content["categories"]}
    if class_names is None:
        class_names = [categories[i] for i in sorted(categories)]
    unknown = sorted(set(categories.values()) - set(class_names))
    if unknown:
        raise DataSourceError(f"categories {unknown} are not among the run's classes {class_names}")
    return {i: class_names.index(name) for i, name in categories.items()}, list(class_names)


def _records(content: dict, folder: Path, class_of: dict[int, int]) -> tuple[list[Record], list[str]]:
    """``(records, missing image paths)`` of one parsed JSON file."""
    objects: dict[int, list] = {image["id"]: [] for image in content["images"]}
    for annotation in content["annotations"]:
        if not annotation.get("iscrowd", 0):
            x, y, w, h = annotation["bbox"]
            objects[annotation["image_id"]].append((x, y, x + w, y + h, class_of[annotation["category_id"]]))
    records, missing = [], []
    for image in content["images"]:
        path = folder / image["file_name"]
        if not path.is_file():
            missing.append(str(path))
            continue
        rows = np.array(objects[image["id"]], np.float32).reshape(-1, 5)
        records.append((str(path), rows[:, :4], rows[:, 4].astype(np.int32)))
    return records, missing


def read(root: str | Path, class_names: list[str] | None = None) -> tuple[dict[str, list[Record]], list[str]]:
    """Parses a COCO-JSON folder into records per split.

    Args:
        root: the folder (module docstring).
        class_names: the run's classes (fix the ids); ``None``: the categories in COCO id order.

    Returns:
        ``(parts, class_names)``: ``parts`` maps ``train`` / ``validation`` / ``test`` / ``all``
        to lists of ``(image path, boxes float32 [n, 4] corner pixels, classes int32 [n])``.
        Images named in the JSON but missing on disk are skipped with a warning.

    Example:
        >>> parts, names = read("my_coco_export")   # doctest: +SKIP
    """
    root = Path(root)
    files = annotation_files(root) if root.is_dir() else []
    if not files:
        raise DataSourceError(f"no COCO instances JSON file (with images, annotations, categories) in {root}")
    class_of, class_names = _category_ids([content for _, content in files], class_names)
    parts: dict[str, list[Record]] = {}
    for path, content in files:
        if not content["images"]:
            continue
        folder = _image_folder(root, path, content["images"][0]["file_name"])
        records, missing = _records(content, folder, class_of)
        if missing:
            warnings.warn(f"{path}: skipped {len(missing)} missing image(s), e.g. {missing[0]}", stacklevel=2)
        split = split_of(path.relative_to(root))
        if split in parts:
            named = [str(other) for other, _ in files]
            raise DataSourceError(f"{root}: more than one annotation file for the {split} split: {named}")
        parts[split] = records
    return parts, class_names
