"""Segmentation metrics: pixel accuracy and IoU, with an ignore label (notes-002-part2.md §16).

Validation uses Keras' own ``keras.metrics.MeanIoU`` (``ignore_class``, logits in) for mIoU and
:class:`PixelAccuracy` here for the share of correctly labelled pixels; both skip pixels labelled
:data:`~pipelines.segmentation.crop.IGNORE`. Reports use :class:`ConfusionMatrix`, which also gives
the IoU of each class: ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``, and mIoU is the mean over the
classes that occur in the labels or the predictions (Keras' convention: a class with an empty
union is left out); and the foreground IoU, objects against background with the object classes
merged, which tells finding the objects' pixels apart from naming their class.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _valid_pixels(y_true, y_pred, ignore_class: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``(labels, predicted labels)`` of the pixels not labelled ``ignore_class``, flattened."""
    labels = tf.reshape(tf.cast(y_true, tf.int32), [-1])
    predicted = tf.reshape(tf.argmax(y_pred, axis=-1, output_type=tf.int32), [-1])
    valid = tf.not_equal(labels, ignore_class)
    return tf.boolean_mask(labels, valid), tf.boolean_mask(predicted, valid)


@keras.saving.register_keras_serializable(package="tfmodels")
class PixelAccuracy(keras.metrics.Metric):
    """Share of correctly labelled pixels, pixels labelled ``ignore_class`` left out.

    Args:
        ignore_class: the label no metric counts.
        name: the metric's name.

    Example:
        >>> metric = PixelAccuracy(ignore_class=255)
        >>> logits = tf.one_hot([[0, 1, 1]], 2)                     # predicts 0, 1, 1
        >>> metric.update_state(tf.constant([[0, 0, 255]]), logits)  # last pixel ignored
        >>> float(metric.result())
        0.5
    """

    def __init__(self, ignore_class: int = 255, name: str = "pixel_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_class = int(ignore_class)
        self.correct = self.add_variable((), initializer="zeros", dtype="float32", name="correct")
        self.total = self.add_variable((), initializer="zeros", dtype="float32", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, predicted = _valid_pixels(y_true, y_pred, self.ignore_class)
        self.correct.assign_add(tf.reduce_sum(tf.cast(tf.equal(labels, predicted), tf.float32)))
        self.total.assign_add(tf.cast(tf.size(labels), tf.float32))

    def result(self):
        return tf.math.divide_no_nan(self.correct, self.total)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}


class ConfusionMatrix:
    """A running ``[C, C]`` confusion matrix (rows: true class, columns: predicted), in NumPy.

    Args:
        num_classes: C.
        ignore_class: the label left out.

    Example:
        >>> matrix = ConfusionMatrix(2)
        >>> matrix.update(np.array([[0, 1, 1, 255]]), np.array([[0, 1, 0, 1]]))
        >>> matrix.iou().tolist(), round(matrix.mean_iou(), 4), round(matrix.pixel_accuracy(), 4)
        ([0.5, 0.5], 0.5, 0.6667)
    """

    def __init__(self, num_classes: int, ignore_class: int = 255):
        self.num_classes = int(num_classes)
        self.ignore_class = int(ignore_class)
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, labels: np.ndarray, predicted: np.ndarray) -> None:
        """Adds a batch of label maps and predicted label maps (same shape, integer ids)."""
        labels, predicted = np.asarray(labels).ravel(), np.asarray(predicted).ravel()
        valid = labels != self.ignore_class
        if np.any((labels[valid] < 0) | (labels[valid] >= self.num_classes)):
            raise ValueError(f"labels outside 0..{self.num_classes - 1} (and not the ignore label {self.ignore_class})")
        pairs = labels[valid] * self.num_classes + predicted[valid]
        self.matrix += np.bincount(pairs, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """IoU per class, NaN for a class that is in neither the labels nor the predictions."""
        true_positive = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, true_positive / union, np.nan)

    def mean_iou(self) -> float:
        """Mean IoU over the classes with a non-empty union."""
        return float(np.nanmean(self.iou()))

    def foreground_iou(self, background: int = 0) -> float:
        """IoU of "any class but ``background``" with the classes merged: where the objects are, whatever they are."""
        objects = np.arange(self.num_classes) != background
        true_positive = self.matrix[np.ix_(objects, objects)].sum()
        union = true_positive + self.matrix[background, objects].sum() + self.matrix[objects, background].sum()
        return float(true_positive / union) if union else float("nan")

    def pixel_accuracy(self) -> float:
        """Share of the counted pixels labelled correctly."""
        return float(np.trace(self.matrix) / max(1, self.matrix.sum()))
