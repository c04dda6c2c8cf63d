"""``faster_rcnn``: anchors, decoding of perfect head outputs, and a tiny run that exports."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection.boxes import encode_offsets
from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.recipes import faster_rcnn, two_stage
from tfmodels.recipes.two_stage import grid_anchors


def test_doctests():
    assert doctest.testmod(two_stage).failed == 0
    assert doctest.testmod(faster_rcnn).failed == 0


def test_grid_anchors_have_the_sizes_areas_and_ratios_per_location():
    anchors = grid_anchors((2, 3), 48, [8.0, 16.0], [0.5, 1.0, 2.0])
    assert anchors.shape == (2 * 3 * 6, 4)
    width, height = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    per_location = np.stack([width, height], 1).reshape(6, 6, 2)  # pixel, pair
    np.testing.assert_allclose(np.sqrt(per_location[..., 0] * per_location[..., 1]), [[8, 8, 8, 16, 16, 16]] * 6, rtol=1e-5)
    np.testing.assert_allclose(per_location[..., 0] / per_location[..., 1], [[0.5, 1, 2] * 2] * 6, rtol=1e-5)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    # cells of 16 x 24 pixels (a 2 x 3 map over 48 x 48)
    np.testing.assert_allclose(centres[::6], [[8, 12], [24, 12], [40, 12], [8, 36], [24, 36], [40, 36]])


def test_tiny_run_trains_and_exports(tiny_detector_run):
    result, _ = tiny_detector_run("faster_rcnn")
    logged = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss", "val_map"} <= set(logged)


def test_fast_rcnn_runs_the_backbone_once_per_batch_however_many_windows():
    calls = []
    for sizes in ((8.0,), (6.0, 12.0, 20.0)):  # 64 and 576 windows on the tiny 8 x 8 map
        detector = registry.get("fast_rcnn").model(resolve(registry.get("fast_rcnn").config, "tiny", {"anchor_sizes": sizes}))
        network_call = detector.network.call
        detector.network.call = lambda *args, **kwargs: calls.append(1) or network_call(*args, **kwargs)
        outputs = detector(tf.zeros([2, 64, 64, 3]))
        assert outputs["class_logits"].shape[:2] == (2, len(detector.coder.anchors))
    assert len(calls) == 2  # one pass over both images, for 64 and for 576 RoIs each


# Slow: its trainer, export and serving paths are faster_rcnn's and mask_rcnn's (tested above and in
# test_mask_rcnn); what is fast_rcnn's own, the windows as proposals, is the test before.
@pytest.mark.slow
def test_fast_rcnn_tiny_run_trains_and_exports(tiny_detector_run):
    result, _ = tiny_detector_run("fast_rcnn")
    logged = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"class_loss", "box_loss"} <= set(logged) and "rpn_class_loss" not in logged


def test_paper_preset_is_keras_vgg16_without_fc8_plus_the_rpn_and_the_class_heads():
    import keras

    cfg = resolve(faster_rcnn.FasterRcnnConfig, "paper", ["data=embedded"])  # VOC's network, the digits' 10 classes
    detector = faster_rcnn.model(cfg)
    vgg16 = keras.applications.VGG16(weights=None)  # conv1_1..conv5_3, fc6 and fc7 as the head's (7x7 pool = pool5)
    vgg16_without_fc8 = vgg16.count_params() - vgg16.get_layer("predictions").count_params()
    assert vgg16_without_fc8 == 134_260_544
    k, classes = 9, 10  # 3 scales x 3 ratios; the RPN scores each anchor with one sigmoid (the paper's k form)
    rpn = (3 * 3 * 512 * 512 + 512) + (512 * k + k) + (512 * 4 * k + 4 * k)
    heads = (4096 * (classes + 1) + classes + 1) + (4096 * 4 * classes + 4 * classes)
    ours = detector.network.count_params() + detector.box_head.count_params()
    assert ours == vgg16_without_fc8 + rpn + heads
    assert vgg16_without_fc8 + rpn + (4096 * 21 + 21) + (4096 * 80 + 80) == 137_057_234  # at VOC's 20 classes


def test_a_background_roi_of_zero_width_leaves_targets_and_gradients_finite():
    # Proposals clipped to the image can have zero width; as sampled background their offsets
    # (log 0) were -inf, and NaN reached the head's gradient through tf.where.
    detector = faster_rcnn.model(resolve(registry.get("faster_rcnn").config, "tiny", {}))
    proposals = tf.constant([[[0.0, 0.0, 0.0, 20.0], [5.0, 5.0, 30.0, 30.0], [64.0, 10.0, 64.0, 40.0]]])
    gt = {"boxes": tf.constant([[[6.0, 6.0, 30.0, 30.0]]]), "classes": tf.constant([[3]]), "num_boxes": tf.constant([1])}
    targets = detector.coder.sample_rois(proposals, tf.ones([1, 3], tf.bool), gt, tf.constant([1, 2], tf.int64))
    assert bool(tf.reduce_all(tf.math.is_finite(targets["roi_offset_targets"])))
    rois = targets["roi_boxes"].shape[1]
    offsets = tf.Variable(tf.zeros([1, rois, 10, 4]))
    with tf.GradientTape() as tape:
        _, box_error = detector.coder.head_errors(targets, {"class_logits": tf.zeros([1, rois, 11]), "box_offsets": offsets})
        loss = tf.reduce_sum(tf.where(targets["roi_positive"], box_error, 0.0))  # as TwoStageCoder.loss masks it
    assert bool(tf.reduce_all(tf.math.is_finite(tape.gradient(loss, offsets))))
