"""``centernet``: focal loss, peak-picking decode of perfect maps, and a tiny run that exports."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection.boxes import pairwise_iou
from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.recipes import centernet
from tfmodels.recipes.centernet import CenterNetCoder, focal_loss, peaks


def test_doctests():
    assert doctest.testmod(centernet).failed == 0


def test_focal_loss_matches_the_paper_formula_in_float64():
    rng = np.random.default_rng(0)
    heatmap = rng.uniform(0, 0.99, (2, 8, 8, 3))
    heatmap[0, 2, 3, 1] = heatmap[1, 5, 5, 0] = 1.0  # two key points
    logits = rng.normal(0, 3, heatmap.shape)
    p = 1 / (1 + np.exp(-logits))
    expected = -np.where(heatmap == 1, (1 - p) ** 2 * np.log(p), (1 - heatmap) ** 4 * p**2 * np.log(1 - p)).sum()
    assert float(focal_loss(heatmap.astype("float32"), logits.astype("float32"))) == pytest.approx(expected, rel=1e-4)


def test_peak_picking_keeps_3x3_maxima_only():
    heat = np.zeros((1, 9, 9, 1), "float32")
    heat[0, 1:4, 1:4, 0] = [[0.2, 0.4, 0.2], [0.4, 0.9, 0.4], [0.2, 0.4, 0.2]]  # a blob: its centre only
    heat[0, 6, 6, 0] = 0.5  # a separate peak survives
    kept = peaks(tf.constant(heat)).numpy()[0, :, :, 0]
    assert sorted(zip(*np.nonzero(kept))) == [(2, 2), (6, 6)]
    assert kept[2, 2] == pytest.approx(0.9) and kept[6, 6] == pytest.approx(0.5)


def _perfect_outputs(targets, coder):
    """The head outputs a perfect network would give: heatmap logits, size and offset at key points."""
    heatmap = targets["heatmap"].numpy()
    logits = np.where(heatmap == 1, 30.0, np.log(np.clip(heatmap, 1e-9, 0.999) / (1 - np.clip(heatmap, 1e-9, 0.999))))
    h, w = coder.output_size
    maps = {}
    for name in ("size", "offset"):
        dense = np.zeros((len(heatmap), h * w, 2), "float32")
        for b, (indices, values, mask) in enumerate(zip(targets["indices"].numpy(), targets[name].numpy(), targets["mask"].numpy())):
            dense[b, indices[mask > 0]] = values[mask > 0]
        maps[name] = tf.constant(dense.reshape(len(heatmap), h, w, 2))
    return {"heatmap_logits": tf.constant(logits, tf.float32), **maps}


def test_decoding_perfect_target_maps_returns_the_ground_truth_boxes():
    recipe = registry.get("centernet")
    cfg = resolve(recipe.config, "tiny", {"image_size": 128, "num_scenes": (1, 1, 12)})
    _, gt = next(iter(recipe.datasets(cfg).test.batch(12)))
    coder = CenterNetCoder(10, (32, 32), top_k=50)
    targets = coder.encode(gt)
    outputs = _perfect_outputs(targets, coder)
    parts = coder.loss(targets, outputs)
    assert float(parts["size_loss"]) == float(parts["offset_loss"]) == 0.0
    boxes, class_scores = (t.numpy() for t in coder.decode(outputs))
    scores, classes = class_scores.max(-1), class_scores.argmax(-1)
    assert int(gt["num_boxes"].numpy().sum()) >= 12
    for b in range(12):
        n = int(gt["num_boxes"][b])
        found = scores[b] > 0.99
        assert found.sum() == n  # one peak per object, nothing else near 1
        iou = pairwise_iou(gt["boxes"][b, :n], boxes[b][found]).numpy()
        match = iou.argmax(1)
        assert np.all(iou.max(1) > 0.99)
        assert classes[b][found][match].tolist() == gt["classes"][b, :n].numpy().tolist()


def test_coder_config_round_trip():
    coder = CenterNetCoder(7, (16, 24), min_overlap=0.5, size_weight=0.2, top_k=30)
    again = CenterNetCoder.from_config(coder.get_config())
    assert again.get_config() == coder.get_config()


@pytest.mark.slow  # end to end: the fast suite keeps ssd's and faster_rcnn's (make test-slow runs it)
def test_tiny_trains_exports_and_serves_the_evaluation_path(tiny_detector_run):
    _, served = tiny_detector_run("centernet")
    assert served["detection_boxes"].shape == (3, resolve(centernet.CenterNetConfig, "tiny").max_detections, 4)
