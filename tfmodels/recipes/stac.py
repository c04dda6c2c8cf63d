"""``stac``: offline pseudo-boxes from a supervised teacher, then training on strongly augmented scenes.

Spec: notes-001.md §33 (seed L1077-1083: STAC, Self-Training with Augmentation Consistency:
train a teacher on the labelled images, let it pseudo-label the unlabelled ones, keep the
confident boxes, and train on labelled plus strongly augmented pseudo-labelled images) and Sohn
et al., 2020 (paper default: confidence 0.9, λu 2, colour + box-aware geometry + Cutout). The
paper's three stages, each resumable:

1. **supervised teacher**: ``tfmodels train faster_rcnn --set labelled_fraction=0.1`` (the labelled
   scenes only; an ordinary run, resumable as every run);
2. **offline pseudo-boxes** (:func:`pseudo_boxes`): the teacher run's detections on every
   unlabelled scene scoring at least ``confidence`` (after its NMS), at most ``max_boxes`` per
   scene, written to ``assets/pseudo_boxes.npz`` during this run's data stage and read back from
   there by every later stage and by a resumed run. Their precision and recall against the
   dropped true boxes (IoU ≥ 0.5, same class) are measured here for the report only;
3. **training** (:class:`PseudoLabelDetector`): ``L = L_s + λu · L_u``, ``L_s`` the ``faster_rcnn`` loss
   (RPN + head) of the labelled scenes, ``L_u`` the same loss of the unlabelled scenes' strong views
   (:mod:`pipelines.detection.strong_augment`) against their pseudo-boxes, moved with them.

Usage::

    tfmodels train faster_rcnn --set labelled_fraction=0.1                 # stage 1
    tfmodels train stac --set teacher=runs/faster_rcnn/<timestamp>         # stages 2 and 3

Presets: ``faster_rcnn``'s network and test settings (:mod:`tfmodels.recipes.semi_supervised_detection`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.detection.boxes import pairwise_iou
from pipelines.detection.strong_augment import strong_view_fn
from tfmodels.models.semi_supervised_classifier import unlabelled_images
from tfmodels.recipes import detection
from tfmodels.recipes.faster_rcnn import detector_parts
from tfmodels.recipes.semi_supervised_detection import (
    SemiSupervisedDetectionConfig, pseudo_boxes_picture, semi_supervised_detection_recipe, start_from_teacher,
    teacher_run, training_elements, unlabelled_batch, unlabelled_scenes,
)
from tfmodels.recipes.two_stage import TwoStageDetector
from tfmodels.training.run_assets import run_asset

PSEUDO_ASSET = "pseudo_boxes.npz"


@dataclasses.dataclass
class StacConfig(SemiSupervisedDetectionConfig):
    """STAC's settings (:class:`~tfmodels.recipes.semi_supervised_detection.SemiSupervisedDetectionConfig`;
    λu 2 and confidence 0.9 are the paper's)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = SemiSupervisedDetectionConfig.PRESETS


def box_quality(pseudo: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], iou: float = 0.5) -> dict[str, float]:
    """Precision and recall of pseudo-boxes against the true boxes (same class, IoU ≥ ``iou``).

    Both take ``boxes`` ``[N, G, 4]``, ``classes`` ``[N, G]`` (-1 on padding), ``num_boxes`` ``[N]``.

    Example:
        >>> box = np.array([[[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]], np.float32)
        >>> truth = {"boxes": box, "classes": np.array([[1, 2]]), "num_boxes": np.array([2])}
        >>> pseudo = {"boxes": box, "classes": np.array([[1, -1]]), "num_boxes": np.array([1])}
        >>> box_quality(pseudo, truth)
        {'precision': 1.0, 'recall': 0.5, 'boxes_per_scene': 1.0}
    """
    overlap = pairwise_iou(tf.constant(pseudo["boxes"], tf.float32), tf.constant(truth["boxes"], tf.float32)).numpy()
    rows, cols = (np.arange(a["classes"].shape[1])[None] < a["num_boxes"][:, None] for a in (pseudo, truth))
    same = pseudo["classes"][:, :, None] == truth["classes"][:, None, :]
    hit = (overlap >= iou) & same & rows[:, :, None] & cols[:, None, :]
    found, real = int(rows.sum()), int(cols.sum())
    return {
        "precision": float(hit.any(axis=2).sum() / max(found, 1)),
        "recall": float(hit.any(axis=1).sum() / max(real, 1)),
        "boxes_per_scene": float(found / max(len(rows), 1)),
    }


def _label_scenes(cfg: StacConfig) -> dict[str, np.ndarray]:
    """Stage 2: the teacher run's confident detections on the unlabelled scenes, with their quality."""
    teacher = teacher_run(cfg)
    _, unlabelled, _ = unlabelled_scenes(cfg)
    truth, detections, _ = detection.detect_split(teacher, unlabelled, cfg.batch_size or 32)
    keep = cfg.max_boxes
    confident = detections["detection_scores"][:, :keep] >= cfg.confidence  # scores descend: a prefix
    num_boxes = confident.sum(axis=1).astype(np.int32)
    pseudo = {
        "boxes": np.where(confident[..., None], detections["detection_boxes"][:, :keep], 0.0).astype(np.float32),
        "classes": np.where(confident, detections["detection_classes"][:, :keep], -1).astype(np.int32),
        "num_boxes": num_boxes,
        "scores": np.where(confident, detections["detection_scores"][:, :keep], 0.0).astype(np.float32),
    }
    if pseudo["boxes"].shape[1] < keep:  # fewer detections than boxes per scene: pad to max_boxes
        pad = keep - pseudo["boxes"].shape[1]
        pseudo["boxes"] = np.pad(pseudo["boxes"], [(0, 0), (0, pad), (0, 0)])
        pseudo["classes"] = np.pad(pseudo["classes"], [(0, 0), (0, pad)], constant_values=-1)
        pseudo["scores"] = np.pad(pseudo["scores"], [(0, 0), (0, pad)])
    quality = box_quality(pseudo, truth)
    print(f"Pseudo-boxes of {len(num_boxes)} unlabelled scenes at confidence >= {cfg.confidence:g}: "
          f"{quality['boxes_per_scene']:.2f} per scene, precision {quality['precision']:.3f}, recall {quality['recall']:.3f}")
    return {**pseudo, **{f"quality_{key}": np.float64(value) for key, value in quality.items()}}


def pseudo_boxes(cfg: StacConfig) -> dict[str, np.ndarray]:
    """The run's pseudo-boxes (``assets/pseudo_boxes.npz``; stage 2 of the module docstring)."""

    def save(value, path):
        with open(path, "wb") as file:
            np.savez(file, **value)

    def load(path):
        with np.load(path) as saved:
            return {key: saved[key] for key in saved.files}

    return run_asset(cfg, PSEUDO_ASSET, lambda: _label_scenes(cfg), save, load)


@keras.saving.register_keras_serializable(package="tfmodels")
class PseudoLabelDetector(TwoStageDetector):
    """A two-stage detector trained on labelled scenes plus strong views of pseudo-labelled ones.

    ``train_step`` takes the elements of :mod:`tfmodels.recipes.semi_supervised_detection` with
    ``pseudo_boxes``, ``pseudo_classes``, ``pseudo_num_boxes`` ``[B, μ, ...]`` targets and logs
    the loss parts of both halves (``unlabelled_*``) and the pseudo-boxes per strong view.
    Evaluation, inference and export are :class:`TwoStageDetector`'s.

    Args:
        unlabelled_weight: λu.
        strong_scale_range: zoom range of the strong views.
        **kwargs: :class:`TwoStageDetector`'s.
    """

    def __init__(self, *args, unlabelled_weight: float = 2.0, strong_scale_range=(0.5, 1.5), **kwargs):
        super().__init__(*args, **kwargs)
        self.unlabelled_weight = float(unlabelled_weight)
        self.strong_scale_range = tuple(float(v) for v in strong_scale_range)
        self.strong_view = strong_view_fn(self.strong_scale_range)
        self.unlabelled_trackers = {
            part: keras.metrics.Mean(name=f"unlabelled_{part}") for part in (*self.coder.loss_parts, "pseudo_boxes")
        }

    @property
    def metrics(self):
        return [*super().metrics, *self.unlabelled_trackers.values()]

    def train_step(self, data):
        x, y = data
        gt = {key: y[key] for key in detection.GT_KEYS}
        pseudo = {key: unlabelled_images(y[f"pseudo_{key}"]) for key in detection.GT_KEYS}  # [B, μ, ...] -> [B·μ, ...]
        view, _ = self.strong_view({"image": unlabelled_batch(x), **pseudo}, self.step_seed())
        view_gt = {key: view[key] for key in detection.GT_KEYS}
        with tf.GradientTape() as tape:
            total, parts, _ = self.detection_loss(x["labelled"], gt, training=True)
            _, unlabelled_parts, _ = self.detection_loss(view["image"], view_gt, training=True, stream=1)
            total += self.unlabelled_weight * tf.add_n([unlabelled_parts[part] for part in self.coder.loss_parts])
        self.optimizer_step(tape, total)
        unlabelled_parts["pseudo_boxes"] = tf.reduce_mean(tf.cast(view["num_boxes"], tf.float32))
        for part, tracker in self.unlabelled_trackers.items():
            tracker.update_state(unlabelled_parts[part])
        return {**self._log(total, parts), **{t.name: t.result() for t in self.unlabelled_trackers.values()}}

    def get_config(self):
        return {**super().get_config(), "unlabelled_weight": self.unlabelled_weight,
                "strong_scale_range": self.strong_scale_range}


def model(cfg: StacConfig) -> PseudoLabelDetector:
    detector = PseudoLabelDetector(**detector_parts(cfg, "stac"), unlabelled_weight=cfg.unlabelled_weight,
                                   strong_scale_range=cfg.strong_scale_range)
    start_from_teacher(detector, teacher_run(cfg))
    return detector


def datasets(cfg: StacConfig):
    return training_elements(cfg, pseudo_boxes(cfg))


def report_extra(cfg: StacConfig, trained, run_dir) -> dict:
    """The pseudo-boxes' asset, quality and picture (the saved ones: what stage 3 trained on)."""
    saved = pseudo_boxes(cfg)
    picture = pseudo_boxes_picture(cfg, lambda pixels: {key: saved[key][: len(pixels)] for key in (*detection.GT_KEYS, "scores")},
                                   run_dir / "pseudo_boxes.png")
    return {"pseudo_boxes": f"assets/{PSEUDO_ASSET}", "confidence": cfg.confidence, "pseudo_picture": picture,
            **{key: float(value) for key, value in saved.items() if key.startswith("quality_")}}


RECIPE = semi_supervised_detection_recipe(
    "stac", "STAC: offline pseudo-boxes (>= 0.9) of a 10%-label faster_rcnn teacher, then training on strong "
    "views of them (notes-001 §33)", StacConfig, model, datasets, report_extra,
)
