"""Pascal VOC folders that users hold: ``JPEGImages/`` beside one ``Annotations/<id>.xml`` per image.

``DATA=voc:<folder>`` reads ``<folder>/Annotations/*.xml`` (VOC's XML, also what labelling tools
such as labelImg write) with ``xml.etree`` when the data is loaded; ``tf.data`` reads the images
from ``<folder>/JPEGImages``. The splits are the id lists ``ImageSets/Main/{train,val,test}.txt``
where they exist (``train``, ``validation``, ``test``), else all annotated images form ``all``
(split by seed later).

VOC's ``<bndbox>`` holds 1-based, inclusive pixel indices: ``xmin=1, xmax=3`` is the first three
pixel columns. As a corner box in pixel-corner coordinates that is ``[xmin - 1, ymin - 1, xmax,
ymax]`` (notes-002-part2.md §2, seed 002 L2054-2057). (TFDS' ``voc`` subtracts 1 from all four,
giving boxes one pixel smaller.) Classes are the sorted object names found (for VOC itself the 20
classes in TFDS' order) or the run's class names; ``difficult`` objects are kept.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import IO

import numpy as np

from pipelines.sources import DataSourceError

SPLIT_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}


def parse_annotation(path: str | Path | IO[str]) -> tuple[str, list[tuple[str, list[float]]]]:
    """``(image file name, [(class name, corner box), ...])`` of one VOC XML file.

    Args:
        path: the XML file (a path or an open file); a missing ``<filename>`` defaults to
            ``<file stem>.jpg``.

    Returns:
        The image's file name and its objects, boxes ``[xmin - 1, ymin - 1, xmax, ymax]``.

    Example:
        >>> import io
        >>> parse_annotation(io.StringIO("<annotation><filename>a.jpg</filename><object><name>dog</name>"
        ...     "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>"))
        ('a.jpg', [('dog', [0.0, 1.0, 3.0, 4.0])])
    """
    root = ElementTree.parse(path).getroot()
    filename = root.findtext("filename") or f"{Path(path).stem}.jpg"
    objects = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        xmin, ymin, xmax, ymax = (float(box.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax"))
        objects.append((obj.findtext("name").strip(), [xmin - 1, ymin - 1, xmax, ymax]))
    return filename, objects


def _split_ids(root: Path, annotated: list[str]) -> dict[str, list[str]]:
    """Image ids per split from ``ImageSets/Main``, or all ``annotated`` ids as ``all``."""
    folder = root / "ImageSets" / "Main"
    parts = {}
    for split, name in SPLIT_FILES.items():
        if (folder / name).is_file():
            lines = (folder / name).read_text().split("\n")
            parts[split] = [line.split()[0] for line in lines if line.strip()]
    return parts or {"all": annotated}


def read(
    root: str | Path, class_names: list[str] | None = None
) -> tuple[dict[str, list[tuple[str, np.ndarray, np.ndarray]]], list[str]]:
    """Parses a Pascal VOC folder into records per split.

    Args:
        root: the folder holding ``Annotations/`` and ``JPEGImages/``.
        class_names: the run's classes (fix the ids); ``None``: the sorted object names found.

    Returns:
        ``(parts, class_names)``: ``parts`` maps ``train`` / ``validation`` / ``test`` / ``all``
        to lists of ``(image path, boxes float32 [n, 4] corner pixels, classes int32 [n])``.
        Listed ids without an XML file or image are skipped with a warning.

    Example:
        >>> parts, names = read("VOCdevkit/VOC2012")   # doctest: +SKIP
    """
    root = Path(root)
    xml_files = sorted((root / "Annotations").glob("*.xml"))
    if not xml_files:
        raise DataSourceError(f"no Pascal VOC annotations in {root / 'Annotations'}")
    parsed = {path.stem: parse_annotation(path) for path in xml_files}
    found = sorted({name for _, objects in parsed.values() for name, _ in objects})
    class_names = list(found if class_names is None else class_names)
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise DataSourceError(f"{root}: object names {unknown} are not among the run's classes {class_names}")
    parts, skipped = {}, []
    for split, ids in _split_ids(root, list(parsed)).items():
        parts[split] = []
        for image_id in ids:
            path = root / "JPEGImages" / parsed[image_id][0] if image_id in parsed else None
            if path is None or not path.is_file():
                skipped.append(image_id)
                continue
            objects = parsed[image_id][1]
            boxes = np.array([box for _, box in objects], np.float32).reshape(-1, 4)
            classes = np.array([class_names.index(name) for name, _ in objects], np.int32)
            parts[split].append((str(path), boxes, classes))
    if skipped:
        message = f"{root}: skipped {len(skipped)} image id(s) without an XML file or image, e.g. {skipped[0]}"
        warnings.warn(message, stacklevel=2)
    return parts, class_names
