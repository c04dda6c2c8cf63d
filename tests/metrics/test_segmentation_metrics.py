"""Pixel accuracy and IoU with an ignore label, against keras.metrics.MeanIoU and hand counts."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.metrics.segmentation import ConfusionMatrix, PixelAccuracy

IGNORE = 255


def _random_batch(seed, classes=5, shape=(3, 16, 16)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, shape)
    labels[rng.random(shape) < 0.2] = IGNORE
    logits = rng.normal(size=(*shape, classes)).astype("float32")
    logits[..., 0] += 1.0  # some agreement with class 0 is likely, not needed
    return labels, logits


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_iou_equals_keras_mean_iou_with_the_ignore_class(seed):
    labels, logits = _random_batch(seed)
    reference = keras.metrics.MeanIoU(5, ignore_class=IGNORE, sparse_y_pred=False)
    reference.update_state(labels, logits)
    matrix = ConfusionMatrix(5, IGNORE)
    matrix.update(labels, logits.argmax(-1))
    assert matrix.mean_iou() == pytest.approx(float(reference.result()), rel=1e-6)


def test_pixel_accuracy_counts_only_labelled_pixels():
    labels, logits = _random_batch(4)
    valid = labels != IGNORE
    expected = np.mean(logits.argmax(-1)[valid] == labels[valid])
    metric = PixelAccuracy(IGNORE)
    metric.update_state(tf.constant(labels[:2]), tf.constant(logits[:2]))
    metric.update_state(tf.constant(labels[2:]), tf.constant(logits[2:]))  # accumulates over batches
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    matrix = ConfusionMatrix(5, IGNORE)
    matrix.update(labels, logits.argmax(-1))
    assert matrix.pixel_accuracy() == pytest.approx(expected, rel=1e-12)


def test_per_class_iou_by_hand_and_absent_classes_are_left_out():
    labels = np.array([[0, 0, 1, 1, IGNORE]])
    predicted = np.array([[0, 1, 1, 1, 2]])
    matrix = ConfusionMatrix(3, IGNORE)
    matrix.update(labels, predicted)
    # class 0: TP 1, union 2; class 1: TP 2, union 3; class 2 only predicted on an ignored pixel
    np.testing.assert_allclose(matrix.iou()[:2], [1 / 2, 2 / 3])
    assert np.isnan(matrix.iou()[2])
    assert matrix.mean_iou() == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="labels outside"):
        matrix.update(np.array([[3]]), np.array([[0]]))


def test_foreground_iou_merges_the_object_classes():
    labels = np.array([[0, 0, 1, 2, 2, IGNORE]])
    predicted = np.array([[0, 2, 2, 1, 0, 1]])  # a 1 read as 2 and a 2 as 1 still count as found
    matrix = ConfusionMatrix(3, IGNORE)
    matrix.update(labels, predicted)
    # objects: true at pixels 2, 3, 4; predicted at 1, 2, 3 -> intersection 2, union 4
    assert matrix.foreground_iou() == pytest.approx(2 / 4)
    assert matrix.mean_iou() < matrix.foreground_iou()
