"""FixMatch (Sohn et al. 2020): confident weak-view predictions become hard labels for the strong view.

Spec: notes-001.md §32 (seed L1052-1118): a weakly augmented unlabelled image's class
probabilities q; pseudo-label argmax q, kept only when max q reaches the threshold (0.95);
cross-entropy of the strongly augmented image's prediction against it; Loss = L_s + λ·L_u with
L_s the labelled cross-entropy. The paper's formula (eq. 4, paper default normaliser μB: every
unlabelled image counts, masked or not)::

    L_u = 1/(μB) Σ_b 1[max q_b ≥ τ] · H(argmax q_b, p(y | A_strong(u_b))),   q_b = p(y | A_weak(u_b))

Paper defaults: τ 0.95, λ_u 1, μ 7, pseudo-labels under stop-gradient; the labelled, weak and
strong images go through the network as one batch (as the paper's code, so BatchNorm sees them
together); the model evaluated and shipped is the EMA of the trained weights, decay 0.999.

History: ``loss``, ``supervised_loss``, ``unlabelled_loss``, ``mask_rate`` (share of unlabelled
images above τ), ``pseudo_label_accuracy`` (share of those whose pseudo-label is the hidden true
class: monitoring only, never in a loss), ``accuracy`` (EMA network) and ``student_accuracy`` on
the labelled batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.models.semi_supervised_classifier import (
    HIDDEN_LABELS, LABEL, LABELLED, STUDENT_VIEW, TEACHER_VIEW, SemiSupervisedClassifier, cross_entropy, unlabelled_images,
)

PAPER_THRESHOLD, PAPER_UNLABELLED_WEIGHT, PAPER_EMA_DECAY = 0.95, 1.0, 0.999  # paper default


def unlabelled_loss(weak_logits: tf.Tensor, strong_logits: tf.Tensor, threshold: float) -> dict[str, tf.Tensor]:
    """FixMatch's L_u (module docstring) with its mask and pseudo-labels.

    Args:
        weak_logits: logits of the weak views ``[N, K]`` (no gradient flows through them).
        strong_logits: logits of the strong views of the same images ``[N, K]``.
        threshold: τ.

    Returns:
        ``{"loss": scalar, "mask": float32 [N] (1 where max q ≥ τ), "pseudo_labels": int32 [N]}``.

    Example:
        >>> out = unlabelled_loss(tf.constant([[9.0, 0.0], [0.0, 0.1]]), tf.constant([[0.0, 0.0], [5.0, 0.0]]), 0.95)
        >>> out["mask"].numpy().tolist(), round(float(out["loss"]), 4)  # (1/2) · ln 2
        ([1.0, 0.0], 0.3466)
    """
    q = tf.stop_gradient(tf.nn.softmax(tf.cast(weak_logits, tf.float32)))
    mask = tf.cast(tf.reduce_max(q, axis=-1) >= threshold, tf.float32)
    pseudo_labels = tf.argmax(q, axis=-1, output_type=tf.int32)
    loss = tf.reduce_mean(mask * cross_entropy(pseudo_labels, strong_logits))
    return {"loss": loss, "mask": mask, "pseudo_labels": pseudo_labels}


@keras.saving.register_keras_serializable(package="tfmodels")
class FixMatch(SemiSupervisedClassifier):
    """FixMatch around any classifier; the EMA network is the exported model (module docstring).

    Args:
        network: the trained classifier, raw pixels → logits.
        threshold: τ (0.95, paper default); 1.0 and above masks every pseudo-label.
        unlabelled_weight: λ_u (1, paper default); 0 gives the supervised-only baseline on the
            same labels, augmentation and EMA.
        ema_decay: decay of the evaluation EMA (0.999, paper default).
        **kwargs: ``keras.Model`` arguments (``name``).

    Example:
        >>> from tfmodels.models.mnist_cnn import build_mnist_cnn
        >>> model = FixMatch(build_mnist_cnn())
        >>> tuple(model(tf.zeros([2, 28, 28, 1])).shape)  # the EMA network's logits
        (2, 10)
    """

    def __init__(
        self,
        network: keras.Model,
        threshold: float = PAPER_THRESHOLD,
        unlabelled_weight: float = PAPER_UNLABELLED_WEIGHT,
        ema_decay: float = PAPER_EMA_DECAY,
        **kwargs,
    ):
        super().__init__(network, ema_decay, **kwargs)
        if unlabelled_weight < 0 or threshold < 0:
            raise ValueError(f"threshold and unlabelled_weight must be >= 0, got {threshold}, {unlabelled_weight}")
        self.threshold = float(threshold)
        self.unlabelled_weight = float(unlabelled_weight)
        self.supervised_tracker = keras.metrics.Mean(name="supervised_loss")
        self.unlabelled_tracker = keras.metrics.Mean(name="unlabelled_loss")
        self.mask_rate = keras.metrics.Mean(name="mask_rate")
        self.pseudo_label_accuracy = keras.metrics.Mean(name="pseudo_label_accuracy")

    @property
    def train_trackers(self):
        return [self.supervised_tracker, self.unlabelled_tracker, self.mask_rate, self.pseudo_label_accuracy]

    def losses_of(self, data) -> dict[str, tf.Tensor]:
        """``total``, ``supervised``, ``unlabelled``, ``mask``, ``pseudo_labels`` and ``student_logits`` of a batch."""
        x, y = data[0], data[1]
        labelled, weak, strong = x[LABELLED], unlabelled_images(x[TEACHER_VIEW]), unlabelled_images(x[STUDENT_VIEW])
        logits = tf.cast(self.network(tf.concat([labelled, weak, strong], axis=0), training=True), tf.float32)
        n, m = tf.shape(labelled)[0], tf.shape(weak)[0]
        supervised = tf.reduce_mean(cross_entropy(y[LABEL], logits[:n]))
        unlabelled = unlabelled_loss(logits[n : n + m], logits[n + m :], self.threshold)
        return {
            "total": supervised + self.unlabelled_weight * unlabelled["loss"],
            "supervised": supervised,
            "unlabelled": unlabelled["loss"],
            "mask": unlabelled["mask"],
            "pseudo_labels": unlabelled["pseudo_labels"],
            "student_logits": logits[:n],
        }

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses = self.losses_of(data)
        self.student_update(tape, losses["total"], self.ema_decay)
        self.track_labelled(losses["total"], data[1][LABEL], losses["student_logits"], data[0][LABELLED])
        self.supervised_tracker.update_state(losses["supervised"])
        self.unlabelled_tracker.update_state(losses["unlabelled"])
        self.mask_rate.update_state(losses["mask"])
        # Monitoring only: the hidden true classes of the unlabelled images, never in a loss.
        hidden = tf.reshape(tf.cast(data[1][HIDDEN_LABELS], tf.int32), [-1])
        self.pseudo_label_accuracy.update_state(tf.cast(tf.equal(losses["pseudo_labels"], hidden), tf.float32), losses["mask"])
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "unlabelled_weight": self.unlabelled_weight}
