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
from pycocotools import mask as mask_utils
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


def _unpadded(boxes, classes, count, scores=None, masks=None) -> list[tuple]:
    """Per image: ``(boxes, classes, scores, masks)`` of the rows below the image's count whose
    class is not ``-1``; ``scores`` and ``masks`` are ``None`` when not given."""
    images = []
    for i, (image_boxes, image_classes) in enumerate(zip(boxes, classes, strict=True)):
        image_classes = np.asarray(image_classes).astype(np.int64)
        keep = image_classes >= 0
        if count is not None:
            keep &= np.arange(len(image_classes)) < int(np.asarray(count[i]))
        image_scores = None if scores is None else np.asarray(scores[i], np.float64)[keep]
        image_masks = None if masks is None else [_rle(mask) for mask in np.asarray(masks[i])[keep]]
        images.append((np.asarray(image_boxes, np.float64).reshape(-1, 4)[keep], image_classes[keep], image_scores, image_masks))
    return images


def _rle(mask: np.ndarray) -> dict:
    """COCO's run-length encoding of a binary ``[H, W]`` mask (counts as text, so it is JSON-ready)."""
    encoded = mask_utils.encode(np.asfortranarray(np.asarray(mask) > 0, dtype=np.uint8))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


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

    With instance masks (``groundtruth["masks"]`` and ``detections["detection_masks"]``, per
    object ``[H, W]`` in the image's pixels, nonzero inside), every annotation and result also
    gets its ``segmentation`` (RLE), and a ground-truth ``area`` is its mask's pixel count.

    Returns:
        ``(dataset, results)``: ``dataset`` holds ``images``, ``categories`` and ``annotations``
        (``[x, y, w, h]`` boxes, ``area``, ``iscrowd`` 0, ids from 1); ``results`` is a list of
        ``{"image_id", "category_id", "bbox", "score"}``, as ``COCO.loadRes`` expects.
    """
    gt_images = _unpadded(groundtruth["boxes"], groundtruth["classes"], groundtruth.get("num_boxes"),
                          masks=groundtruth.get("masks"))
    dt_images = _unpadded(
        detections["detection_boxes"], detections["detection_classes"], detections.get("num_detections"),
        scores=detections["detection_scores"], masks=detections.get("detection_masks"),
    )
    if len(gt_images) != len(dt_images):
        raise ValueError(f"{len(gt_images)} images of ground truth but {len(dt_images)} of detections")
    image_ids = [int(i) for i in (range(len(gt_images)) if image_ids is None else image_ids)]
    annotations, results = [], []
    for image_id, gt_image, dt_image in zip(image_ids, gt_images, dt_images, strict=True):
        boxes, classes, _, masks = gt_image
        for k, (box, cls) in enumerate(zip(boxes, classes)):
            x, y, w, h = _xywh(box)
            annotation = {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls), "bbox": [x, y, w, h]}
            if masks is not None:
                annotation["segmentation"] = masks[k]
            area = w * h if masks is None else float(mask_utils.area(masks[k]))
            annotations.append({**annotation, "area": area, "iscrowd": 0})
        det_boxes, det_classes, scores, det_masks = dt_image
        for k, (box, cls, score) in enumerate(zip(det_boxes, det_classes, scores)):
            result = {"image_id": image_id, "category_id": int(cls), "bbox": _xywh(box), "score": float(score)}
            results.append(result if det_masks is None else {**result, "segmentation": det_masks[k]})
    images = [{"id": image_id} for image_id in image_ids]
    if groundtruth.get("masks") is not None:  # COCO reads a mask's frame from its image
        for image, image_masks in zip(images, groundtruth["masks"], strict=True):
            image["height"], image["width"] = (int(v) for v in np.shape(image_masks)[-2:])
    dataset = {
        "images": images,
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
    """What ``COCO.loadRes`` makes of box or mask results (it cannot take an empty list)."""
    def area(result):
        return float(mask_utils.area(result["segmentation"])) if "segmentation" in result else result["bbox"][2] * result["bbox"][3]

    annotations = [{**result, "area": area(result), "id": i + 1, "iscrowd": 0} for i, result in enumerate(results)]
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
    iou_type: str = "bbox",
) -> CocoMetrics:
    """pycocotools' box (or mask) mAP of detections against ground truth, computed in memory, quietly.

    Args:
        groundtruth: ``boxes``, ``classes`` (``-1`` on padding), optional ``num_boxes``; padded
            ``[B, N, ...]`` arrays or per-image sequences (see :func:`to_coco`). Corner boxes in
            pixels. Images without boxes count (their detections are false positives).
        detections: ``detection_boxes``, ``detection_scores``, ``detection_classes``, optional
            ``num_detections``, in the same forms. Images without detections count too.
        class_names: the name of each class index; boxes and detections of other classes are
            left out, as COCOeval leaves out unknown categories.
        image_ids: one id per image (default ``0, 1, ...``).
        iou_type: ``bbox`` (box AP) or ``segm`` (mask AP: both sides need masks, see :func:`to_coco`).

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
        evaluation = COCOeval(_coco(dataset), _coco(_loaded_results(dataset, results)), iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # precision[T, R, K, area, maxDets]: area "all" is index 0, maxDets 100 the last.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = {class_names[c]: _answer(precision[:, :, k]) for k, c in enumerate(evaluation.params.catIds)}
    stats = evaluation.stats
    return CocoMetrics(map=_answer(stats[0]), map_50=_answer(stats[1]), map_75=_answer(stats[2]), per_class=per_class)
