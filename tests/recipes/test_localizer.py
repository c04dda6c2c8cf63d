"""``localizer``: one class + one box per image (notes-002 §1-2), its baseline, a tiny run that exports."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.models.localizer import build_localizer
from tfmodels.recipes.localizer import LocalizerCoder, _box_scores, _training_answers


def _gt(boxes, classes):
    boxes = np.asarray(boxes, "float32")[:, None, :]
    return {"boxes": tf.constant(boxes), "classes": tf.constant(np.asarray(classes, "int32")[:, None]),
            "num_boxes": tf.ones([len(boxes)], tf.int32)}


def test_network_has_a_class_head_and_a_four_number_box_head():
    net = build_localizer(10, (64, 64, 3), (1, 1, 1, 1), 8)
    outputs = net(np.zeros((3, 64, 64, 3), "float32"))
    assert outputs["class_logits"].shape == (3, 10) and outputs["box"].shape == (3, 4)


def test_paper_network_count_is_resnet18_without_fc_plus_two_linear_heads():
    net = build_localizer()  # ResNet-18 at 224x224, VOC's 20 classes
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    flattened = 7 * 7 * 512  # the box head's input; the class head's is the pooled 512
    assert trainable == 11_689_512 - (512 * 1000 + 1000) + (512 + 1) * 20 + (flattened + 1) * 4


def test_targets_are_centre_form_fractions_and_the_loss_is_ce_plus_l1():
    coder = LocalizerCoder(num_classes=3, image_size=64)
    targets = coder.encode(_gt([[16, 32, 48, 64]], [2]))
    np.testing.assert_allclose(targets["box"].numpy(), [[0.5, 0.75, 0.5, 0.5]])  # centre (32, 48), 32 x 32
    logits = np.array([[1.0, 0.0, 2.0]], "float32")
    outputs = {"class_logits": tf.constant(logits), "box": tf.constant([[0.5, 0.7, 0.6, 0.5]])}
    parts = coder.loss(targets, outputs)
    cross_entropy = -(2.0 - math.log(math.e + 1 + math.e**2))
    assert float(parts["class_loss"]) == pytest.approx(cross_entropy, rel=1e-6)
    assert float(parts["box_loss"]) == pytest.approx(0.05 + 0.1, rel=1e-5)  # |0.7-0.75| + |0.6-0.5|


def test_decode_gives_one_clipped_pixel_box_and_the_softmax():
    coder = LocalizerCoder(num_classes=2, image_size=100)
    boxes, scores = coder.decode({"class_logits": tf.constant([[0.0, 0.0]]), "box": tf.constant([[0.5, 0.1, 0.4, 0.4]])})
    np.testing.assert_allclose(boxes.numpy(), [[[30, 0, 70, 30]]], atol=1e-5)  # y from -10 clipped to 0
    np.testing.assert_allclose(scores.numpy(), [[[0.5, 0.5]]])


def test_baseline_is_the_mean_centre_box_and_the_majority_class():
    train = tf.data.Dataset.from_tensor_slices((tf.zeros([3, 4, 4, 3]), _gt([[0, 0, 10, 10], [10, 10, 30, 30], [5, 5, 15, 25]], [1, 1, 0])))
    mean_box, majority = _training_answers(train)
    # centres (5, 5), (20, 20), (10, 15) -> (11.67, 13.33); sizes 10x10, 20x20, 10x20 -> 13.33 x 16.67
    np.testing.assert_allclose(mean_box, [5.0, 5.0, 18.333333, 21.666666], atol=1e-4)
    assert majority == 1
    scores = _box_scores(np.array([[0, 0, 10, 10], [0, 0, 10, 10]], "float32"), np.array([1, 0]),
                         {k: v.numpy() for k, v in _gt([[0, 0, 10, 10], [5, 0, 15, 10]], [1, 1]).items()})
    assert scores == pytest.approx({"mean_iou": (1 + 50 / 150) / 2, "accuracy": 0.5})


def test_every_embedded_scene_holds_exactly_one_digit():
    recipe = registry.get("localizer")
    splits = recipe.datasets(resolve(recipe.config, "tiny"))
    for split in (splits.train, splits.test):
        images, gt = next(iter(split.batch(64)))
        assert images.shape[1:] == (64, 64, 3)
        assert set(gt["num_boxes"].numpy().tolist()) == {1} and gt["boxes"].shape[1:] == (1, 4)


@pytest.mark.slow  # end to end: the fast suite keeps ssd's and faster_rcnn's (make test-slow runs it)
def test_tiny_trains_exports_and_reports_beside_the_baseline(tiny_detector_run):
    result, served = tiny_detector_run("localizer")
    report = result.metrics["report"]
    assert {"mean_iou", "accuracy"} <= set(report)
    assert {"mean_iou", "accuracy", "mean_box", "majority_class"} <= set(report["baseline"])
    assert served["num_detections"].tolist() == [1, 1, 1] and served["detection_boxes"].shape == (3, 1, 4)
