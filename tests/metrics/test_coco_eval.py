"""pycocotools COCOeval wrapper (issue 12, "Evaluation"): hand-worked answers and the wrapper vs
pycocotools' own file-based path.

Hand-worked case (class "a", one image, two ground-truth boxes A = [0,0,10,10], B = [20,0,30,10]):
detections d1 = [0,0,10,8.2] (score .9, IoU with A 82/100 = 0.82), d2 = [50,50,60,60] (.8, apart),
d3 = [20,0,30,6.4] (.7, IoU with B 0.64). COCO sorts by score, matches greedily per IoU threshold,
and averages the interpolated precision at the 101 recall points 0, 0.01, ..., 1:

* t ∈ {.5, .55, .6}: TP FP TP → recall .5 .5 1, precision 1 .5 2/3; points 0..0.5 (51) get 1,
  points .51..1 (50) get 2/3 → AP_t = (51 + 100/3) / 101 = 253/303;
* t ∈ {.65, .7, .75, .8}: TP FP FP → the 51 points up to .5 get 1, the rest 0 → AP_t = 51/101;
* t ∈ {.85, .9, .95}: no TP → 0.

mAP@[.5:.95] = (3·253/303 + 4·51/101) / 10 = 457/1010, mAP@0.5 = 253/303, mAP@0.75 = 51/101.

Equal IoUs (COCOeval's loop keeps the *last* of equally good boxes): boxes A = [0,0,10,10],
B = [2,0,12,10]; d1 = [1,0,11,10] (.9) has IoU 90/110 with both, d2 = B (.8) has IoU 1 with B and
80/120 = 0.667 with A. d1 takes B wherever it matches, so d2 is left with A:

* t ≤ .65 (4 thresholds): d1 → B, d2 → A: AP_t = 1;
* t ∈ {.7, .75, .8}: d1 → B, d2 misses (0.667 < t): 51 points at precision 1 → 51/101;
* t ≥ .85: d1 misses, d2 → B: FP TP, 51 points at precision 1/2 → 25.5/101.

mAP = (4 + 3·51/101 + 3·25.5/101) / 10 = 633.5/1010 (taking the first box instead, d1 → A and
d2 → B would give 1 at t ≤ .8).
"""

import doctest
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tfmodels.metrics import coco_eval
from tfmodels.metrics.coco_eval import coco_evaluate, to_coco

CLASS_NAMES = ["a", "b", "c", "d"]
C = len(CLASS_NAMES)

HAND_GT = {
    "boxes": np.array([[[0, 0, 10, 10], [20, 0, 30, 10]], [[0, 0, 0, 0], [0, 0, 0, 0]]], "float32"),
    "classes": np.array([[0, 0], [-1, -1]]),  # the second image has no boxes
}
HAND_DT = {
    "detection_boxes": np.array(
        [[[0, 0, 10, 8.2], [50, 50, 60, 60], [20, 0, 30, 6.4], [0, 0, 10, 10]], np.zeros((4, 4))], "float32"
    ),
    "detection_scores": np.array([[0.9, 0.8, 0.7, 0.6], [0, 0, 0, 0]], "float32"),
    # A class-"b" detection: "b" has no ground truth, so it counts nowhere; image 2 has none.
    "detection_classes": np.array([[0, 0, 0, 1], [-1, -1, -1, -1]]),
}
HAND_MAP, HAND_MAP_50, HAND_MAP_75 = 457 / 1010, 253 / 303, 51 / 101

TIE_GT = {"boxes": np.array([[[0, 0, 10, 10], [2, 0, 12, 10]]], "float32"), "classes": np.array([[0, 0]])}
TIE_DT = {
    "detection_boxes": np.array([[[1, 0, 11, 10], [2, 0, 12, 10]]], "float32"),
    "detection_scores": np.array([[0.9, 0.8]], "float32"),
    "detection_classes": np.array([[0, 0]]),
}
TIE_MAP = 633.5 / 1010


def random_scenes(seed, images=12, max_boxes=6, max_detections=15, num_classes=4, tied_scores=False):
    """Padded ground truth and detections, as a detector's output looks: jittered copies of the
    boxes (some with the wrong class), duplicates, stray boxes; some images with no boxes, some
    with no detections; padding by class -1 or by a count."""
    rng = np.random.default_rng(seed)

    def corner_boxes(shape):
        xy, wh = rng.uniform(0, 100, shape + (2,)), rng.uniform(4, 40, shape + (2,))
        return np.concatenate([xy, xy + wh], -1)

    num_boxes = rng.integers(0, max_boxes + 1, images)
    num_boxes[:2] = 0, max_boxes
    boxes = corner_boxes((images, max_boxes))
    classes = np.where(np.arange(max_boxes) < num_boxes[:, None], rng.integers(0, num_classes, (images, max_boxes)), -1)
    source = (rng.random((images, max_detections)) * np.maximum(num_boxes, 1)[:, None]).astype(int)  # a real box
    copied = np.take_along_axis(boxes, source[..., None], 1)
    size = np.concatenate([copied[..., 2:] - copied[..., :2]] * 2, -1)
    shape = (images, max_detections)
    copies = copied + size * rng.normal(0, rng.uniform(0.01, 0.15, shape + (1,)), shape + (4,))
    is_copy = rng.random(shape + (1,)) < 0.7
    det_boxes = np.where(is_copy, copies, corner_boxes(shape))
    det_classes = np.where(rng.random(shape) < 0.8, np.take_along_axis(classes, source, 1), rng.integers(0, num_classes, shape))
    det_classes = np.where(det_classes < 0, rng.integers(0, num_classes, shape), det_classes)  # copies of padding
    num_detections = rng.integers(0, max_detections + 1, images)
    num_detections[:3] = max_detections, 0, max_detections
    scores = np.clip(rng.random((images, max_detections)) + 0.4 * is_copy[..., 0], 0, 1)  # copies score higher
    if tied_scores:
        scores = np.round(scores, 1)
    groundtruth = {"boxes": boxes.astype("float32"), "classes": classes, "num_boxes": num_boxes}
    detections = {
        "detection_boxes": det_boxes.astype("float32"),
        "detection_scores": scores.astype("float32"),
        # combined_non_max_suppression style: rows past the count hold class 0, score 0.
        "detection_classes": np.where(np.arange(max_detections) < num_detections[:, None], det_classes, 0),
        "num_detections": num_detections,
    }
    return groundtruth, detections


def pycocotools_reference(groundtruth, detections, num_classes, folder):
    """mAP, mAP@0.5 and per-class AP from pycocotools alone: JSON files, ``COCO(path)``, ``loadRes``.

    Written without :mod:`coco_eval`, to guard it.
    """
    def xywh(box):
        return [float(box[0]), float(box[1]), float(box[2]) - float(box[0]), float(box[3]) - float(box[1])]

    images, annotations, results = [], [], []
    for i in range(len(groundtruth["boxes"])):
        images.append({"id": i})
        for box, cls in zip(groundtruth["boxes"][i][: groundtruth["num_boxes"][i]], groundtruth["classes"][i]):
            bbox = xywh(box)
            annotation = {"id": len(annotations) + 1, "image_id": i, "category_id": int(cls), "bbox": bbox}
            annotations.append({**annotation, "area": bbox[2] * bbox[3], "iscrowd": 0})
        count = detections["num_detections"][i]
        keys = ("detection_boxes", "detection_scores", "detection_classes")
        for box, score, cls in zip(*(detections[k][i][:count] for k in keys)):
            results.append({"image_id": i, "category_id": int(cls), "bbox": xywh(box), "score": float(score)})
    categories = [{"id": c, "name": str(c)} for c in range(num_classes)]
    (folder / "gt.json").write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    (folder / "dt.json").write_text(json.dumps(results))
    coco_gt = COCO(str(folder / "gt.json"))
    evaluation = COCOeval(coco_gt, coco_gt.loadRes(str(folder / "dt.json")), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = [precision[:, :, k].mean() if (precision[:, :, k] > -1).all() else None for k in range(num_classes)]
    return evaluation.stats[0], evaluation.stats[1], per_class


def test_perfect_detections_score_one():
    groundtruth, _ = random_scenes(0)
    detections = {
        "detection_boxes": groundtruth["boxes"],
        "detection_scores": np.ones(groundtruth["classes"].shape, "float32"),
        "detection_classes": groundtruth["classes"],
        "num_detections": groundtruth["num_boxes"],
    }
    metrics = coco_evaluate(groundtruth, detections, CLASS_NAMES + ["no boxes"])
    for value in (metrics.map, metrics.map_50, metrics.map_75, *list(metrics.per_class.values())[:4]):
        assert value == pytest.approx(1.0, abs=1e-12)
    assert metrics.per_class["no boxes"] is None


def test_hand_worked_case():
    metrics = coco_evaluate(HAND_GT, HAND_DT, CLASS_NAMES)
    assert metrics.map == pytest.approx(HAND_MAP, abs=1e-12)
    assert metrics.map_50 == pytest.approx(HAND_MAP_50, abs=1e-12)
    assert metrics.map_75 == pytest.approx(HAND_MAP_75, abs=1e-12)
    assert metrics.per_class["a"] == pytest.approx(HAND_MAP, abs=1e-12)
    assert metrics.per_class["b"] is None and metrics.per_class["c"] is None


def test_equal_ious_go_to_the_last_box():
    assert coco_evaluate(TIE_GT, TIE_DT, CLASS_NAMES).map == pytest.approx(TIE_MAP, abs=1e-12)


def test_per_image_lists_equal_padded_arrays():
    lists_gt = {"boxes": [HAND_GT["boxes"][0], np.zeros((0, 4))], "classes": [[0, 0], []]}
    lists_dt = {
        "detection_boxes": [HAND_DT["detection_boxes"][0], []],
        "detection_scores": [HAND_DT["detection_scores"][0], []],
        "detection_classes": [HAND_DT["detection_classes"][0], []],
    }
    assert coco_evaluate(lists_gt, lists_dt, CLASS_NAMES) == coco_evaluate(HAND_GT, HAND_DT, CLASS_NAMES)


def test_no_detections_and_no_ground_truth():
    no_detections = {key: value[:, :0] for key, value in HAND_DT.items()}
    metrics = coco_evaluate(HAND_GT, no_detections, CLASS_NAMES)
    assert (metrics.map, metrics.map_50, metrics.per_class["a"], metrics.per_class["b"]) == (0.0, 0.0, 0.0, None)
    no_boxes = {"boxes": HAND_GT["boxes"], "classes": np.full((2, 2), -1)}
    metrics = coco_evaluate(no_boxes, HAND_DT, CLASS_NAMES)
    assert (metrics.map, metrics.map_50, metrics.map_75) == (None, None, None)
    assert set(metrics.per_class.values()) == {None}


def test_to_coco_boxes_ids_and_padding():
    groundtruth = {"boxes": HAND_GT["boxes"], "classes": HAND_GT["classes"], "num_boxes": [1, 0]}  # count drops box B
    dataset, results = to_coco(groundtruth, HAND_DT, CLASS_NAMES, image_ids=[7, 9])
    assert dataset["images"] == [{"id": 7}, {"id": 9}]
    assert dataset["categories"][1] == {"id": 1, "name": "b"}
    assert dataset["annotations"] == [
        {"id": 1, "image_id": 7, "category_id": 0, "bbox": [0.0, 0.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0}
    ]
    assert [r["category_id"] for r in results] == [0, 0, 0, 1]
    assert results[2]["bbox"] == pytest.approx([20.0, 0.0, 10.0, 6.4]) and results[2]["image_id"] == 7
    assert results[0]["score"] == pytest.approx(0.9)


def test_mismatched_image_counts_raise():
    with pytest.raises(ValueError, match="images"):
        coco_evaluate(HAND_GT, {key: value[:1] for key, value in HAND_DT.items()}, CLASS_NAMES)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_wrapper_equals_pycocotools_file_path(seed, tmp_path, capsys):
    groundtruth, detections = random_scenes(seed)
    metrics = coco_evaluate(groundtruth, detections, CLASS_NAMES)
    assert capsys.readouterr().out == ""  # COCOeval's progress lines are captured
    expected_map, expected_map_50, expected_per_class = pycocotools_reference(groundtruth, detections, C, tmp_path)
    assert 0.05 < expected_map < 0.95  # a case with both hits and misses
    assert metrics.map == pytest.approx(expected_map, abs=1e-12)
    assert metrics.map_50 == pytest.approx(expected_map_50, abs=1e-12)
    for name, expected in zip(CLASS_NAMES, expected_per_class):
        assert metrics.per_class[name] == (None if expected is None else pytest.approx(expected, abs=1e-12))


def test_docstring_example():
    result = doctest.testmod(coco_eval)
    assert result.attempted == 5 and result.failed == 0


def test_mask_ap_scores_the_masks_not_the_boxes():
    # One object: the left half of the box [0, 0, 8, 8]. Detection A has the same box and the
    # left-half mask (mask IoU 1); detection B (other image) has the same box but the right half
    # (mask IoU 0), so box AP is perfect and mask AP is half of it.
    gt_mask = np.zeros((2, 1, 8, 8), np.uint8)
    gt_mask[:, 0, :, :4] = 1
    dt_mask = np.zeros((2, 1, 8, 8), np.uint8)
    dt_mask[0, 0, :, :4] = 1
    dt_mask[1, 0, :, 4:] = 1
    box = np.array([[[0.0, 0.0, 8.0, 8.0]]] * 2)
    gt = {"boxes": box, "classes": np.array([[0], [0]]), "masks": gt_mask}
    dt = {"detection_boxes": box, "detection_scores": np.array([[0.9], [0.8]]), "detection_classes": np.array([[0], [0]]),
          "detection_masks": dt_mask}
    assert coco_evaluate(gt, dt, ["zero"]).map == pytest.approx(1.0)
    masks = coco_evaluate(gt, dt, ["zero"], iou_type="segm")
    # Recall 0.5 at precision 1 (the first, best-scored detection), then nothing: AP = 51/101.
    assert masks.map_50 == pytest.approx(51 / 101, abs=1e-6)
