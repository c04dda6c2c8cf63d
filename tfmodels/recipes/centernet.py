"""``centernet``: the anchor-free detector of notes-002-part2.md §15, "Objects as Points".

Spec: notes-002-part2.md §15 (seed 002 L2194-2198: no anchors, an FCN says for every pixel
whether it is a box centre, like segmentation). The rest is the paper's (Zhou, Wang & Krähenbühl
2019; paper default), as the spec's [REF] lists it:

* network (:func:`tfmodels.models.centernet.build_centernet`): backbone, up-convolutions to
  output stride 4, heads for the class heatmap (sigmoid, prior bias -2.19), size and offset;
* targets (:func:`pipelines.detection.centernet_targets.centernet_targets`): a Gaussian per box
  at its centre pixel in its class channel (CornerNet's size-adaptive radius), size and offset
  read at the centre pixel;
* loss (:meth:`CenterNetCoder.loss`): the paper's pixel-wise focal loss with alpha 2, beta 4,
  ``L_k = -1/N sum{(1 - p)^a log p at Y = 1; (1 - Y)^b p^a log(1 - p) elsewhere}``, plus
  ``0.1 L_size + 1 L_off``, both L1 at the centre pixels over the N objects;
* decoding (:meth:`CenterNetCoder.decode`): sigmoid, 3x3 max-pool peak picking (a pixel is kept
  where it equals the max of its 3x3 neighbourhood: the paper's replacement for NMS), the top
  K = 100 peaks over all classes, each box ``(x + dx, y + dy) * 4 -/+ (w, h) * 4 / 2``, clipped to the input.
  The paper applies no NMS, so the presets set ``iou_threshold`` 1.0 (nothing overlaps more).

Data, augmentation, training step, validation mAP, serving and the report are the shared
detection layer's (:mod:`tfmodels.recipes.detection`).

Presets: ``tiny`` (a narrow network at 64x64, a few dozen scenes: the tests), ``default`` (a
ResNet-18 of width 16 with skip connections, up-convolutions and heads of 64 and 32 channels,
at 128x128 on 4,000 digit scenes, 15 epochs of Adam + cosine: test mAP@0.5 0.823, mAP@[.5:.95]
0.545, 35 minutes on 2 CPU cores shared with other trainings; at width 8 with 32-channel
up-convolutions, 16-channel heads, 3,000 scenes and 8 epochs it reached only 0.069) and ``paper``
(ResNet-18 with deformable up-convolutions at 512x512 on COCO 2017: batch 114, Adam 5e-4 for
140 epochs divided by 10 at 90 and 120, flips and scale jitter 0.6-1.3: the paper's ResNet
schedule).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import tensorflow as tf

from pipelines.detection.boxes import clip_boxes
from pipelines.detection.centernet_targets import MIN_OVERLAP, OUTPUT_STRIDE, centernet_targets
from tfmodels.models.centernet import build_centernet
from tfmodels.recipes.detection import BoxCoder, DetectionConfig, Detector, detection_recipe, detector_settings

FOCAL_ALPHA, FOCAL_BETA = 2.0, 4.0  # paper default
SIZE_WEIGHT, OFFSET_WEIGHT = 0.1, 1.0  # paper default lambda_size, lambda_off
TOP_K = 100  # paper default


def focal_loss(heatmap: tf.Tensor, logits: tf.Tensor, alpha: float = FOCAL_ALPHA, beta: float = FOCAL_BETA) -> tf.Tensor:
    """The paper's penalty-reduced pixel-wise focal loss, summed (divide by N yourself).

    ``-(1 - p)^alpha log p`` where the target is exactly 1 (a key point) and
    ``-(1 - Y)^beta p^alpha log(1 - p)`` elsewhere, ``p = sigmoid(logits)``; the logs are
    ``log_sigmoid`` of the logits, finite where ``p`` rounds to 0 or 1.

    Args:
        heatmap: target ``Y`` in [0, 1], any shape.
        logits: predicted logits, the same shape.
        alpha, beta: the focusing and penalty-reduction exponents.

    Returns:
        The float32 sum over all elements.

    Example:
        >>> import math
        >>> loss = focal_loss(tf.constant([1.0, 0.5]), tf.constant([0.0, 0.0]))
        >>> bool(abs(float(loss) - (0.25 * math.log(2) + 0.0625 * 0.25 * math.log(2))) < 1e-6)
        True
    """
    heatmap, logits = tf.cast(heatmap, tf.float32), tf.cast(logits, tf.float32)
    probability = tf.sigmoid(logits)
    positive = -tf.pow(1.0 - probability, alpha) * tf.math.log_sigmoid(logits)
    negative = -tf.pow(1.0 - heatmap, beta) * tf.pow(probability, alpha) * tf.math.log_sigmoid(-logits)
    return tf.reduce_sum(tf.where(tf.equal(heatmap, 1.0), positive, negative))


def _at_pixels(feature_map: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """``[B, K, D]``: the rows of ``feature_map [B, h, w, D]`` at row-major pixels ``indices [B, K]``."""
    shape = tf.shape(feature_map)
    flat = tf.reshape(feature_map, [shape[0], shape[1] * shape[2], feature_map.shape[-1]])
    return tf.gather(flat, indices, batch_dims=1)


def peaks(heat: tf.Tensor) -> tf.Tensor:
    """``heat`` where it equals the max of its 3x3 neighbourhood, else 0 (the paper's peak picking).

    Example:
        >>> heat = tf.constant([0.2, 0.9, 0.8, 0.1, 0.7])[None, None, :, None]
        >>> peaks(heat)[0, 0, :, 0].numpy().tolist()
        [0.0, 0.8999999761581421, 0.0, 0.0, 0.699999988079071]
    """
    pooled = tf.nn.max_pool2d(heat, ksize=3, strides=1, padding="SAME")
    return tf.where(tf.equal(pooled, heat), heat, 0.0)


@keras.saving.register_keras_serializable(package="tfmodels")
class CenterNetCoder(BoxCoder):
    """CenterNet's targets, loss and decoding (module docstring) for the shared :class:`Detector`.

    Args:
        num_classes: heatmap channels C.
        output_size: ``(h, w)`` of the stride-4 output map.
        stride: the output stride R.
        min_overlap: IoU of the Gaussian radius rule.
        size_weight: lambda_size.
        offset_weight: lambda_off.
        top_k: peaks kept by :meth:`decode`.
    """

    loss_parts = ("heatmap_loss", "size_loss", "offset_loss")

    def __init__(
        self,
        num_classes: int,
        output_size: tuple[int, int],
        stride: int = OUTPUT_STRIDE,
        min_overlap: float = MIN_OVERLAP,
        size_weight: float = SIZE_WEIGHT,
        offset_weight: float = OFFSET_WEIGHT,
        top_k: int = TOP_K,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.output_size = tuple(int(s) for s in output_size)
        self.stride = int(stride)
        self.min_overlap = float(min_overlap)
        self.size_weight = float(size_weight)
        self.offset_weight = float(offset_weight)
        self.top_k = int(top_k)

    def encode(self, gt):
        return centernet_targets(
            gt["boxes"], gt["classes"], gt["num_boxes"], self.num_classes, self.output_size, self.stride, self.min_overlap
        )

    def loss(self, targets, outputs):
        key_points = tf.reduce_sum(tf.cast(tf.equal(targets["heatmap"], 1.0), tf.float32))
        objects = tf.maximum(tf.reduce_sum(targets["mask"]), 1.0)
        mask = targets["mask"][..., None]

        def l1(name):
            return tf.reduce_sum(tf.abs(_at_pixels(outputs[name], targets["indices"]) - targets[name]) * mask) / objects

        return {
            "heatmap_loss": focal_loss(targets["heatmap"], outputs["heatmap_logits"]) / tf.maximum(key_points, 1.0),
            "size_loss": self.size_weight * l1("size"),
            "offset_loss": self.offset_weight * l1("offset"),
        }

    def decode(self, outputs):
        heat = peaks(tf.sigmoid(outputs["heatmap_logits"]))
        batch, width = tf.shape(heat)[0], tf.shape(heat)[2]
        k = min(self.top_k, self.output_size[0] * self.output_size[1] * self.num_classes)
        scores, flat = tf.math.top_k(tf.reshape(heat, [batch, -1]), k=k)  # (pixel, class) row-major
        pixel, cls = flat // self.num_classes, flat % self.num_classes
        column = tf.cast(pixel % width, tf.float32)
        row = tf.cast(pixel // width, tf.float32)
        offset, size = _at_pixels(outputs["offset"], pixel), _at_pixels(outputs["size"], pixel)
        center = tf.stack([column + offset[..., 0], row + offset[..., 1]], axis=-1) * self.stride
        half = size * self.stride / 2.0
        boxes = tf.concat([center - half, center + half], axis=-1)
        # Clipped to the input: serving clips to the image, and the two must agree.
        boxes = clip_boxes(boxes, [side * self.stride for side in self.output_size])
        return boxes, tf.one_hot(cls, self.num_classes) * scores[..., None]

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "output_size": self.output_size,
            "stride": self.stride,
            "min_overlap": self.min_overlap,
            "size_weight": self.size_weight,
            "offset_weight": self.offset_weight,
            "top_k": self.top_k,
        }


@dataclasses.dataclass
class CenterNetConfig(DetectionConfig):
    """CenterNet config (see :class:`~tfmodels.recipes.detection.DetectionConfig` for the shared fields).

    Args:
        stage_blocks: basic blocks per ResNet stage of the backbone.
        width: the backbone's first-stage channels.
        upsample_filters: channels of the three up-convolution stages.
        deformable: deformable 3x3 convs before the up-convolutions (the paper's ResNet variant).
        head_channels: channels of each head's 3x3 conv.
        skips: skip connections from the backbone into the up-path (:func:`build_centernet`).
        min_overlap: IoU of the Gaussian radius rule.
        top_k: peaks decoded per image.
    """

    stage_blocks: tuple[int, ...] = (2, 2, 2, 2)
    width: int = 64
    upsample_filters: tuple[int, ...] = (256, 128, 64)
    deformable: bool = False
    head_channels: int = 64
    skips: bool = False
    min_overlap: float = MIN_OVERLAP
    top_k: int = TOP_K
    iou_threshold: float = 1.0  # the paper: peak picking instead of NMS

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64,
            "num_scenes": (48, 16, 16),
            "stage_blocks": (1, 1, 1, 1),
            "width": 8,
            "upsample_filters": (16, 16, 16),
            "head_channels": 16,
            "skips": True,
            "epochs": 2,
            "batch_size": 16,
            "learning_rate": 2e-3,
            "top_k": 20,
            "max_detections": 20,
            "verbose": 2,
        },
        "default": {
            "image_size": 128,
            "num_scenes": (4000, 500, 500),
            "width": 16,
            "upsample_filters": (64, 64, 64),
            "head_channels": 32,
            "skips": True,
            "epochs": 15,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "lr_schedule": "cosine",
            "verbose": 2,
        },
        "paper": {
            "data": "tfds:coco/2017",
            "image_size": 512,
            "max_boxes": 100,
            "deformable": True,
            "flip": True,
            "scale_range": (0.6, 1.3),
            "batch_size": 114,
            "learning_rate": 5e-4,
            "epochs": 140,
            "lr_schedule": "multistep",
            "lr_milestones": (90, 120),
        },
    }


def model(cfg: CenterNetConfig) -> Detector:
    settings = detector_settings(cfg)
    shape = (cfg.image_size, cfg.image_size, 3)
    network = build_centernet(
        settings["num_classes"], shape, cfg.stage_blocks, cfg.width, cfg.upsample_filters, cfg.deformable, cfg.head_channels, cfg.skips
    )
    side = cfg.image_size // OUTPUT_STRIDE
    coder = CenterNetCoder(settings["num_classes"], (side, side), min_overlap=cfg.min_overlap, top_k=cfg.top_k)
    return Detector(network, coder, name="centernet", **settings)


RECIPE = detection_recipe(
    "centernet",
    "CenterNet (notes-002 §15, Objects as Points): centre heatmaps + size + offset, max-pool peak decoding",
    CenterNetConfig,
    model,
)
