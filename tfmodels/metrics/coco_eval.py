"""Detection reports with pycocotools' ``COCOeval``, the field's reference mAP, from arrays in memory.

Spec: issue 12 "Evaluation" and DESIGN.md "Vision tasks": reports use ``COCOeval`` for
mAP@[.5:.95], mAP@0.5 and per-class AP. The notes define IoU (notes-002-part2 §4) and NMS (§6)
but not mAP [not in notes]; the definition is COCO's (Lin et al., 2014, "Microsoft COCO",
cocodataset.org/#detection-eval): AP is the mean, over IoU thresholds 0.5:0.05:0.95 and 101
recall points, of the interpolated precision, then averaged over the classes with ground truth.

Inputs use the project's element form (corner boxes ``[xmin, ymin, xmax, ymax]`` in float pixels
of their image, classes ``-1`` on padding) and the served output names. :func:`to_coco` turns
them into the COCO ground-truth dict and result list, whose boxes are ``[x, y, width, height]``.

Details that COCOeval needs and this module takes care of:

* annotation ids start at 1: COCOeval stores the matched id and treats 0 as "no match";
* ``iscrowd`` is 0 everywhere (our data has no crowd boxes), so no detection is ever ignored for
  hitting a crowd region; a ground-truth ``area`` is its box's ``width · height``;
* detections are loaded the way ``COCO.loadRes`` loads them, without ``loadRes`` itself, which
  fails on an empty result list;
* COCOeval prints progress; it is captured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Any, Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


@dataclasses.dataclass(frozen=True)
class CocoMetrics:
    """COCOeval's box results (area "all", at most 100 detections per image and class).

    Args:
        map: mAP@[.5:.95] (COCOeval ``stats[0]``).
        map_50: mAP@0.5 (``stats[1]``).
        map_75: mAP@0.75 (``stats[2]``).
        per_class: AP@[.5:.95] by class name.

    Each value is ``None`` where COCOeval has no answer (its ``-1``): a class with no ground-truth
    box, or every mAP when no image has one. Detections of such a class cost nothing.
    """

    map: float | None
    map_50: float | None
    map_75: float | None
    per_class: dict[str, float | None]


def _unpadded(boxes, classes, count, scores=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per image: rows below the image's count whose class is not ``-1``."""
    images = []
    for i, (image_boxes, image_classes) in enumerate(zip(boxes, classes, strict=True)):
        image_classes = np.asarray(image_classes).astype(np.int64)
        keep = image_classes >= 0
        if count is not None:
            keep &= np.arange(len(image_classes)) < int(np.asarray(count[i]))
        image_scores = None if scores is None else np.asarray(scores[i], np.float64)[keep]
        images.append((np.asarray(image_boxes, np.float64).reshape(-1, 4)[keep], image_classes[keep], image_scores))
    return images


def _xywh(box: np.ndarray) -> list[float]:
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    return [xmin, ymin, xmax - xmin, ymax - ymin]


def to_coco(
    groundtruth: Mapping[str, Any],
    detections: Mapping[str, Any],
    class_names: Sequence[str],
    image_ids: Sequence[int] | None = None,
) -> tuple[dict, list[dict]]:
    """The COCO ground-truth dataset dict and detection result list of a set of images.

    Args:
        groundtruth: ``boxes`` (per image ``[n, 4]`` corner boxes in pixels), ``classes`` (``[n]``,
            ``-1`` on padding) and optionally ``num_boxes`` (``[B]``): padded arrays ``[B, N, ...]``
            (the element form, batched) or per-image sequences of arrays.
        detections: ``detection_boxes``, ``detection_scores``, ``detection_classes`` and optionally
            ``num_detections``, in the same two forms (the served output names).
        class_names: the name of each class index; category ``i`` is class ``i``.
        image_ids: one id per image; default ``0, 1, ...``. COCOeval ranks tied scores by image id.

    Returns:
        ``(dataset, results)``: ``dataset`` holds ``images``, ``categories`` and ``annotations``
        (``[x, y, w, h]`` boxes, ``area``, ``iscrowd`` 0, ids from 1); ``results`` is a list of
        ``{"image_id", "category_id", "bbox", "score"}``, as ``COCO.loadRes`` expects.
    """
    gt_images = _unpadded(groundtruth["boxes"], groundtruth["classes"], groundtruth.get("num_boxes"))
    dt_images = _unpadded(
        detections["detection_boxes"], detections["detection_classes"], detections.get("num_detections"),
        scores=detections["detection_scores"],
    )
    if len(gt_images) != len(dt_images):
        raise ValueError(f"{len(gt_images)} images of ground truth but {len(dt_images)} of detections")
    image_ids = [int(i) for i in (range(len(gt_images)) if image_ids is None else image_ids)]
    annotations, results = [], []
    for image_id, (boxes, classes, _), (det_boxes, det_classes, scores) in zip(image_ids, gt_images, dt_images, strict=True):
        for box, cls in zip(boxes, classes):
            x, y, w, h = _xywh(box)
            annotation = {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls), "bbox": [x, y, w, h]}
            annotations.append({**annotation, "area": w * h, "iscrowd": 0})
        for box, cls, score in zip(det_boxes, det_classes, scores):
            results.append({"image_id": image_id, "category_id": int(cls), "bbox": _xywh(box), "score": float(score)})
    dataset = {
        "images": [{"id": image_id} for image_id in image_ids],
        "categories": [{"id": i, "name": name} for i, name in enumerate(class_names)],
        "annotations": annotations,
    }
    return dataset, results


def _coco(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _loaded_results(dataset: dict, results: list[dict]) -> dict:
    """What ``COCO.loadRes`` makes of box results (it cannot take an empty list)."""
    annotations = [
        {**result, "area": result["bbox"][2] * result["bbox"][3], "id": i + 1, "iscrowd": 0} for i, result in enumerate(results)
    ]
    return {"images": dataset["images"], "categories": dataset["categories"], "annotations": annotations}


def _answer(values) -> float | None:
    """COCOeval's summary of ``values``: the mean of the entries that are not ``-1`` (no answer)."""
    values = np.asarray(values)[np.asarray(values) > -1]
    return float(values.mean()) if values.size else None


def coco_evaluate(
    groundtruth: Mapping[str, Any],
    detections: Mapping[str, Any],
    class_names: Sequence[str],
    image_ids: Sequence[int] | None = None,
) -> CocoMetrics:
    """pycocotools' box mAP of detections against ground truth, computed in memory, quietly.

    Args:
        groundtruth: ``boxes``, ``classes`` (``-1`` on padding), optional ``num_boxes``; padded
            ``[B, N, ...]`` arrays or per-image sequences (see :func:`to_coco`). Corner boxes in
            pixels. Images without boxes count (their detections are false positives).
        detections: ``detection_boxes``, ``detection_scores``, ``detection_classes``, optional
            ``num_detections``, in the same forms. Images without detections count too.
        class_names: the name of each class index; boxes and detections of other classes are
            left out, as COCOeval leaves out unknown categories.
        image_ids: one id per image (default ``0, 1, ...``).

    Returns:
        :class:`CocoMetrics`: mAP@[.5:.95], mAP@0.5, mAP@0.75 and AP@[.5:.95] per class name.

    Example:
        >>> import numpy as np
        >>> gt = {"boxes": np.array([[[0., 0., 10., 10.]]]), "classes": np.array([[0]])}
        >>> dt = {"detection_boxes": gt["boxes"], "detection_scores": np.array([[0.9]]),
        ...       "detection_classes": np.array([[0]])}
        >>> metrics = coco_evaluate(gt, dt, ["zero", "one"])
        >>> round(metrics.map, 6), metrics.per_class["one"]  # class "one" has no ground truth
        (1.0, None)
    """
    dataset, results = to_coco(groundtruth, detections, class_names, image_ids)
    with contextlib.redirect_stdout(io.StringIO()):  # COCO and COCOeval print progress
        evaluation = COCOeval(_coco(dataset), _coco(_loaded_results(dataset, results)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # precision[T, R, K, area, maxDets]: area "all" is index 0, maxDets 100 the last.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = {class_names[c]: _answer(precision[:, :, k]) for k, c in enumerate(evaluation.params.catIds)}
    stats = evaluation.stats
    return CocoMetrics(map=_answer(stats[0]), map_50=_answer(stats[1]), map_75=_answer(stats[2]), per_class=per_class)
