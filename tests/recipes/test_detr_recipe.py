"""``detr``: Hungarian matching against scipy, the set loss against NumPy, decoding, and a tiny run that exports."""

import doctest

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from tfmodels.config import ConfigError, resolve
from tfmodels.recipes import detr
from tfmodels.recipes.detr import DetrCoder, DetrConfig

NUM_CLASSES, IMAGE_SIZE = 4, 64


def test_doctests():
    assert doctest.testmod(detr).failed == 0


def _random_batch(rng, batch=3, queries=7, max_boxes=5, counts=(3, 0, 5)):
    """Corner ground truth in pixels (padded), and random network outputs."""
    top_left = rng.uniform(0, 40, (batch, max_boxes, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(4, 24, (batch, max_boxes, 2))], -1).astype("float32")
    classes = rng.integers(0, NUM_CLASSES, (batch, max_boxes)).astype("int32")
    real = np.arange(max_boxes)[None] < np.array(counts)[:, None]
    gt = {
        "boxes": np.where(real[..., None], boxes, 0.0),
        "classes": np.where(real, classes, -1),
        "num_boxes": np.array(counts, "int32"),
    }
    outputs = {
        "class_logits": rng.normal(0, 2, (batch, queries, NUM_CLASSES + 1)).astype("float32"),
        "boxes": rng.uniform(0.1, 0.6, (batch, queries, 4)).astype("float32"),
    }
    return gt, outputs


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _corners(center):
    return np.concatenate([center[..., :2] - center[..., 2:] / 2, center[..., :2] + center[..., 2:] / 2], -1)


def _giou(a, b):
    """GIoU of two corner boxes, from the definition."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclosure = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (enclosure - union) / enclosure


def _numpy_terms(gt, outputs, image):
    """Per image: the paper's matching cost [Q, n], L1 [Q, n] and GIoU [Q, n] against the n real objects."""
    n = int(gt["num_boxes"][image])
    corners = gt["boxes"][image, :n].astype(np.float64)
    target = np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], -1) / IMAGE_SIZE
    predicted = outputs["boxes"][image].astype(np.float64)
    probability = _softmax(outputs["class_logits"][image].astype(np.float64))
    l1 = np.abs(predicted[:, None] - target[None]).sum(-1)
    giou = np.array([[_giou(p, t) for t in _corners(target)] for p in _corners(predicted)]).reshape(len(predicted), n)
    cost = -probability[:, gt["classes"][image, :n]] + 5 * l1 - 2 * giou
    return cost, l1, giou


def test_matching_equals_scipy_on_the_papers_cost():
    gt, outputs = _random_batch(np.random.default_rng(0), batch=4, queries=7, counts=(3, 0, 5, 1))
    coder = DetrCoder(NUM_CLASSES, IMAGE_SIZE)
    match = coder.match(coder.encode(gt), outputs["class_logits"], outputs["boxes"]).numpy()
    for image in range(4):
        rows, cols = linear_sum_assignment(_numpy_terms(gt, outputs, image)[0])
        expected = np.full(7, -1)
        expected[rows] = cols
        assert match[image].tolist() == expected.tolist()


def test_loss_equals_numpy_on_scipys_matching():
    """Weighted CE over all queries (no object 0.1), 5 L1 and 2 (1 - GIoU) over matched pairs / objects."""
    gt, outputs = _random_batch(np.random.default_rng(1))
    parts = DetrCoder(NUM_CLASSES, IMAGE_SIZE).loss(DetrCoder(NUM_CLASSES, IMAGE_SIZE).encode(gt), outputs)
    weighted_ce = weights = l1_sum = giou_sum = 0.0
    for image in range(3):
        cost, l1, giou = _numpy_terms(gt, outputs, image)
        rows, cols = linear_sum_assignment(cost)
        target = np.full(7, NUM_CLASSES)
        target[rows] = gt["classes"][image, cols]
        weight = np.where(target == NUM_CLASSES, 0.1, 1.0)
        log_probability = np.log(_softmax(outputs["class_logits"][image].astype(np.float64)))
        weighted_ce += (weight * -log_probability[np.arange(7), target]).sum()
        weights += weight.sum()
        l1_sum, giou_sum = l1_sum + l1[rows, cols].sum(), giou_sum + (1 - giou[rows, cols]).sum()
    objects = gt["num_boxes"].sum()
    assert float(parts["class_loss"]) == pytest.approx(weighted_ce / weights, rel=1e-5)
    assert float(parts["l1_loss"]) == pytest.approx(5 * l1_sum / objects, rel=1e-5)
    assert float(parts["giou_loss"]) == pytest.approx(2 * giou_sum / objects, rel=1e-5)


def _perfect_outputs(gt, coder, queries, rng):
    """Each object predicted exactly by a random query, every other query confidently "no object"."""
    targets = {k: np.asarray(v) for k, v in coder.encode(gt).items()}
    logits = np.zeros((len(targets["boxes"]), queries, NUM_CLASSES + 1), "float32")
    logits[..., NUM_CLASSES] = 30.0
    boxes = np.full((len(targets["boxes"]), queries, 4), 0.5, "float32")
    for image, count in enumerate(targets["num_boxes"]):
        slots = rng.permutation(queries)[:count]
        logits[image, slots] = 0.0
        logits[image, slots, targets["classes"][image, :count]] = 30.0
        boxes[image, slots] = targets["boxes"][image, :count]
    return {"class_logits": tf.constant(logits), "boxes": tf.constant(boxes)}


def _loss(coder, gt, outputs) -> dict[str, float]:
    return {k: float(v) for k, v in coder.loss(coder.encode(gt), outputs).items()}


def test_perfect_predictions_cost_nothing_and_any_change_costs_something():
    rng = np.random.default_rng(2)
    gt, _ = _random_batch(rng)
    coder = DetrCoder(NUM_CLASSES, IMAGE_SIZE)
    outputs = _perfect_outputs(gt, coder, 7, rng)
    parts = _loss(coder, gt, outputs)
    assert parts["class_loss"] < 1e-6 and parts["l1_loss"] < 1e-6 and parts["giou_loss"] < 1e-5
    moved = outputs["boxes"].numpy()
    moved[0] += 0.01
    assert _loss(coder, gt, {**outputs, "boxes": moved})["l1_loss"] > 0.01
    claiming = outputs["class_logits"].numpy()
    claiming[1, :, 0] = 40.0  # image 1 has no objects: its 7 queries each pay 0.1 x 10 of 9.3 weights
    assert _loss(coder, gt, {**outputs, "class_logits": claiming})["class_loss"] == pytest.approx(0.7 / 0.93, rel=1e-3)


def test_loss_does_not_depend_on_the_order_of_objects_or_of_queries():
    rng = np.random.default_rng(5)
    gt, outputs = _random_batch(rng)
    coder = DetrCoder(NUM_CLASSES, IMAGE_SIZE)
    parts = _loss(coder, gt, outputs)
    order = [2, 0, 1, 3, 4]  # the first image's three objects reordered, the third image's five; padding stays last
    shuffled = {**gt, "boxes": gt["boxes"][:, order], "classes": gt["classes"][:, order]}
    assert _loss(coder, shuffled, outputs) == pytest.approx(parts, rel=1e-5)
    queries = rng.permutation(7)
    assert _loss(coder, gt, {k: v[:, queries] for k, v in outputs.items()}) == pytest.approx(parts, rel=1e-5)


def test_auxiliary_layers_add_their_own_matched_losses():
    gt, outputs = _random_batch(np.random.default_rng(3))
    coder = DetrCoder(NUM_CLASSES, IMAGE_SIZE)
    targets = coder.encode(gt)
    alone = coder.loss(targets, outputs)
    other = _random_batch(np.random.default_rng(4))[1]
    aux = {"aux_class_logits": np.stack([other["class_logits"], outputs["class_logits"]], 1),
           "aux_boxes": np.stack([other["boxes"], outputs["boxes"]], 1)}
    combined = coder.loss(targets, {**outputs, **aux})
    for part in coder.loss_parts:
        expected = 2 * float(alone[part]) + float(coder.loss(targets, other)[part])
        assert float(combined[part]) == pytest.approx(expected, rel=1e-5)


def test_decode_gives_each_query_its_best_object_class_and_its_box_in_pixels():
    coder = DetrCoder(2, 100)
    logits = tf.constant([[[2.0, 0.0, 1.0], [0.0, 0.0, 5.0]]])
    boxes = tf.constant([[[0.5, 0.5, 0.2, 0.4], [0.05, 0.5, 0.2, 0.2]]])
    corners, class_scores = coder.decode({"class_logits": logits, "boxes": boxes})
    np.testing.assert_allclose(corners.numpy(), [[[40, 30, 60, 70], [0, 40, 15, 60]]], atol=1e-4)  # clipped at 0
    probability = tf.nn.softmax(logits).numpy()[0]
    np.testing.assert_allclose(class_scores.numpy()[0], [[probability[0, 0], 0], [probability[1, 0], 0]], rtol=1e-6)


def test_config_checks_and_coder_round_trip():
    assert resolve(DetrConfig, "paper").iou_threshold == 1.0  # no NMS
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        resolve(DetrConfig, "tiny", {"d_model": 30, "num_heads": 4})
    coder = DetrCoder(7, 96, l1_weight=4.0, no_object_weight=0.2)
    assert DetrCoder.from_config(coder.get_config()).get_config() == coder.get_config()


@pytest.mark.slow  # end to end: the fast suite keeps ssd's and faster_rcnn's (make test-slow runs it)
def test_tiny_trains_exports_and_serves_the_evaluation_path(tiny_detector_run):
    _, served = tiny_detector_run("detr")
    cfg = resolve(DetrConfig, "tiny")
    assert served["detection_boxes"].shape == (3, cfg.max_detections, 4)
    assert np.all(served["num_detections"] <= cfg.num_queries)  # one detection per query at most
