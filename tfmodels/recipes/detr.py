"""``detr``: the DEtection TRansformer, a set of N (class, box) predictions trained by bipartite matching.

Spec: notes-001.md §28 (seed 001 L777-817): CNN backbone, Transformer encoder-decoder with
learned object queries, a fixed-size set of predictions matched one-to-one to the ground truth
by the Hungarian algorithm; box loss = L1 + GIoU; no anchors, no NMS. The class loss, the
weights, the auxiliary losses and the schedule are the paper's (Carion et al. 2020, §3.1,
§4 and appendix A.2; paper default), as the official code computes them:

* network (:func:`tfmodels.models.detr.build_detr`): ResNet, 1x1 projection, Transformer with
  ``num_queries`` object queries, a class head with a "no object" logit and a sigmoid box MLP;
* targets (:meth:`DetrCoder.encode`): the padded ground truth with boxes as ``(cx, cy, w, h)``
  normalised to the model input, the frame of the predicted boxes;
* matching (:meth:`DetrCoder.match`): per image, the assignment of queries to objects with the
  least total cost ``-p(class) · 1 + L1 · 5 - GIoU · 2`` (``p`` the softmax probability of the
  object's class, L1 over the four normalised coordinates), solved exactly in the graph by
  :func:`pipelines.detection.hungarian.batched_assignment`; no gradient flows through it;
* loss (:meth:`DetrCoder.loss`): cross-entropy over **all** queries, whose targets are the
  matched object's class or "no object", weighted 0.1 on "no object" and averaged with those
  weights (PyTorch's weighted ``cross_entropy``, as the official code); ``5 · L1`` and
  ``2 · (1 - GIoU)`` summed over the matched pairs and divided by the number of objects in the
  batch. With ``aux_loss`` every decoder layer's heads are matched and scored the same way and
  the parts are summed over the layers (all layers' matchings run as one batch);
* decoding (:meth:`DetrCoder.decode`): per query the most probable object class (softmax
  without the no-object column) and its probability, the box ``(cx, cy, w, h) · S`` to corners
  clipped to the input; each query gives one detection, as the official post-processing does.
  The set loss teaches the queries not to duplicate objects, so there is no NMS: the presets
  set ``iou_threshold`` 1.0 (nothing overlaps more), so the shared detector's NMS keeps every
  query scoring above ``score_threshold``, the best ``max_detections`` first.

Data, augmentation, training step, validation mAP, serving and the report are the shared
detection layer's (:mod:`tfmodels.recipes.detection`).

Presets:

* ``tiny``: a ResNet of width 8 at stride 16 on 64² scenes (a 4x4 map), d_model 32, 1 + 2
  layers, 10 queries, a few dozen scenes, two epochs at lr 1e-3: the tests.
* ``default``: a ResNet of basic blocks (2, 2, 2), width 32, stride 16 (an 8x8 map of 128
  channels) on 128² digit scenes, d_model 128, 4 heads, 3 + 3 layers, FFN 512, 20 queries
  (a scene holds at most 5 digits); the paper's optimisation: AdamW lr 1e-4, weight decay 1e-4,
  gradient norm clipped to 0.1, the lr divided by 10 after 80 % of the epochs. Not trained on
  this project's CPUs yet (DETR converges slowly: notes L805); no measured mAP.
* ``paper``: DETR-R50 on ``tfds:coco/2017`` letterboxed to 800², 100 queries, AdamW 1e-4 with
  weight decay 1e-4, clipping 0.1, 500 epochs with the lr divided by 10 at 400, 4 images per
  replica (16 replicas: the paper's batch of 64), dropout 0.1, flips and scale jitter.
  Not reproduced: the backbone's lower learning rate (1e-5; the trainer has one optimizer and
  one rate, and Adam's steps do not scale with a gradient multiplier), its ImageNet
  initialisation and FrozenBatchNorm, the resize of the shorter side to 480-800 (max 1333) with
  random crops (here one square size and the shared scale jitter), the padding mask, and COCO's
  91-id class head (the run's classes: 80 + 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import tensorflow as tf

from pipelines.detection.boxes import center_to_corner, clip_boxes, corner_to_center, pairwise_generalized_iou
from pipelines.detection.hungarian import batched_assignment
from tfmodels.config import ConfigError
from tfmodels.models.detr import BLOCKS, build_detr
from tfmodels.recipes.detection import BoxCoder, DetectionConfig, Detector, detection_recipe, detector_settings

# Paper default: the matching costs and the loss weights are the same numbers.
CLASS_WEIGHT, L1_WEIGHT, GIOU_WEIGHT = 1.0, 5.0, 2.0
NO_OBJECT_WEIGHT = 0.1  # paper default: the no-object class's cross-entropy weight


@keras.saving.register_keras_serializable(package="tfmodels")
class DetrCoder(BoxCoder):
    """DETR's targets, matching, set loss and decoding (module docstring) for the shared :class:`Detector`.

    Args:
        num_classes: object classes C (the network has C + 1 logits).
        image_size: side of the square model input in pixels.
        class_weight, l1_weight, giou_weight: weights of the three terms, in the matching cost and
            in the loss alike.
        no_object_weight: the cross-entropy weight of the "no object" target.

    Example:
        >>> coder = DetrCoder(num_classes=2, image_size=100)
        >>> gt = {"boxes": tf.constant([[[10.0, 20.0, 30.0, 60.0]]]), "classes": tf.constant([[1]]),
        ...       "num_boxes": tf.constant([1])}
        >>> coder.encode(gt)["boxes"].numpy()  # (cx, cy, w, h) / 100
        array([[[0.2, 0.4, 0.2, 0.4]]], dtype=float32)
        >>> outputs = {"class_logits": tf.constant([[[0.0, 0.0, 9.0], [0.0, 9.0, 0.0]]]),
        ...            "boxes": tf.constant([[[0.5, 0.5, 0.1, 0.1], [0.2, 0.4, 0.2, 0.4]]])}
        >>> coder.match(coder.encode(gt), outputs["class_logits"], outputs["boxes"]).numpy().tolist()
        [[-1, 0]]
    """

    loss_parts = ("class_loss", "l1_loss", "giou_loss")

    def __init__(self, num_classes: int, image_size: int, class_weight: float = CLASS_WEIGHT, l1_weight: float = L1_WEIGHT,
                 giou_weight: float = GIOU_WEIGHT, no_object_weight: float = NO_OBJECT_WEIGHT, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.image_size = int(num_classes), int(image_size)
        self.class_weight, self.l1_weight, self.giou_weight = float(class_weight), float(l1_weight), float(giou_weight)
        self.no_object_weight = float(no_object_weight)

    def encode(self, gt):
        return {
            "boxes": corner_to_center(gt["boxes"]) / self.image_size,
            "classes": gt["classes"],
            "num_boxes": gt["num_boxes"],
        }

    def _pairs(self, targets, class_logits, boxes) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(cost, l1, giou)``, each ``[B, Q, G]``: the matching cost and its box terms for every pair."""
        probability = tf.nn.softmax(class_logits)
        classes = tf.maximum(targets["classes"], 0)  # padding columns: any finite cost, never matched
        class_cost = -tf.gather(probability, classes, axis=2, batch_dims=1)
        l1 = tf.reduce_sum(tf.abs(boxes[:, :, None] - targets["boxes"][:, None]), axis=-1)
        giou = pairwise_generalized_iou(center_to_corner(boxes), center_to_corner(targets["boxes"]))
        cost = self.class_weight * class_cost + self.l1_weight * l1 - self.giou_weight * giou
        return cost, l1, giou

    def match(self, targets, class_logits, boxes) -> tf.Tensor:
        """int32 ``[B, Q]``: the index of the object matched to each query, -1 for "no object".

        Args:
            targets: what :meth:`encode` returned.
            class_logits: ``[B, Q, C + 1]``.
            boxes: ``[B, Q, 4]`` normalised ``(cx, cy, w, h)``.
        """
        return batched_assignment(self._pairs(targets, class_logits, boxes)[0], targets["num_boxes"])

    def loss(self, targets, outputs):
        class_logits, boxes = outputs["class_logits"][:, None], outputs["boxes"][:, None]
        if "aux_class_logits" in outputs:
            class_logits = tf.concat([outputs["aux_class_logits"], class_logits], axis=1)
            boxes = tf.concat([outputs["aux_boxes"], boxes], axis=1)
        # Every decoder layer is matched on its own: the layers are folded into the batch.
        batch, layers, queries = tf.shape(boxes)[0], tf.shape(boxes)[1], tf.shape(boxes)[2]
        per_layer = {key: tf.repeat(value, layers, axis=0) for key, value in targets.items()}
        class_logits = tf.reshape(class_logits, [batch * layers, queries, self.num_classes + 1])
        boxes = tf.reshape(boxes, [batch * layers, queries, 4])

        cost, l1, giou = self._pairs(per_layer, class_logits, boxes)
        match = batched_assignment(cost, per_layer["num_boxes"])
        matched = match >= 0
        matched_float = tf.cast(matched, tf.float32)
        index = tf.maximum(match, 0)[..., None]
        target_class = tf.where(matched, tf.gather(per_layer["classes"], index[..., 0], batch_dims=1), self.num_classes)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(target_class, class_logits)
        weight = tf.where(matched, 1.0, self.no_object_weight)
        # A weighted mean over each layer's B x Q queries, then the sum over layers.
        weighted = tf.reduce_sum(tf.reshape(cross_entropy * weight, [batch, layers, queries]), axis=[0, 2])
        class_loss = tf.reduce_sum(weighted / tf.reduce_sum(tf.reshape(weight, [batch, layers, queries]), axis=[0, 2]))
        objects = tf.maximum(tf.cast(tf.reduce_sum(targets["num_boxes"]), tf.float32), 1.0)

        def matched_sum(pairs):
            return tf.reduce_sum(tf.gather(pairs, index, axis=2, batch_dims=2)[..., 0] * matched_float) / objects

        return {
            "class_loss": self.class_weight * class_loss,
            "l1_loss": self.l1_weight * matched_sum(l1),
            "giou_loss": self.giou_weight * matched_sum(1.0 - giou),
        }

    def decode(self, outputs):
        probability = tf.nn.softmax(outputs["class_logits"])[..., : self.num_classes]
        best = tf.argmax(probability, axis=-1)
        class_scores = tf.one_hot(best, self.num_classes) * tf.reduce_max(probability, axis=-1, keepdims=True)
        # Clipped to the input: serving clips to the image, and the two must agree.
        boxes = clip_boxes(center_to_corner(outputs["boxes"]) * self.image_size, (self.image_size, self.image_size))
        return boxes, class_scores

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "class_weight": self.class_weight,
            "l1_weight": self.l1_weight,
            "giou_weight": self.giou_weight,
            "no_object_weight": self.no_object_weight,
        }


@dataclasses.dataclass
class DetrConfig(DetectionConfig):
    """DETR config (see :class:`~tfmodels.recipes.detection.DetectionConfig` for the shared fields).

    The defaults are the paper's DETR-R50 network and optimisation (module docstring).

    Args:
        block: the backbone's ResNet block, ``basic`` or ``bottleneck``.
        stage_blocks: blocks per backbone stage; three stages give stride 16, four stride 32.
        width: the backbone's first-stage channels.
        d_model: the Transformer's width.
        num_heads: attention heads.
        encoder_layers, decoder_layers: Transformer layers on each side.
        ffn_dim: the FFN's hidden width.
        num_queries: object queries: predictions per image.
        dropout: the Transformer's dropout rate.
        aux_loss: train every decoder layer's heads too (auxiliary decoding losses).
        no_object_weight: the cross-entropy weight of "no object".
    """

    block: str = "bottleneck"
    stage_blocks: tuple[int, ...] = (3, 4, 6, 3)
    width: int = 64
    d_model: int = 256
    num_heads: int = 8
    encoder_layers: int = 6
    decoder_layers: int = 6
    ffn_dim: int = 2048
    num_queries: int = 100
    dropout: float = 0.1
    aux_loss: bool = True
    no_object_weight: float = NO_OBJECT_WEIGHT
    iou_threshold: float = 1.0  # the paper: a set of predictions, no NMS
    optimizer: str = "adamw"
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    clip_global_norm: float = 0.1

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64, "num_scenes": (48, 16, 16), "block": "basic", "stage_blocks": (1, 1, 1), "width": 8,
            "d_model": 32, "num_heads": 2, "encoder_layers": 1, "decoder_layers": 2, "ffn_dim": 64, "num_queries": 10,
            "max_detections": 10, "epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "verbose": 2,
        },
        "default": {
            "image_size": 128, "num_scenes": (4000, 500, 500), "block": "basic", "stage_blocks": (2, 2, 2),
            "width": 32, "d_model": 128, "num_heads": 4, "encoder_layers": 3, "decoder_layers": 3, "ffn_dim": 512,
            "num_queries": 20, "max_detections": 20, "epochs": 50, "batch_size": 32, "lr_schedule": "multistep",
            "lr_milestones": (40,), "verbose": 2,
        },
        "paper": {
            "data": "tfds:coco/2017",
            "image_size": 800,
            "max_boxes": 100,
            "batch_size": 4,
            "epochs": 500,
            "lr_schedule": "multistep",
            "lr_milestones": (400,),
            "flip": True,
            "scale_range": (0.6, 1.33),
        },
    }
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**DetectionConfig.CHOICES, "block": tuple(BLOCKS)}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.num_heads or self.d_model % 2:
            raise ConfigError(f"d_model must be even and a multiple of num_heads, got {self.d_model} and {self.num_heads}")
        if min(self.num_queries, self.decoder_layers) < 1 or self.encoder_layers < 0:
            raise ConfigError("num_queries and decoder_layers must be >= 1, encoder_layers >= 0")


def model(cfg: DetrConfig) -> Detector:
    settings = detector_settings(cfg)
    network = build_detr(
        settings["num_classes"], cfg.image_size, cfg.block, cfg.stage_blocks, cfg.width, cfg.d_model, cfg.num_heads,
        cfg.encoder_layers, cfg.decoder_layers, cfg.ffn_dim, cfg.num_queries, cfg.dropout, cfg.aux_loss,
    )
    coder = DetrCoder(settings["num_classes"], cfg.image_size, no_object_weight=cfg.no_object_weight)
    return Detector(network, coder, name="detr", **settings)


RECIPE = detection_recipe(
    "detr",
    "DETR (notes-001 §28): ResNet + Transformer with object queries, Hungarian-matched set loss, no NMS",
    DetrConfig,
    model,
)
