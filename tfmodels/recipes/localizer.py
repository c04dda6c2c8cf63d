"""``localizer``: the notes' single-object "classification + localisation" task (notes-002-part2 §1-2).

Spec: seed 002 L2019-2023 (classify the one object of an image and draw one box around it),
L2047 (four numbers: a point plus width and height), L2054-2062 (box forms, y downwards); the
spec's implementation note (a backbone, ``Dense(num_classes)`` + ``Dense(4)``, loss
``CE + lambda L1``) and its check: the box must beat the "predict the mean box" baseline.

Network: :func:`tfmodels.models.localizer.build_localizer` (ResNet, flattened features, class
and box heads). Loss (:class:`LocalizerCoder`): softmax cross-entropy on the class plus
``box_weight`` times the L1 distance between the predicted and true ``(cx, cy, w, h)``, both as
fractions of the input size; the notes give no lambda, 1 weighs a box off by 0.1 of the image
in every coordinate like a class probability of 0.67.

Data: digit scenes with exactly one digit (``embedded``); for the other detection sources
(``tfds:voc/2007``, ``coco:``, ``voc:``) the largest object of each image is its one object
(:func:`pipelines.detection.sources.load` with ``max_boxes=1`` keeps the largest box).
Images are letterboxed to ``image_size`` like every detector's.

The model is the shared detection layer's :class:`~tfmodels.recipes.detection.Detector` with
one box per image, so training, validation ``map``, serving (the same five served names, with
``K = 1``: ``detection_boxes [B, 1, 4]`` etc.) and ``detections.png`` are the detectors'. The
report adds the task's own numbers beside the baseline: mean IoU of the predicted box with the
true one and class accuracy on the test split, against the mean training box (in fractions of
the image) and the most frequent training class.

Presets: ``tiny`` (seconds: the tests), ``default`` (12,000 one-digit scenes at 96x96, a narrow
ResNet-10, 12 epochs on 2 CPU cores: with 3,000 scenes the class never left chance, training
cross-entropy 2.29 ≈ ln 10, while the box did; four times the scenes (four times the steps)
reached test accuracy 0.47) and ``paper`` (no paper: ResNet-18 at 224x224 on VOC 2007's largest
objects, SGD momentum 0.9, as the zoo's ResNet recipes).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import sources as data_sources
from pipelines.detection import augment, sources
from pipelines.detection.boxes import center_to_corner, clip_boxes, corner_to_center, pairwise_iou
from pipelines.detection.digit_scenes import SceneConfig
from pipelines.splits import Splits
from tfmodels.models.localizer import build_localizer
from tfmodels.recipes import detection
from tfmodels.recipes.detection import BoxCoder, DetectionConfig, Detector, detector_settings

BOX_WEIGHT = 1.0


@keras.saving.register_keras_serializable(package="tfmodels")
class LocalizerCoder(BoxCoder):
    """Targets, loss and decoding of one class + one box per image (module docstring).

    Args:
        num_classes: classes C.
        image_size: side of the square input, to turn fractions into pixels.
        box_weight: lambda of the box L1 term.
    """

    loss_parts = ("class_loss", "box_loss")

    def __init__(self, num_classes: int, image_size: int, box_weight: float = BOX_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.box_weight = float(box_weight)

    def encode(self, gt):
        """The first object of each image: class, ``(cx, cy, w, h)`` fractions, and whether it exists."""
        return {
            "class": tf.maximum(tf.cast(gt["classes"][:, 0], tf.int32), 0),
            "box": corner_to_center(tf.cast(gt["boxes"][:, 0], tf.float32)) / float(self.image_size),
            "valid": tf.cast(gt["num_boxes"] > 0, tf.float32),
        }

    def loss(self, targets, outputs):
        images = tf.maximum(tf.reduce_sum(targets["valid"]), 1.0)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(targets["class"], outputs["class_logits"])
        distance = tf.reduce_sum(tf.abs(outputs["box"] - targets["box"]), axis=-1)
        return {
            "class_loss": tf.reduce_sum(cross_entropy * targets["valid"]) / images,
            "box_loss": self.box_weight * tf.reduce_sum(distance * targets["valid"]) / images,
        }

    def decode(self, outputs):
        """One box per image ``[B, 1, 4]`` (pixels, clipped to the input: serving clips to the image,
        and the two must agree; sizes below 0 become 0) and its softmax ``[B, 1, C]``."""
        center, size = outputs["box"][:, :2], tf.maximum(outputs["box"][:, 2:], 0.0)
        boxes = center_to_corner(tf.concat([center, size], axis=-1) * float(self.image_size))
        boxes = clip_boxes(boxes, (self.image_size, self.image_size))
        return boxes[:, None, :], tf.nn.softmax(outputs["class_logits"])[:, None, :]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "image_size": self.image_size, "box_weight": self.box_weight}


@dataclasses.dataclass
class LocalizerConfig(DetectionConfig):
    """Localizer config (shared fields: :class:`~tfmodels.recipes.detection.DetectionConfig`).

    Args:
        stage_blocks: basic blocks per ResNet stage of the backbone.
        width: the backbone's first-stage channels.
        box_weight: lambda of the box L1 term.
    """

    stage_blocks: tuple[int, ...] = (2, 2, 2, 2)
    width: int = 64
    box_weight: float = BOX_WEIGHT
    max_boxes: int = 1
    max_detections: int = 1
    score_threshold: float = 0.0  # every image gets its one answer

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64,
            "num_scenes": (64, 16, 16),
            "stage_blocks": (1, 1, 1, 1),
            "width": 8,
            "epochs": 2,
            "batch_size": 16,
            "verbose": 2,
        },
        "default": {
            "image_size": 96,
            "num_scenes": (12000, 500, 500),
            "stage_blocks": (1, 1, 1, 1),
            "width": 16,
            "epochs": 12,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "lr_schedule": "cosine",
            "verbose": 2,
        },
        "paper": {
            "data": "tfds:voc/2007",
            "image_size": 224,
            "flip": True,
            "optimizer": "momentum",
            "momentum": 0.9,
            "learning_rate": 0.01,
            "batch_size": 64,
            "epochs": 60,
            "lr_schedule": "cosine",
        },
    }


def datasets(cfg: LocalizerConfig) -> Splits:
    """``(image, gt)`` elements with one object each, letterboxed to ``cfg.image_size`` (module docstring)."""
    names = detection.class_names(cfg)
    kind, _ = data_sources.parse(cfg.data, sources.SOURCES)
    scenes = SceneConfig(digits_per_scene=(1, 1)) if kind == "embedded" else None
    splits = sources.load(
        cfg.data, seed=cfg.data_seed, max_boxes=1, num_scenes=tuple(cfg.num_scenes), scene_config=scenes, class_names=names
    )
    size = (cfg.image_size, cfg.image_size)

    def prepare(element):
        resized, _, _ = augment.resize({key: element[key] for key in ("image", *detection.GT_KEYS)}, size)
        return resized["image"], {key: resized[key] for key in detection.GT_KEYS}

    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    prepared = (split.map(prepare, **parallel) for split in (splits.train, splits.validation, splits.test))
    return Splits(*prepared, {**splits.info, "image_size": cfg.image_size})


def model(cfg: LocalizerConfig) -> Detector:
    settings = detector_settings(cfg)
    shape = (cfg.image_size, cfg.image_size, 3)
    network = build_localizer(settings["num_classes"], shape, cfg.stage_blocks, cfg.width)
    coder = LocalizerCoder(settings["num_classes"], cfg.image_size, cfg.box_weight)
    return Detector(network, coder, name="localizer", **settings)


def _box_scores(boxes: np.ndarray, classes: np.ndarray, gt: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean IoU of one box per image with its true box, and class accuracy, over images with an object."""
    real = gt["num_boxes"] > 0
    iou = np.diagonal(pairwise_iou(boxes[real], gt["boxes"][real, 0]).numpy())
    return {"mean_iou": float(iou.mean()), "accuracy": float(np.mean(classes[real] == gt["classes"][real, 0]))}


def _training_answers(train: tf.data.Dataset) -> tuple[np.ndarray, int]:
    """The baseline's answers: the mean training box (corner form, pixels) and the most frequent class."""
    boxes, classes = [], []
    for _, gt in train.batch(256):
        real = gt["num_boxes"].numpy() > 0
        boxes.append(gt["boxes"].numpy()[real, 0])
        classes.append(gt["classes"].numpy()[real, 0])
    mean_center_box = corner_to_center(np.concatenate(boxes)).numpy().mean(axis=0)
    return center_to_corner(mean_center_box).numpy(), int(np.bincount(np.concatenate(classes)).argmax())


def report(cfg: LocalizerConfig, model: Detector, splits: Splits, run_dir: Path) -> dict:
    """The detectors' report (COCO mAP, ``detections.png``) plus mean IoU and accuracy vs the baseline."""
    results = detection.report(cfg, model, splits, run_dir)
    gt, detections, _ = detection.detect_split(model, splits.test, cfg.batch_size or 32)
    mean_box, majority = _training_answers(splits.train)
    count = len(gt["num_boxes"])
    baseline = _box_scores(np.tile(mean_box, (count, 1)), np.full(count, majority), gt)
    ours = _box_scores(detections["detection_boxes"][:, 0], detections["detection_classes"][:, 0], gt)
    return {**results, **ours, "baseline": {"mean_box": mean_box.round(2).tolist(), "majority_class": majority, **baseline}}


RECIPE = detection.detection_recipe(
    "localizer",
    "Classification + localisation (notes-002 §1-2): one class and one box per image, vs the mean box",
    LocalizerConfig,
    model,
    datasets=datasets,
    report=report,
)
