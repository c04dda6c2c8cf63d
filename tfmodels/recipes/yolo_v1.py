"""``yolo_v1``: YOLO v1 on the S×S grid, with its sum-squared loss, served with NMS in the graph.

Specs: notes-003-004.md D2 (seed S4:L114-117: the S×S×(B·5+C) output, confidence = P(object)·IoU),
notes-002-part2.md §14 (seed 002 L2187-2192), notes-001.md §23 (seed 001 L577-593); the loss,
the responsible predictor and the inference score are the paper's (Redmon et al. 2016, paper
default). Network: :mod:`tfmodels.models.yolo_v1`; targets: :mod:`pipelines.detection.yolo_targets`;
data, training step, serving and report: :mod:`tfmodels.recipes.detection`.

Loss (paper, Section 2.2), summed over the grid and averaged over the images of a batch, in parts:

* ``coord_loss``: λcoord = 5 times the squared error of x, y, √w and √h of the responsible
  predictor, which is the one of the cell's B predictors whose box has the highest IoU with the
  ground truth (cells holding an object only);
* ``object_loss``: (C − Ĉ)² of the responsible predictor, where the target C is that IoU
  (confidence = P(object)·IoU, S4:L116; Darknet's ``rescore``);
* ``no_object_loss``: λnoobj = 0.5 times Ĉ² of every other predictor;
* ``class_loss``: the squared error of the C class probabilities of cells holding an object.

Decoding: every cell's B boxes, each scored per class by P(class | object) · confidence (paper,
Section 2: "class-specific confidence scores"); the linear outputs are clipped to [0, 1] first so
that scores are probabilities. Multiclass NMS follows (:class:`~tfmodels.recipes.detection.Detector`).

Presets: ``tiny`` (64×64 scenes, S=4, the tests: seconds), ``default`` (128×128 digit scenes, S=7,
B=2, C=10: an 8-conv backbone with batch norm and YOLOv1's two FC layers, Adam + cosine, 10 epochs
on 2 CPU cores) and ``paper`` (VOC 2007 at 448×448, the 24-conv + 2-FC network, S=7, B=2, C=20:
7×7×30; the paper's batch 64, momentum 0.9, 135 epochs with lr 1e-2 divided by 10 after 75 and
105 epochs, dropout 0.5 and ±20% scale jitter; its ImageNet pre-training, weight decay 5e-4 and
lr warm-up from 1e-3 are left out). ``default`` and ``paper`` keep detections down to a score of 0.001: a YOLO
score is a product of two probabilities, far below a softmax score, and mAP needs the ranked tail.

Measured at ``default`` (digit scenes, 2 CPU cores): the boxes are learnt (coordinate loss 4.1 ->
1.3) but the classes are not: the class loss stays at 2.7, what predicting the mean class
vector costs, so test mAP@0.5 is 0.030. A 3.6 times wider backbone (73M multiply-adds) did not
move the class loss in 7 epochs either. Each cell's class probabilities come from the FC layers,
so the network must learn every digit again at every cell from the few objects each cell sees;
the paper starts from convolutions pre-trained on ImageNet classification, which this preset
does not have.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import tensorflow as tf

from pipelines.detection.boxes import clip_boxes, pairwise_iou
from pipelines.detection.yolo_targets import BOX_VALUES, box_channels, cell_boxes, encode_targets, grid_boxes
from tfmodels.models.yolo_v1 import build_yolo_v1
from tfmodels.recipes import detection

LAMBDA_COORD = 5.0  # paper, Section 2.2
LAMBDA_NOOBJ = 0.5
LOSS_PARTS = ("coord_loss", "object_loss", "no_object_loss", "class_loss")


@dataclasses.dataclass
class YoloV1Config(detection.DetectionConfig):
    """``yolo_v1`` config (see :class:`~tfmodels.recipes.detection.DetectionConfig` for the rest).

    Args:
        grid_size: S, the S×S grid (7 in the paper).
        boxes_per_cell: B, boxes each cell predicts (2 in the paper).
        backbone: ``paper`` (24 convolutions), ``default`` or ``tiny`` (:mod:`tfmodels.models.yolo_v1`).
        fc_units: width of the first FC layer (4096 in the paper).
        dropout: dropout after the first FC layer (0.5 in the paper).
        lambda_coord: weight of the coordinate errors (5 in the paper).
        lambda_noobj: weight of the confidence errors of predictors without an object (0.5).
    """

    grid_size: int = 7
    boxes_per_cell: int = 2
    backbone: str = "default"
    fc_units: int = 512
    dropout: float = 0.5
    lambda_coord: float = LAMBDA_COORD
    lambda_noobj: float = LAMBDA_NOOBJ

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **detection.DetectionConfig.CHOICES,
        "backbone": ("paper", "default", "tiny"),
    }
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64,
            "grid_size": 4,
            "backbone": "tiny",
            "fc_units": 64,
            "num_scenes": (64, 16, 16),
            "epochs": 2,
            "batch_size": 16,
            "verbose": 2,
        },
        "default": {"epochs": 10, "batch_size": 16, "learning_rate": 1e-3, "lr_schedule": "cosine", "score_threshold": 0.001},
        "paper": {
            "data": "tfds:voc/2007",
            "image_size": 448,
            "backbone": "paper",
            "fc_units": 4096,
            "max_boxes": 64,
            "flip": True,
            "scale_range": (0.8, 1.2),
            "optimizer": "momentum",
            "momentum": 0.9,
            "learning_rate": 1e-2,
            "lr_schedule": "multistep",
            "lr_milestones": (75, 105),
            "epochs": 135,
            "batch_size": 64,
            "score_threshold": 0.001,
        },
    }


def _as_targets(outputs: tf.Tensor, boxes_per_cell: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Outputs' boxes in target form ``[..., S, S, B, 5]`` (w = output²) and confidences ``[..., S, S, B]``."""
    per_box = box_channels(outputs, boxes_per_cell)
    return tf.concat([per_box[..., :2], tf.square(per_box[..., 2:4]), per_box[..., 4:]], axis=-1), per_box[..., 4]


def yolo_v1_loss(
    targets: tf.Tensor,
    outputs: tf.Tensor,
    boxes_per_cell: int,
    lambda_coord: float = LAMBDA_COORD,
    lambda_noobj: float = LAMBDA_NOOBJ,
) -> dict[str, tf.Tensor]:
    """The YOLOv1 loss in parts (module docstring), each summed over the grid and averaged over images.

    Args:
        targets: ``[N, S, S, B·5 + C]`` from :func:`pipelines.detection.yolo_targets.encode_targets`.
        outputs: ``[N, S, S, B·5 + C]`` network outputs (x, y, √w, √h, confidence per box).
        boxes_per_cell: B.
        lambda_coord: weight of the coordinate errors.
        lambda_noobj: weight of the no-object confidence errors.

    Returns:
        ``{"coord_loss", "object_loss", "no_object_loss", "class_loss"}`` float32 scalars.
    """
    b = boxes_per_cell
    target_box = box_channels(targets, b)[..., 0, :]  # every slot holds the cell's box
    predicted, confidence = _as_targets(outputs, b)
    has_object = target_box[..., 4]  # [N, S, S]
    # IoU is the same in image fractions as in pixels (it does not change when an axis is scaled).
    iou = pairwise_iou(cell_boxes(predicted, (1, 1)), grid_boxes(targets, (1, 1), b)[..., :1, :])[..., 0]
    iou = tf.stop_gradient(iou)  # [N, S, S, B]
    responsible = tf.one_hot(tf.argmax(iou, axis=-1), b) * has_object[..., None]
    raw = box_channels(outputs, b)  # the network's x, y, √w, √h
    target_coords = tf.concat([target_box[..., :2], tf.sqrt(target_box[..., 2:4])], axis=-1)[..., None, :]
    coord_error = tf.reduce_sum(tf.square(raw[..., :4] - target_coords), axis=-1)
    class_error = tf.reduce_sum(tf.square(outputs[..., b * BOX_VALUES :] - targets[..., b * BOX_VALUES :]), axis=-1)

    def per_image(values):
        return tf.reduce_mean(tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=-1))

    return {
        "coord_loss": lambda_coord * per_image(responsible * coord_error),
        "object_loss": per_image(responsible * tf.square(iou - confidence)),
        "no_object_loss": lambda_noobj * per_image((1 - responsible) * tf.square(confidence)),
        "class_loss": per_image(has_object * class_error),
    }


def decode_yolo_v1(outputs: tf.Tensor, image_size: tuple[int, int], boxes_per_cell: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Every cell's B boxes with class scores P(class | object) · confidence (module docstring).

    Args:
        outputs: ``[N, S, S, B·5 + C]`` network outputs.
        image_size: ``(height, width)`` of the model input.
        boxes_per_cell: B.

    Returns:
        ``boxes`` ``[N, S·S·B, 4]`` corner boxes in model-input pixels (clipped to the image) and
        ``class_scores`` ``[N, S·S·B, C]`` in [0, 1].
    """
    b = boxes_per_cell
    predicted, confidence = _as_targets(outputs, b)
    boxes = clip_boxes(cell_boxes(predicted, image_size), image_size)  # [N, S, S, B, 4]
    class_probabilities = tf.clip_by_value(outputs[..., b * BOX_VALUES :], 0.0, 1.0)[..., None, :]
    scores = tf.clip_by_value(confidence, 0.0, 1.0)[..., None] * class_probabilities  # [N, S, S, B, C]
    batch = tf.shape(outputs)[0]
    return tf.reshape(boxes, [batch, -1, 4]), tf.reshape(scores, [batch, -1, tf.shape(scores)[-1]])


@keras.saving.register_keras_serializable(package="tfmodels")
class YoloV1Coder(detection.BoxCoder):
    """YOLOv1's targets, loss and decoding for a :class:`~tfmodels.recipes.detection.Detector`.

    Args:
        image_size: ``(height, width)`` of the model input.
        grid_size: S.
        boxes_per_cell: B.
        num_classes: C.
        lambda_coord: weight of the coordinate errors.
        lambda_noobj: weight of the no-object confidence errors.

    Example:
        >>> coder = YoloV1Coder((64, 64), grid_size=4, boxes_per_cell=2, num_classes=3)
        >>> gt = {"boxes": tf.constant([[[8.0, 8.0, 24.0, 24.0]]]), "classes": tf.constant([[2]]),
        ...       "num_boxes": tf.constant([1])}
        >>> coder.encode(gt).shape
        TensorShape([1, 4, 4, 13])
    """

    loss_parts = LOSS_PARTS

    def __init__(
        self,
        image_size,
        grid_size: int,
        boxes_per_cell: int,
        num_classes: int,
        lambda_coord: float = LAMBDA_COORD,
        lambda_noobj: float = LAMBDA_NOOBJ,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = tuple(int(side) for side in image_size)
        self.grid_size, self.boxes_per_cell, self.num_classes = int(grid_size), int(boxes_per_cell), int(num_classes)
        self.lambda_coord, self.lambda_noobj = float(lambda_coord), float(lambda_noobj)

    def encode(self, gt):
        return encode_targets(
            gt["boxes"], gt["classes"], gt.get("num_boxes"), self.image_size, self.grid_size, self.boxes_per_cell, self.num_classes
        )

    def loss(self, targets, outputs):
        return yolo_v1_loss(targets, outputs, self.boxes_per_cell, self.lambda_coord, self.lambda_noobj)

    def decode(self, outputs):
        return decode_yolo_v1(outputs, self.image_size, self.boxes_per_cell)

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": self.image_size,
            "grid_size": self.grid_size,
            "boxes_per_cell": self.boxes_per_cell,
            "num_classes": self.num_classes,
            "lambda_coord": self.lambda_coord,
            "lambda_noobj": self.lambda_noobj,
        }


def model(cfg: YoloV1Config) -> detection.Detector:
    settings = detection.detector_settings(cfg)
    size = (cfg.image_size, cfg.image_size)
    network = build_yolo_v1(
        num_classes=settings["num_classes"],
        grid_size=cfg.grid_size,
        boxes_per_cell=cfg.boxes_per_cell,
        input_shape=(*size, 3),
        backbone=cfg.backbone,
        fc_units=cfg.fc_units,
        dropout=cfg.dropout,
    )
    coder = YoloV1Coder(size, cfg.grid_size, cfg.boxes_per_cell, settings["num_classes"], cfg.lambda_coord, cfg.lambda_noobj)
    return detection.Detector(network, coder, name="yolo_v1", **settings)


RECIPE = detection.detection_recipe(
    "yolo_v1", "YOLO v1: S×S grid, B boxes + C classes per cell, sum-squared loss (notes-003-004 D2, notes-002 §14)", YoloV1Config, model
)
