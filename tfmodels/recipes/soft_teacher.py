"""``soft_teacher``: end-to-end pseudo-boxes from an EMA teacher, soft background weights, box-jitter filtering.

Spec: notes-001.md §34 (seed L1084-1090: Soft Teacher trains student and teacher together, the
teacher an EMA of the student; pseudo-boxes above a foreground threshold; the classification
loss of background boxes weighted by the teacher's score; box regression only on pseudo-boxes
whose jittered boxes agree) and Xu et al., 2021 (paper default: foreground 0.9, 10 jitters of
up to 6% of the box side, regression reliability σ < 0.02, EMA 0.999, λu 4). One step
(:class:`SoftTeacherDetector`):

1. the **teacher** (EMA of the student; the exported, evaluated model) detects on the unlabelled
   scenes (the weak view: the scene itself; flips are off for digits). Detections scoring at least
   ``confidence`` are the pseudo-boxes (at most ``max_boxes`` per scene);
2. **box jitter**: each pseudo-box is jittered 10 times (offsets ~ N(0, (0.06 · side)²)), the
   teacher's head refines the jittered boxes for the pseudo-box's class, and the mean over the
   four coordinates of their standard deviation, divided by half the box's width + height, is
   its uncertainty σ; ``σ < box_uncertainty`` marks a box reliable for regression;
3. the **student** sees the strong view (:mod:`pipelines.detection.strong_augment`; the pseudo-boxes
   and their reliability move with the pixels). Its loss on it, ``L_u``:

   * RPN classification and box losses against all pseudo-boxes;
   * head classification, **soft teacher** form: each background RoI's cross-entropy weighted by
     ``r_j``, the teacher's background probability of that RoI (its box mapped back to the
     teacher's view), foreground RoIs by 1, divided by the weights' sum (:func:`soft_class_loss`:
     the reference code's normalisation of the paper's eq. 4);
   * head box regression on foreground RoIs matched to *reliable* pseudo-boxes only;

4. ``L = L_s + λu · L_u`` (``L_s``: ``faster_rcnn``'s loss on the labelled scenes), one optimizer
   step of the student, then the teacher's EMA update.

Deviation: the teacher starts from a supervised run on the labelled scenes (``teacher=<run>``, a
burn-in; the paper starts student and teacher from ImageNet weights), so pseudo-boxes exist from
the first step within the CPU budget.

Usage::

    tfmodels train faster_rcnn --set labelled_fraction=0.1
    tfmodels train soft_teacher --set teacher=runs/faster_rcnn/<timestamp>
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import tensorflow as tf

from pipelines.detection.augment import boxes_from_window
from pipelines.detection.strong_augment import strong_view_fn
from tfmodels.models.exponential_moving_average import ema_copy, step_and_average
from tfmodels.recipes import detection
from tfmodels.recipes.faster_rcnn import detector_parts
from tfmodels.recipes.semi_supervised_detection import (
    SemiSupervisedDetectionConfig, pseudo_boxes_picture, semi_supervised_detection_recipe, start_from_teacher,
    teacher_run, training_elements, unlabelled_batch,
)
from tfmodels.recipes.two_stage import TwoStageDetector

JITTERS = 10  # paper default
JITTER_SCALE = 0.06  # paper default: offsets of 6% of the box's side


@dataclasses.dataclass
class SoftTeacherConfig(SemiSupervisedDetectionConfig):
    """Soft Teacher's settings: λu 4, foreground 0.9, EMA 0.999, σ 0.02 (paper defaults).

    Args:
        ema_decay: the teacher's EMA decay.
        box_uncertainty: largest jitter uncertainty σ of a pseudo-box trained for regression.
    """

    unlabelled_weight: float = 4.0
    ema_decay: float = 0.999
    box_uncertainty: float = 0.02

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        **SemiSupervisedDetectionConfig.PRESETS,
        "tiny": {**SemiSupervisedDetectionConfig.PRESETS["tiny"], "ema_decay": 0.9},
    }


def jittered(boxes: tf.Tensor, seed: tf.Tensor, count: int = JITTERS, scale: float = JITTER_SCALE) -> tf.Tensor:
    """``count`` jittered copies of boxes ``[B, G, 4]``: ``[B, G, count, 4]``, each coordinate moved by
    N(0, (scale · the box's side along it)²) (Soft Teacher §3.3, paper default)."""
    sides = tf.tile(boxes[..., 2:] - boxes[..., :2], [1, 1, 2])[:, :, None, :]  # (w, h, w, h)
    noise = tf.random.stateless_normal(tf.concat([tf.shape(boxes)[:2], [count, 4]], 0), seed)
    return boxes[:, :, None, :] + noise * scale * sides


def box_uncertainty(refined: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """σ ``[B, G]`` of refined jittered boxes ``[B, G, J, 4]`` around pseudo-boxes ``[B, G, 4]``: the mean
    over the coordinates of their standard deviation (divided by J; the reference code's ``torch.std``
    divides by J − 1, 5% more at J = 10), over half the box's width + height.

    Example:
        >>> refined = tf.constant([[[[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 12.0, 12.0]]]])
        >>> round(float(box_uncertainty(refined, tf.constant([[[0.0, 0.0, 10.0, 10.0]]]))[0, 0]), 6)  # std 1 / 10
        0.1
    """
    spread = tf.reduce_mean(tf.math.reduce_std(refined, axis=2), axis=-1)
    half_size = 0.5 * ((boxes[..., 2] - boxes[..., 0]) + (boxes[..., 3] - boxes[..., 1]))
    return spread / tf.maximum(half_size, 1e-6)


def soft_class_loss(cross_entropy: tf.Tensor, foreground: tf.Tensor, background: tf.Tensor, background_score: tf.Tensor) -> tf.Tensor:
    """Soft Teacher's classification loss (module docstring, step 3) of sampled RoIs ``[B, R]``.

    The reference code's form (microsoft/SoftTeacher ``unsup_rcnn_cls_loss``): a weighted mean of
    the cross-entropies, weight 1 on foreground RoIs and the teacher's background probability
    ``r_j`` on background ones, divided by ``max(Σ weights, 1)``. The paper's eq. 4 writes the two
    halves normalised apart, ``(1/N_fg) Σ_fg CE + Σ_bg (r_j / Σ_k r_k) CE_j``, which weighs each
    foreground RoI several times more than the supervised loss does (with 25% foreground, about 4×)
    and, with λu = 4, took this detector below its teacher in the first measured run (README).

    Example:
        >>> ce = tf.constant([[1.0, 2.0, 4.0]])
        >>> fg, bg = tf.constant([[True, False, False]]), tf.constant([[False, True, True]])
        >>> float(soft_class_loss(ce, fg, bg, tf.constant([[0.0, 0.75, 0.25]])))  # (1 + 0.75·2 + 0.25·4) / 2
        1.75
    """
    weights = tf.where(foreground, 1.0, tf.where(background, background_score, 0.0))
    return tf.reduce_sum(weights * cross_entropy) / tf.maximum(tf.reduce_sum(weights), 1.0)


@keras.saving.register_keras_serializable(package="tfmodels")
class SoftTeacherDetector(TwoStageDetector):
    """A two-stage student with its EMA teacher (:attr:`teacher`), trained as the module docstring says.

    ``call``, ``detect``, validation and the export use the teacher. ``train_step`` takes the
    elements of :mod:`tfmodels.recipes.semi_supervised_detection` and logs the labelled loss
    parts, the unlabelled ones (``unlabelled_*``), the pseudo-boxes per scene and their reliable
    share.

    Args:
        unlabelled_weight: λu.
        confidence: the foreground threshold of pseudo-boxes.
        ema_decay: the teacher's EMA decay.
        box_uncertainty: the regression reliability threshold on σ.
        strong_scale_range: zoom range of the strong views.
        max_pseudo_boxes: pseudo-boxes kept per scene at most (the best-scoring).
        **kwargs: :class:`TwoStageDetector`'s.
    """

    def __init__(self, network, box_head, coder, *, unlabelled_weight: float = 4.0, confidence: float = 0.9,
                 ema_decay: float = 0.999, box_uncertainty: float = 0.02, strong_scale_range=(0.5, 1.5),
                 max_pseudo_boxes: int = 16, **kwargs):
        super().__init__(network, box_head, coder, **kwargs)
        self.max_pseudo_boxes = int(max_pseudo_boxes)
        self.unlabelled_weight, self.confidence = float(unlabelled_weight), float(confidence)
        self.ema_decay, self.box_uncertainty = float(ema_decay), float(box_uncertainty)
        self.strong_scale_range = tuple(float(v) for v in strong_scale_range)
        self.strong_view = strong_view_fn(self.strong_scale_range)
        settings = {key: kwargs[key] for key in ("num_classes", "score_threshold", "iou_threshold", "max_detections") if key in kwargs}
        self.teacher = TwoStageDetector(ema_copy(network), ema_copy(box_head), coder, seed=self.seed, name="teacher", **settings)
        self.unlabelled_trackers = {
            name: keras.metrics.Mean(name=f"unlabelled_{name}")
            for name in (*self.coder.loss_parts, "pseudo_boxes", "reliable_share")
        }

    @property
    def metrics(self):
        return [*super().metrics, *self.unlabelled_trackers.values()]

    def call(self, images, training=False):
        return self.teacher(images, training=False)

    def detection_loss(self, images, gt, training: bool, stream: int = 0):
        """The student's losses in training; the teacher's (losses and outputs) in evaluation."""
        if not training:
            return self.teacher.detection_loss(images, gt, training=False)
        return super().detection_loss(images, gt, training, stream)

    def _pseudo_boxes(self, images: tf.Tensor, seed: tf.Tensor) -> tuple[dict, tf.Tensor]:
        """Steps 1-2: the teacher's pseudo-boxes of ``images`` with reliability weights, and its features."""
        outputs = self.teacher.network_outputs(images, training=False)
        proposals, real = self.coder.proposals(outputs, self.coder.test_proposals, tf.shape(images)[0])
        found = self._detections(self.teacher._inference(outputs["features"], proposals, real))
        keep = min(self.max_detections, self.max_pseudo_boxes)
        boxes, classes = found["detection_boxes"][:, :keep], found["detection_classes"][:, :keep]
        confident = (found["detection_scores"][:, :keep] >= self.confidence) & (classes >= 0)  # scores descend: a prefix
        candidates = jittered(boxes, seed)  # [B, G, J, 4]
        head = self.teacher._head(outputs["features"], tf.reshape(candidates, [tf.shape(boxes)[0], -1, 4]), training=False)
        refined = self.coder._decode(tf.reshape(candidates, [tf.shape(boxes)[0], -1, 1, 4]), head["box_offsets"])
        of_class = tf.repeat(tf.maximum(classes, 0), JITTERS, axis=1)
        refined = tf.reshape(tf.gather(refined, of_class, batch_dims=2), tf.shape(candidates))
        reliable = confident & (box_uncertainty(refined, boxes) < self.box_uncertainty)
        pseudo = {
            "boxes": tf.where(confident[..., None], boxes, 0.0),
            "classes": tf.where(confident, classes, -1),
            "num_boxes": tf.reduce_sum(tf.cast(confident, tf.int32), axis=1),
            "box_weights": tf.cast(reliable, tf.float32),
            "scores": tf.where(confident, found["detection_scores"][:, :keep], 0.0),
        }
        return pseudo, outputs["features"]

    def _unlabelled_loss(self, view: dict, windows: tf.Tensor, teacher_features: tf.Tensor) -> dict[str, tf.Tensor]:
        """Step 3: the student's loss parts on the strong view."""
        gt = {key: view[key] for key in detection.GT_KEYS}
        outputs = self.network_outputs(view["image"], training=True)
        rpn_seed, roi_seed = tf.unstack(self._step_seeds(True, stream=1))
        targets = self.coder.rpn_targets(gt, rpn_seed)
        proposals, real = self.coder.proposals(outputs, self.coder.train_proposals, tf.shape(view["image"])[0])
        targets.update(self.coder.sample_rois(proposals, real, gt, roi_seed))
        head = self._head(outputs["features"], targets["roi_boxes"], training=True)
        parts = self.coder.loss(targets, {**outputs, **head})
        cross_entropy, box_error = self.coder.head_errors(targets, head)
        sampled = targets["roi_weights"] > 0
        foreground = targets["roi_positive"] & sampled
        teacher_view = boxes_from_window(targets["roi_boxes"], windows, (self.coder.image_size, self.coder.image_size))
        teacher_logits = self.teacher._head(teacher_features, teacher_view, training=False)["class_logits"]
        background_score = tf.stop_gradient(tf.nn.softmax(teacher_logits, axis=-1)[..., 0])
        parts["class_loss"] = soft_class_loss(cross_entropy, foreground, sampled & ~targets["roi_positive"], background_score)
        reliable = foreground & (tf.gather(view["box_weights"], targets["roi_matched"], batch_dims=1) > 0)
        parts["box_loss"] = tf.reduce_sum(tf.where(reliable, box_error, 0.0)) / tf.maximum(tf.reduce_sum(targets["roi_weights"]), 1.0)
        return parts

    def train_step(self, data):
        x, y = data
        gt = {key: y[key] for key in detection.GT_KEYS}
        images = unlabelled_batch(x)
        seed = self.step_seed()
        pseudo, teacher_features = self._pseudo_boxes(images, tf.random.experimental.stateless_fold_in(seed, 1))
        view, windows = self.strong_view({"image": images, **{key: pseudo[key] for key in (*detection.GT_KEYS, "box_weights")}}, seed)
        with tf.GradientTape() as tape:
            total, parts, _ = self.detection_loss(x["labelled"], gt, training=True)
            unlabelled = self._unlabelled_loss(view, windows, teacher_features)
            total += self.unlabelled_weight * tf.add_n([unlabelled[part] for part in self.coder.loss_parts])
        step_and_average(self.optimizer, tape, total, [self.network, self.box_head],
                         [self.teacher.network, self.teacher.box_head], self.ema_decay)
        boxes = tf.maximum(tf.reduce_sum(tf.cast(pseudo["num_boxes"], tf.float32)), 1.0)
        unlabelled["pseudo_boxes"] = tf.reduce_mean(tf.cast(pseudo["num_boxes"], tf.float32))
        unlabelled["reliable_share"] = tf.reduce_sum(pseudo["box_weights"]) / boxes
        for name, tracker in self.unlabelled_trackers.items():
            tracker.update_state(unlabelled[name])
        return {**self._log(total, parts), **{t.name: t.result() for t in self.unlabelled_trackers.values()}}

    def get_config(self):
        return {
            **super().get_config(), "unlabelled_weight": self.unlabelled_weight, "confidence": self.confidence,
            "ema_decay": self.ema_decay, "box_uncertainty": self.box_uncertainty,
            "strong_scale_range": self.strong_scale_range, "max_pseudo_boxes": self.max_pseudo_boxes,
        }


def model(cfg: SoftTeacherConfig) -> SoftTeacherDetector:
    detector = SoftTeacherDetector(
        **detector_parts(cfg, "soft_teacher"), unlabelled_weight=cfg.unlabelled_weight, confidence=cfg.confidence,
        ema_decay=cfg.ema_decay, box_uncertainty=cfg.box_uncertainty, strong_scale_range=cfg.strong_scale_range,
        max_pseudo_boxes=cfg.max_boxes,
    )
    teacher = teacher_run(cfg)
    start_from_teacher(detector, teacher)
    start_from_teacher(detector.teacher, teacher)
    return detector


def report_extra(cfg: SoftTeacherConfig, trained: SoftTeacherDetector, run_dir) -> dict:
    """Settings and ``pseudo_boxes.png``: the trained teacher's pseudo-boxes on unlabelled scenes."""
    seed = tf.constant([cfg.seed, 0], tf.int64)
    picture = pseudo_boxes_picture(cfg, lambda pixels: trained._pseudo_boxes(pixels, seed)[0], run_dir / "pseudo_boxes.png")
    return {"confidence": cfg.confidence, "ema_decay": cfg.ema_decay, "box_uncertainty": cfg.box_uncertainty,
            "evaluated": "the EMA teacher", "pseudo_picture": picture}


RECIPE = semi_supervised_detection_recipe(
    "soft_teacher", "Soft Teacher: an EMA teacher's pseudo-boxes, background weighted by its scores, box-jitter "
    "filtered regression, on a faster_rcnn (notes-001 §34)", SoftTeacherConfig, model,
    lambda cfg: training_elements(cfg), report_extra,
)
