"""``ssd``: the Single Shot MultiBox Detector, d2l's TinySSD (``tiny``/``default``) and SSD300 (``paper``).

Specs: notes-002-part2.md §3 and §13 (seed 002 L2070-2074, L2173-2185), notes-001.md §22 (seed
001 L547-573); the networks are :mod:`tfmodels.models.ssd`. Data, training step, serving and
report are the shared detection layer's (:mod:`tfmodels.recipes.detection`).

Anchors: :func:`pipelines.detection.anchors.multibox_anchors` on every scale's feature map, sizes
``anchor_sizes`` (two per scale: d2l's ``sizes``) and ratios ``anchor_ratios`` (d2l: 1, 2, 0.5),
so ``2 + 3 - 1 = 4`` anchors per location. d2l's sizes start at 0.2 of the image, larger than
most digits (a digit's box is 0.05-0.28 of a 128² scene, median 0.15, and mostly taller than
wide: width / height 0.2-1.7, median 0.8), so the digit presets use sizes 0.08 to 0.9 and ratios
0.7, 0.45, 1. Measured on 150 training scenes at 128², d2l's ratios with sizes from 0.06 gave a
box's best anchor a median IoU of 0.50 and 1.3 positive anchors per box; these give 0.55 and 1.8.
``paper`` uses SSD300's default boxes (8,732 at 300²).

Targets (:func:`pipelines.detection.assignment.multibox_targets`): the notes' greedy max-IoU
assignment, then IoU >= 0.5 ([REF d2l]; SSD's matching threshold too); class ``c + 1`` for an
anchor on a box of class ``c``, 0 for background; d2l's offsets (σ 0.1 / 0.2, SSD's variances).

Loss: softmax cross-entropy with **hard-negative mining** at 3 negatives per positive, plus
smooth-L1 (``box_loss=smooth_l1``; ``l1`` is d2l's) on the positive anchors' offsets, both summed
and divided by the number of positive anchors (SSD paper §2.2, paper default; notes-001.md §22
names this loss). Why mining and not focal loss: it is the paper's choice and the spec's; it
needs no prior-probability initialisation of the class bias and no α/γ tuning; and it bounds the
negatives to 3:1 per image, so the few digit-sized positives among 1,364 anchors (5,444 at 256²,
8,732 in SSD300) are not drowned by the easy background (d2l's plain mean over all anchors would
be). The mined negatives are the background anchors with the highest cross-entropy in each image,
chosen in the graph (a sort per image), with no gradient through the choice.

Presets:

* ``tiny``: a narrow TinySSD (base 8/16/32, stages 32) at 64², 64 scenes, one epoch: the tests.
* ``default``: TinySSD at half d2l's widths (base 8/16/32, stages 64 ×3; ``--set
  base_channels=16,32,64 stage_channels=128,128,128`` restores d2l's) on 128² digit scenes (the
  scene size): a training step of d2l's widths took 2.1x as long on 2 CPU cores (6.1 s against
  2.9 s per batch of 32, measured on a shared machine), so within the ~15 minutes budget the
  half widths get about twice the steps. Adam at lr 2e-3 with a cosine schedule for 9 epochs of 4,000
  scenes (d2l trains with SGD at lr 0.2 for 20 epochs), scale jitter 0.75-1.33, no flips (a
  mirrored digit is no digit).
* ``paper``: SSD300 on VGG-16 on ``tfds:voc/2007`` at 300², SGD momentum 0.9, lr 1e-3 divided by
  10 twice, batch 32, flips and zoom in/out (paper default). Not reproduced here: the paper's
  weight decay 5e-4 (our SGD has none), its photometric distortions and IoU-constrained crops,
  ImageNet initialisation of VGG-16 and VOC 2012 in the training set.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.detection.anchors import multibox_anchors
from pipelines.detection.assignment import multibox_targets
from pipelines.detection.boxes import clip_boxes, decode_offsets
from tfmodels.config import ConfigError
from tfmodels.models import ssd
from tfmodels.recipes.detection import BoxCoder, DetectionConfig, Detector, detection_recipe, detector_settings

# Digit-scene anchor sizes (fractions of the image), two per scale for TinySSD's five scales.
DIGIT_SIZES = (0.08, 0.11, 0.15, 0.2, 0.26, 0.34, 0.45, 0.6, 0.7, 0.9)
DIGIT_RATIOS = (0.7, 0.45, 1.0)  # width / height: digits are taller than wide


@dataclasses.dataclass
class SsdConfig(DetectionConfig):
    """SSD config (see :class:`~tfmodels.recipes.detection.DetectionConfig` for the shared fields).

    Args:
        architecture: ``tiny_ssd`` (d2l's TinySSD) or ``ssd300`` (the paper's, on VGG-16).
        base_channels: TinySSD's base-net widths (d2l: 16, 32, 64).
        stage_channels: TinySSD's later block widths (d2l: 128 ×3); scales = these + 2.
        anchor_sizes: TinySSD's anchor sizes, two per scale, fractions of the image height.
        anchor_ratios: TinySSD's aspect ratios (width / height), the same at every scale.
        match_iou: IoU from which a non-greedy anchor is positive.
        negative_ratio: hard negatives kept per positive anchor.
        box_loss: ``smooth_l1`` (SSD) or ``l1`` (d2l) on the positive anchors' offsets.
    """

    architecture: str = "tiny_ssd"
    base_channels: tuple[int, ...] = (16, 32, 64)
    stage_channels: tuple[int, ...] = (128, 128, 128)
    anchor_sizes: tuple[float, ...] = DIGIT_SIZES
    anchor_ratios: tuple[float, ...] = DIGIT_RATIOS
    match_iou: float = 0.5
    negative_ratio: float = 3.0
    box_loss: str = "smooth_l1"
    epochs: int = 9
    batch_size: int = 32
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64, "base_channels": (8, 16, 32), "stage_channels": (32, 32, 32),
            "num_scenes": (64, 16, 16), "epochs": 1, "batch_size": 16, "verbose": 2, "max_detections": 20,
        },
        "default": {"base_channels": (8, 16, 32), "stage_channels": (64, 64, 64)},
        "paper": {
            "architecture": "ssd300", "data": "tfds:voc/2007", "image_size": 300, "max_boxes": 64,
            "optimizer": "momentum", "momentum": 0.9, "learning_rate": 1e-3, "batch_size": 32,
            "epochs": 383, "lr_schedule": "multistep", "lr_milestones": (255, 319), "lr_gamma": 0.1,
            "flip": True, "scale_range": (0.5, 2.0), "score_threshold": 0.01, "max_detections": 200,
        },
    }
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **DetectionConfig.CHOICES,
        "architecture": ("tiny_ssd", "ssd300"),
        "box_loss": ("smooth_l1", "l1"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        scales = len(self.stage_channels) + 2
        if self.architecture == "tiny_ssd" and len(self.anchor_sizes) != 2 * scales:
            raise ConfigError(f"anchor_sizes needs two sizes per scale: {2 * scales} for {scales} scales, got {len(self.anchor_sizes)}")


@keras.saving.register_keras_serializable(package="tfmodels")
class SsdCoder(BoxCoder):
    """SSD's targets, loss and decoding over fixed multiscale anchors (module docstring).

    Args:
        image_size: side of the square model input in pixels.
        feature_sizes: ``(h, w)`` of each scale's feature map, largest first.
        sizes: anchor sizes per scale (fractions of the image height).
        ratios: aspect ratios per scale.
        match_iou: IoU from which a non-greedy anchor is positive.
        negative_ratio: hard negatives per positive.
        box_loss: ``smooth_l1`` or ``l1``.

    Example:
        >>> coder = SsdCoder(256, [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)], ssd.TINY_SSD_SIZES,
        ...                  [ssd.TINY_SSD_RATIOS] * 5)
        >>> coder.anchors.shape
        (5444, 4)
    """

    loss_parts = ("class_loss", "box_loss")

    def __init__(self, image_size, feature_sizes, sizes, ratios, match_iou=0.5, negative_ratio=3.0,
                 box_loss="smooth_l1", **kwargs):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.feature_sizes = [tuple(int(v) for v in size) for size in feature_sizes]
        self.sizes = [tuple(float(v) for v in s) for s in sizes]
        self.ratios = [tuple(float(v) for v in r) for r in ratios]
        self.match_iou, self.negative_ratio, self.box_loss = float(match_iou), float(negative_ratio), box_loss
        image = (self.image_size, self.image_size)
        per_scale = zip(self.feature_sizes, self.sizes, self.ratios, strict=True)
        # NumPy, so each traced graph embeds the anchors as a constant.
        self.anchors = np.concatenate([multibox_anchors(f, image, s, r).numpy() for f, s, r in per_scale])

    def encode(self, gt):
        targets = multibox_targets(self.anchors, gt["boxes"], gt["classes"], gt["num_boxes"], self.match_iou)
        return {key: targets[key] for key in ("class_targets", "offset_targets", "offset_mask")}

    def _hard_negatives(self, cross_entropy, positive):
        """``[B, A]`` True on each image's ``negative_ratio × positives`` hardest background anchors."""
        background_loss = tf.stop_gradient(tf.where(positive, -1.0, cross_entropy))  # positives rank last
        rank = tf.argsort(tf.argsort(background_loss, axis=1, direction="DESCENDING", stable=True), axis=1, stable=True)
        num_positive = tf.reduce_sum(tf.cast(positive, tf.float32), axis=1, keepdims=True)
        return ~positive & (tf.cast(rank, tf.float32) < self.negative_ratio * num_positive)

    def loss(self, targets, outputs):
        classes = targets["class_targets"]
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, outputs["class_logits"])
        positive = classes > 0
        selected = positive | self._hard_negatives(cross_entropy, positive)
        num_positive = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.float32)), 1.0)
        error = tf.abs(outputs["offsets"] - targets["offset_targets"])
        if self.box_loss == "smooth_l1":  # Fast R-CNN's smooth L1 (β = 1): quadratic below 1
            error = tf.where(error < 1.0, 0.5 * error**2, error - 0.5)
        return {
            "class_loss": tf.reduce_sum(tf.where(selected, cross_entropy, 0.0)) / num_positive,
            "box_loss": tf.reduce_sum(error * targets["offset_mask"]) / num_positive,
        }

    def decode(self, outputs):
        probabilities = tf.nn.softmax(outputs["class_logits"], axis=-1)[..., 1:]  # drop background
        boxes = decode_offsets(tf.constant(self.anchors)[None], outputs["offsets"])
        return clip_boxes(boxes, (self.image_size, self.image_size)), probabilities

    def get_config(self):
        return {
            **super().get_config(), "image_size": self.image_size, "feature_sizes": self.feature_sizes,
            "sizes": self.sizes, "ratios": self.ratios, "match_iou": self.match_iou,
            "negative_ratio": self.negative_ratio, "box_loss": self.box_loss,
        }


def anchor_shapes(cfg: SsdConfig) -> tuple[list, list]:
    """``(sizes, ratios)`` per scale: SSD300's default boxes, or the config's for TinySSD."""
    if cfg.architecture == "ssd300":
        return list(ssd.SSD300_SIZES), list(ssd.SSD300_RATIOS)
    sizes = [tuple(cfg.anchor_sizes[i : i + 2]) for i in range(0, len(cfg.anchor_sizes), 2)]
    return sizes, [tuple(cfg.anchor_ratios)] * len(sizes)


def model(cfg: SsdConfig) -> Detector:
    settings = detector_settings(cfg)
    sizes, ratios = anchor_shapes(cfg)
    if cfg.architecture == "ssd300":
        network = ssd.build_ssd300(settings["num_classes"], cfg.image_size)
    else:
        network = ssd.build_tiny_ssd(
            settings["num_classes"], cfg.image_size, ssd.anchors_per_pixel(sizes, ratios),
            cfg.base_channels, cfg.stage_channels,
        )
    coder = SsdCoder(cfg.image_size, ssd.feature_map_sizes(network), sizes, ratios, cfg.match_iou,
                     cfg.negative_ratio, cfg.box_loss, name="ssd_coder")
    return Detector(network, coder, name="ssd", **settings)


RECIPE = detection_recipe(
    "ssd", "SSD: d2l's TinySSD on digit scenes, SSD300/VGG-16 at paper scale (notes-002 §13, notes-001 §22)",
    SsdConfig, model,
)
