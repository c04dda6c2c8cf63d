"""``mask_rcnn``: mask targets, pasting, the mask loss, and a tiny run with mask AP that exports."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import masks as masks_module
from pipelines.detection.masks import paste_masks
from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.recipes import mask_rcnn
from tfmodels.recipes.two_stage import TwoStageCoder


def test_doctests():
    assert doctest.testmod(masks_module).failed == 0
    assert doctest.testmod(mask_rcnn).failed == 0


def _coder(mask_pool_size=2):
    cfg = resolve(registry.get("mask_rcnn").config, "tiny", {"mask_pool_size": mask_pool_size})
    settings = {key: getattr(cfg, key) for key in TwoStageCoder.SETTINGS}
    return TwoStageCoder(64, (8, 8), 8, (8.0,), (1.0,), settings=settings, mask_pool_size=mask_pool_size)


def test_mask_targets_sample_the_matched_instance_at_bin_centres():
    mask = np.zeros((2, 16, 16), np.uint8)
    mask[1, 4:12, 4:8] = 1  # instance 1: the left half of the box [4, 4, 12, 12]
    boxes = tf.constant([[[4.0, 4.0, 12.0, 12.0], [4.0, 4.0, 12.0, 12.0]]])
    targets = _coder(2).mask_targets(tf.constant(mask[None]), tf.constant([[1, 0]]), boxes).numpy()
    # 4 x 4 bins of 2 x 2 pixels; bin centres at x = 5, 7, 9, 11: the left two are inside.
    np.testing.assert_array_equal(targets[0, 0], [[1, 1, 0, 0]] * 4)
    np.testing.assert_array_equal(targets[0, 1], np.zeros((4, 4)))  # instance 0 is empty


def test_pasting_a_target_back_recovers_the_instance():
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:50, 20:34] = 1
    mask[10:20, 20:44] = 1  # a "7"-like shape inside the box [20, 10, 44, 50]
    box = tf.constant([[[20.0, 10.0, 44.0, 50.0]]])
    target = _coder(14).mask_targets(tf.constant(mask[None, None]), tf.constant([[0]]), box)
    pasted = paste_masks(target, box, 64, 64).numpy()[0, 0] >= 0.5
    iou = (pasted & (mask > 0)).sum() / (pasted | (mask > 0)).sum()
    assert iou > 0.95
    assert not pasted[:10].any() and not pasted[:, :20].any() and not pasted[50:].any() and not pasted[:, 44:].any()
    del rng


def test_mask_loss_is_the_mean_pixel_cross_entropy_of_foreground_rois():
    logits = tf.constant(np.random.default_rng(1).normal(size=(1, 3, 4, 4)), tf.float32)
    targets = tf.constant(np.random.default_rng(2).integers(0, 2, (1, 3, 4, 4)), tf.float32)
    foreground = tf.constant([[True, False, True]])
    p = 1 / (1 + np.exp(-logits.numpy()))
    bce = -(targets.numpy() * np.log(p) + (1 - targets.numpy()) * np.log(1 - p)).mean(axis=(2, 3))[0]
    np.testing.assert_allclose(float(TwoStageCoder.mask_loss(logits, targets, foreground)), (bce[0] + bce[2]) / 2, rtol=1e-5)


@pytest.mark.slow  # end to end: the fast suite keeps ssd's and faster_rcnn's (make test-slow runs it)
def test_tiny_run_trains_reports_mask_ap_and_exports(tiny_detector_run):
    result, served = tiny_detector_run("mask_rcnn")
    logged = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert "mask_loss" in logged
    assert {"mask_map", "mask_map_50"} <= set(result.metrics["report"])
    assert (result.run_dir / "masks.png").stat().st_size > 0
    assert served["detection_masks"].shape[1:] == (10, 64, 64)
