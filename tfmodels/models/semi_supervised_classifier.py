"""What Mean Teacher and FixMatch share: a trained student network and its EMA, the exported one.

Spec: notes-001.md §31-32 and DESIGN.md ("EMA teachers ... a ``keras.Model`` subclass with its own
``train_step``, state as model variables"). A :class:`SemiSupervisedClassifier` wraps any
classifier ``network`` (raw pixels → logits) and keeps :attr:`ema_network`, its exponential moving
average (:mod:`tfmodels.models.exponential_moving_average`): Mean Teacher's teacher, FixMatch's
evaluation model (both papers evaluate and ship the average). The EMA weights are model
variables, so ``.keras`` files, checkpoints and ``BackupAndRestore`` carry them.

``model(pixels)``, ``predict``, ``evaluate`` and the export use the EMA network. Validation and
test report its ``loss`` (cross-entropy) and ``accuracy``, and ``student_accuracy`` beside it,
so ``curves.png`` shows teacher against student.

Training elements (batched by the trainer; :mod:`pipelines.semi_supervised` and
:mod:`pipelines.weak_strong_augment` make them)::

    ({"labelled": [B, H, W, C], "teacher_view": [B, μ, H, W, C], "student_view": [B, μ, H, W, C]},
     {"label": [B], "hidden_labels": [B, μ]})

``hidden_labels`` (the unlabelled images' true classes) feed monitoring metrics only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.models.exponential_moving_average import ema_copy, step_and_average

LABELLED, TEACHER_VIEW, STUDENT_VIEW = "labelled", "teacher_view", "student_view"
LABEL, HIDDEN_LABELS = "label", "hidden_labels"


def unlabelled_images(views: tf.Tensor) -> tf.Tensor:
    """``[B, μ, H, W, C]`` → ``[B·μ, H, W, C]``."""
    return tf.reshape(views, tf.concat([[-1], tf.shape(views)[2:]], axis=0))


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example softmax cross-entropy of integer ``labels`` ``[N]`` and ``logits`` ``[N, K]``."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), tf.cast(logits, tf.float32))


class SemiSupervisedClassifier(keras.Model):
    """Base of :class:`~tfmodels.models.mean_teacher.MeanTeacher` and :class:`~tfmodels.models.fixmatch.FixMatch`.

    Subclasses write ``train_step`` with :meth:`student_update`, and list their own trackers in
    ``train_trackers``.

    Args:
        network: a classifier, raw pixels ``[B, H, W, C]`` → logits ``[B, K]``.
        ema_decay: the EMA decay after any ramp-up.
        **kwargs: ``keras.Model`` arguments (``name``).
    """

    def __init__(self, network: keras.Model, ema_decay: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.network = network
        self.ema_network = ema_copy(network)
        self.ema_decay = float(ema_decay)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.student_accuracy = keras.metrics.SparseCategoricalAccuracy(name="student_accuracy")
        self.built = True

    def call(self, inputs, training=None):
        return self.ema_network(inputs, training=False)

    @property
    def train_trackers(self) -> list[keras.metrics.Metric]:
        return []

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy, self.student_accuracy, *self.train_trackers]

    def student_update(self, tape: tf.GradientTape, loss: tf.Tensor, decay) -> None:
        """One optimizer step of the student on ``loss`` (recorded on ``tape``), then the EMA update
        (:func:`~tfmodels.models.exponential_moving_average.step_and_average`)."""
        step_and_average(self.optimizer, tape, loss, self.network, self.ema_network, decay)

    def track_labelled(self, loss: tf.Tensor, labels: tf.Tensor, student_logits: tf.Tensor, pixels: tf.Tensor) -> None:
        """Updates ``loss`` and both accuracies on labelled ``pixels`` (the EMA network predicts them now)."""
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(labels, self.ema_network(pixels, training=False))
        self.student_accuracy.update_state(labels, student_logits)

    def test_step(self, data):
        pixels, labels = data[0], data[1]
        logits = tf.cast(self.ema_network(pixels, training=False), tf.float32)
        self.loss_tracker.update_state(tf.reduce_mean(cross_entropy(labels, logits)))
        self.accuracy.update_state(labels, logits)
        self.student_accuracy.update_state(labels, self.network(pixels, training=False))
        return {m.name: m.result() for m in (self.loss_tracker, self.accuracy, self.student_accuracy)}

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "ema_decay": self.ema_decay,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
