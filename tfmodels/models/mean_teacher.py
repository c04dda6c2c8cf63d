"""Mean Teacher (Tarvainen & Valpola 2017): a student trained on labels and on agreeing with its EMA teacher.

Spec: notes-001.md §31 (seed L1009-1048): two networks of one architecture; the teacher's weights
are an exponential moving average of the student's; labelled data → cross-entropy, unlabelled
data → consistency between student and teacher predictions, "usually MSE"; the student's loss is
the weighted sum. Paper defaults where the notes are silent (Tarvainen & Valpola 2017 §3 and
appendix; CuriousAI's code):

* consistency = MSE between the softmax outputs, averaged over classes and images;
* weight w(t) = w_max · exp(−5 (1 − t/T)²) for step t < T (the sigmoid ramp-up), w_max after;
* EMA decay 0.99 during the ramp-up, 0.999 after; the teacher gets no gradients;
* student and teacher see different noise: two independent weak views of each unlabelled image.

The notes apply the consistency to the unlabelled images; the paper's code to all images. We
follow the notes [seed]. The teacher predicts in inference mode, so with BatchNorm it uses its
moving statistics, which are themselves the EMA of the student's (the EMA covers every weight).

One train step (elements as :mod:`tfmodels.models.semi_supervised_classifier` describes)::

    logits_l, logits_s = student([x_l; student_view])          # one batch through the student
    p_t = softmax(teacher(teacher_view))                        # no gradient
    loss = CE(y_l, logits_l) + w(t) · mean((softmax(logits_s) − p_t)²)
    θ ← optimizer step;  θ' ← α(t) θ' + (1 − α(t)) θ

t is the number of optimizer steps taken before this one (``optimizer.iterations``, restored on
resume). History: ``loss``, ``supervised_loss``, ``consistency_loss``, ``consistency_weight``,
``accuracy`` (teacher) and ``student_accuracy`` on the labelled batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.models.semi_supervised_classifier import (
    LABEL, LABELLED, STUDENT_VIEW, TEACHER_VIEW, SemiSupervisedClassifier, cross_entropy, unlabelled_images,
)

PAPER_EMA_DECAY, PAPER_RAMPUP_EMA_DECAY = 0.999, 0.99  # paper default
PAPER_CONSISTENCY_WEIGHT = 100.0  # paper default (CuriousAI's max_consistency_coefficient, with MSE averaged over classes)


def sigmoid_rampup(step, rampup_steps: int) -> tf.Tensor:
    """exp(−5 (1 − t/T)²) for t < T, 1 from T on (1 throughout when T = 0); paper default.

    Args:
        step: t, optimizer steps taken (a scalar, any number type).
        rampup_steps: T.

    Returns:
        float32 scalar in (0, 1].

    Example:
        >>> round(float(sigmoid_rampup(0, 10)), 6), round(float(sigmoid_rampup(5, 10)), 6), float(sigmoid_rampup(12, 10))
        (0.006738, 0.286505, 1.0)
    """
    if rampup_steps <= 0:
        return tf.constant(1.0)
    progress = tf.minimum(tf.cast(step, tf.float32) / float(rampup_steps), 1.0)
    return tf.exp(-5.0 * tf.square(1.0 - progress))


def consistency_loss(student_logits: tf.Tensor, teacher_logits: tf.Tensor) -> tf.Tensor:
    """Mean over images and classes of (softmax(student) − softmax(teacher))², no gradient to the teacher.

    Example:
        >>> float(consistency_loss(tf.constant([[0.0, 0.0]]), tf.constant([[0.0, 0.0]])))
        0.0
    """
    teacher = tf.stop_gradient(tf.nn.softmax(tf.cast(teacher_logits, tf.float32)))
    return tf.reduce_mean(tf.square(tf.nn.softmax(tf.cast(student_logits, tf.float32)) - teacher))


@keras.saving.register_keras_serializable(package="tfmodels")
class MeanTeacher(SemiSupervisedClassifier):
    """A Mean Teacher around any classifier; the teacher is the exported model (module docstring).

    Args:
        network: the student, raw pixels → logits (e.g.
            :func:`~tfmodels.models.mnist_cnn.build_mnist_cnn`); the teacher is its EMA copy.
        consistency_weight: w_max (100, paper default; 0 gives the supervised-only baseline
            with an EMA of the student).
        rampup_steps: T of the sigmoid ramp-up, in optimizer steps.
        ema_decay: α after the ramp-up (0.999, paper default).
        rampup_ema_decay: α during the ramp-up (0.99, paper default).
        **kwargs: ``keras.Model`` arguments (``name``).

    Example:
        >>> from tfmodels.models.mnist_cnn import build_mnist_cnn
        >>> model = MeanTeacher(build_mnist_cnn(), consistency_weight=10.0, rampup_steps=100)
        >>> tuple(model(tf.zeros([2, 28, 28, 1])).shape)  # the teacher's logits
        (2, 10)
    """

    def __init__(
        self,
        network: keras.Model,
        consistency_weight: float = PAPER_CONSISTENCY_WEIGHT,
        rampup_steps: int = 0,
        ema_decay: float = PAPER_EMA_DECAY,
        rampup_ema_decay: float = PAPER_RAMPUP_EMA_DECAY,
        **kwargs,
    ):
        super().__init__(network, ema_decay, **kwargs)
        if consistency_weight < 0 or rampup_steps < 0 or not 0.0 <= rampup_ema_decay < 1.0:
            raise ValueError("consistency_weight and rampup_steps must be >= 0 and rampup_ema_decay in [0, 1)")
        self.consistency_weight = float(consistency_weight)
        self.rampup_steps = int(rampup_steps)
        self.rampup_ema_decay = float(rampup_ema_decay)
        self.supervised_tracker = keras.metrics.Mean(name="supervised_loss")
        self.consistency_tracker = keras.metrics.Mean(name="consistency_loss")
        self.weight_tracker = keras.metrics.Mean(name="consistency_weight")

    @property
    def train_trackers(self):
        return [self.supervised_tracker, self.consistency_tracker, self.weight_tracker]

    def weight_at(self, step) -> tf.Tensor:
        """w(t) = w_max · sigmoid ramp-up (:func:`sigmoid_rampup`)."""
        return self.consistency_weight * sigmoid_rampup(step, self.rampup_steps)

    def decay_at(self, step) -> tf.Tensor:
        """α(t): ``rampup_ema_decay`` while t < T, ``ema_decay`` after."""
        return tf.where(tf.cast(step, tf.int64) < self.rampup_steps, self.rampup_ema_decay, self.ema_decay)

    def losses_of(self, data) -> dict[str, tf.Tensor]:
        """``total``, ``supervised``, ``consistency`` and ``student_logits`` of a batch, at the current step."""
        x, y = data[0], data[1]
        labelled, student_view = x[LABELLED], unlabelled_images(x[STUDENT_VIEW])
        teacher_logits = self.ema_network(unlabelled_images(x[TEACHER_VIEW]), training=False)
        logits = tf.cast(self.network(tf.concat([labelled, student_view], axis=0), training=True), tf.float32)
        n = tf.shape(labelled)[0]
        supervised = tf.reduce_mean(cross_entropy(y[LABEL], logits[:n]))
        consistency = consistency_loss(logits[n:], teacher_logits)
        total = supervised + self.weight_at(self.optimizer.iterations) * consistency
        return {"total": total, "supervised": supervised, "consistency": consistency, "student_logits": logits[:n]}

    def train_step(self, data):
        step = tf.convert_to_tensor(self.optimizer.iterations)  # read now, before the optimizer counts this step
        with tf.GradientTape() as tape:
            losses = self.losses_of(data)
        self.student_update(tape, losses["total"], self.decay_at(step))
        self.track_labelled(losses["total"], data[1][LABEL], losses["student_logits"], data[0][LABELLED])
        self.supervised_tracker.update_state(losses["supervised"])
        self.consistency_tracker.update_state(losses["consistency"])
        self.weight_tracker.update_state(self.weight_at(step))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            **super().get_config(),
            "consistency_weight": self.consistency_weight,
            "rampup_steps": self.rampup_steps,
            "rampup_ema_decay": self.rampup_ema_decay,
        }
