"""The two-stage detector of the R-CNN family: proposals, RoI features, a head per RoI.

Not a registered recipe: ``fast_rcnn``, ``faster_rcnn`` and ``mask_rcnn`` build on it, with the
shared detection layer's data, serving and report (:mod:`tfmodels.recipes.detection`). Specs:
notes-002-part2.md §9-11 (seed 002 L2125-2163); Faster R-CNN (Ren et al., 2015) and Fast R-CNN
(Girshick, 2015) for everything the notes leave open (paper default).

One image batch flows through (:meth:`TwoStageDetector.call`, all in the graph):

1. the backbone once per image, and the RPN on its feature map (``objectness`` and
   ``rpn_offsets`` per anchor; :func:`tfmodels.models.faster_rcnn.build_rpn`);
2. **proposals** (:meth:`TwoStageCoder.proposals`): the anchors moved by their offsets, clipped
   to the image, the ``pre_nms_proposals`` best by objectness, NMS at ``proposal_iou`` (0.7), the
   best ``test_proposals`` kept (padded; a mask marks the real ones). Without an RPN (Fast
   R-CNN's stand-in for selective search) the proposals are the anchors themselves: fixed
   sliding windows;
3. **RoI features** (:meth:`TwoStageCoder.roi_features`): RoI pooling (quantised bins, the
   notes' §8) or RoI Align (bilinear, §11) of every proposal from the shared feature map, at
   ``1 / stride`` of its pixel coordinates;
4. the **box head** on every RoI: class logits and class-specific box offsets
   (:func:`tfmodels.models.faster_rcnn.build_box_head`);
5. **decoding** (:meth:`TwoStageCoder.decode`): each class's box is its proposal moved by that
   class's offsets, clipped; the class scores are the softmax without background; then the
   shared detector's multiclass NMS.

Training (:meth:`TwoStageDetector.detection_loss`) follows the paper's approximate joint
training: one loss, RPN classification + RPN box + head classification + head box, with no
gradient through the proposals' coordinates.

* RPN targets (:meth:`TwoStageCoder.rpn_targets`): anchors inside the image, positive at IoU >=
  0.7 or as some box's best anchor, negative below 0.3; 256 sampled per image, at most half
  positive; binary cross-entropy on the sample, smooth L1 (β = 1/9, the reference code's σ = 3)
  on the positives' offsets, both divided by the sample size.
* Head targets (:meth:`TwoStageCoder.sample_rois`): the proposals plus the ground-truth boxes,
  foreground at IoU >= 0.5 with class ``c + 1``, background below (the reference code's [0,
  0.5); Fast R-CNN's paper [0.1, 0.5)); ``roi_samples`` per image, at most 25% foreground;
  softmax cross-entropy, smooth L1 (β = 1) on the foreground's offsets for its class, both divided
  by the sample size.
* The samples are random, from a stateless seed of the run seed and the optimizer's step, so a
  resumed run samples what an uninterrupted one did.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.detection.anchors import multibox_anchors
from pipelines.detection.boxes import clip_boxes, decode_offsets, encode_offsets, pairwise_iou
from pipelines.detection.nms import non_max_suppression
from pipelines.detection.proposal_sampling import balanced_sample, label_by_iou
from tfmodels.config import ConfigError
from tfmodels.layers.roi_align import roi_align
from tfmodels.layers.roi_pooling import roi_pool
from tfmodels.recipes.detection import DetectionConfig, Detector

MAX_SIZE_OFFSET = float(np.log(1000.0 / 16.0) / 0.2)  # the reference code's clamp of dw, dh (σ 0.2)


@dataclasses.dataclass
class TwoStageConfig(DetectionConfig):
    """Settings of the R-CNN family's shared-feature detectors (module docstring); they train
    10 epochs of 16 images with Adam on a cosine schedule unless a preset says otherwise.

    Args:
        backbone: ``resnet`` (a narrow ResNet cut at stride 8: the digit presets) or ``vgg16``
            (conv5_3, stride 16: the paper's).
        width: the ResNet's first-stage channels.
        anchor_sizes: anchor sides in pixels (the square root of the area; the paper's 128,
            256, 512 at a 600-pixel scale).
        anchor_ratios: anchor aspect ratios, width / height (the paper's 0.5, 1, 2).
        rpn_channels: the RPN's 3×3 conv channels (512 on VGG-16).
        rpn_samples, rpn_positive_fraction: anchors sampled per image and their largest
            positive share (256, 0.5).
        rpn_positive_iou, rpn_negative_iou: the anchor labelling thresholds (0.7, 0.3).
        pre_nms_proposals: best-scoring boxes that enter the proposal NMS per image.
        proposal_iou: the proposal NMS threshold (0.7).
        train_proposals, test_proposals: proposals kept after NMS per image in training and
            in inference (the paper's 2000 and 300 at 600 pixels).
        roi_op: ``pool`` (RoI pooling, Fast/Faster R-CNN) or ``align`` (RoI Align, Mask R-CNN).
        pool_size: the RoI grid side (7).
        sampling_ratio: RoI Align's samples per bin side (2).
        roi_samples, roi_positive_fraction: RoIs sampled per image for the head and their
            largest foreground share (128, 0.25).
        roi_positive_iou: IoU from which a RoI is foreground (0.5).
        head_units: the head's fully connected widths (4096, 4096).
        head_dropout: dropout after each of them (0.5).
    """

    backbone: str = "resnet"
    width: int = 32
    anchor_sizes: tuple[float, ...] = (10.0, 18.0, 32.0)
    anchor_ratios: tuple[float, ...] = (0.5, 0.75, 1.0)
    rpn_channels: int = 128
    rpn_samples: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_positive_iou: float = 0.7
    rpn_negative_iou: float = 0.3
    pre_nms_proposals: int = 600
    proposal_iou: float = 0.7
    train_proposals: int = 256
    test_proposals: int = 100
    roi_op: str = "pool"
    pool_size: int = 7
    sampling_ratio: int = 2
    roi_samples: int = 128
    roi_positive_fraction: float = 0.25
    roi_positive_iou: float = 0.5
    head_units: tuple[int, ...] = (256, 256)
    head_dropout: float = 0.0
    epochs: int = 10
    batch_size: int = 16
    lr_schedule: str = "cosine"

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"tiny": {}, "default": {}, "paper": {}}
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **DetectionConfig.CHOICES, "backbone": ("resnet", "vgg16"), "roi_op": ("pool", "align"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.anchor_sizes or not self.anchor_ratios or min(*self.anchor_sizes, *self.anchor_ratios) <= 0:
            raise ConfigError("anchor_sizes and anchor_ratios need positive values")
        if self.roi_samples < 1 or self.rpn_samples < 1 or self.test_proposals < 1 or self.train_proposals < 1:
            raise ConfigError("roi_samples, rpn_samples, train_proposals and test_proposals must be >= 1")
        if not 0 < self.rpn_positive_fraction <= 1 or not 0 < self.roi_positive_fraction <= 1:
            raise ConfigError("rpn_positive_fraction and roi_positive_fraction must be in (0, 1]")


def grid_anchors(feature_size: tuple[int, int], image_size: int, sizes, ratios) -> np.ndarray:
    """Every (size, ratio) pair on every feature-map pixel: ``[h·w·k, 4]`` corner boxes in pixels.

    Faster R-CNN's anchors (§3.1.1, paper default): k = sizes × ratios per location, each of the
    size's area with width / height = ratio. Order: pixels row-major, then sizes, then ratios,
    the flatten order of the RPN's ``[h, w, k·4]`` maps.

    Example:
        >>> grid_anchors((1, 1), 32, [16.0], [1.0]).tolist()
        [[8.0, 8.0, 24.0, 24.0]]
    """
    per_pair = [
        multibox_anchors(feature_size, (image_size, image_size), [size / image_size], [ratio]).numpy()[:, None]
        for size in sizes for ratio in ratios
    ]
    return np.concatenate(per_pair, axis=1).reshape(-1, 4)


def smooth_l1(error: tf.Tensor, beta: float) -> tf.Tensor:
    """Fast R-CNN's smooth L1: ``0.5 x² / β`` for ``|x| < β``, else ``|x| - 0.5 β``, elementwise."""
    error = tf.abs(error)
    return tf.where(error < beta, 0.5 * error**2 / beta, error - 0.5 * beta)


@keras.saving.register_keras_serializable(package="tfmodels")
class TwoStageCoder(keras.layers.Layer):
    """Anchors, proposals, RoI ops, training targets, loss and decoding of a two-stage detector.

    It plays the part a :class:`~tfmodels.recipes.detection.BoxCoder` plays for one-stage
    detectors (``loss_parts``, :meth:`loss`, :meth:`decode`), but a BoxCoder's targets come from
    the ground truth alone, and a head's come from the proposals too, so the targets here are
    built in steps by :class:`TwoStageDetector`. No weights.

    Args:
        image_size: side of the square model input in pixels.
        feature_size: ``(h, w)`` of the backbone's feature map.
        stride: pixels per feature-map cell.
        anchor_sizes, anchor_ratios: the anchors (:func:`grid_anchors`).
        rpn: ``True``: proposals from a learnt RPN; ``False``: the anchors are the proposals.
        settings: the remaining :class:`TwoStageConfig` fields by name (sampling, proposals,
            RoI op).
        mask_pool_size: RoI Align grid of a mask branch (its masks are twice as wide); 0: none.
    """

    SETTINGS = (
        "rpn_samples", "rpn_positive_fraction", "rpn_positive_iou", "rpn_negative_iou", "pre_nms_proposals",
        "proposal_iou", "train_proposals", "test_proposals", "roi_op", "pool_size", "sampling_ratio",
        "roi_samples", "roi_positive_fraction", "roi_positive_iou",
    )

    def __init__(self, image_size, feature_size, stride, anchor_sizes, anchor_ratios, rpn=True, settings=None,
                 mask_pool_size=0, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.stride, self.rpn = int(image_size), int(stride), bool(rpn)
        self.mask_pool_size = int(mask_pool_size)
        self.feature_size = tuple(int(v) for v in feature_size)
        self.anchor_sizes = tuple(float(v) for v in anchor_sizes)
        self.anchor_ratios = tuple(float(v) for v in anchor_ratios)
        self.settings = dict(settings or {})
        missing = set(self.SETTINGS) - set(self.settings)
        if missing:
            raise ValueError(f"TwoStageCoder needs the settings {sorted(missing)}")
        for key in self.SETTINGS:
            setattr(self, key, self.settings[key])
        # NumPy, so each traced graph embeds the anchors as a constant.
        self.anchors = grid_anchors(self.feature_size, self.image_size, self.anchor_sizes, self.anchor_ratios)
        self.loss_parts = (("rpn_class_loss", "rpn_box_loss") if self.rpn else ()) + ("class_loss", "box_loss")
        self.loss_parts += ("mask_loss",) if self.mask_pool_size else ()
        # balanced_sample puts the drawn foreground first: the mask branch trains on these rows.
        self.foreground_rows = max(1, int(round(self.roi_samples * self.roi_positive_fraction)))

    # -- stage 1: proposals ------------------------------------------------------------------
    def _decode(self, reference: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
        """Boxes from offsets, the size offsets clamped (exp overflows otherwise), clipped to the image."""
        offsets = tf.concat([offsets[..., :2], tf.minimum(offsets[..., 2:], MAX_SIZE_OFFSET)], axis=-1)
        return clip_boxes(decode_offsets(reference, offsets), (self.image_size, self.image_size))

    def proposals(self, outputs: Mapping[str, tf.Tensor], count: int, batch_size) -> tuple[tf.Tensor, tf.Tensor]:
        """``(boxes [B, P, 4], real [B, P])``: the RPN's proposals after NMS, or the fixed windows."""
        anchors = tf.constant(self.anchors)
        if not self.rpn:
            windows = clip_boxes(anchors, (self.image_size, self.image_size))
            return tf.tile(windows[None], [batch_size, 1, 1]), tf.ones([batch_size, len(self.anchors)], tf.bool)
        boxes = self._decode(anchors[None], tf.stop_gradient(outputs["rpn_offsets"]))
        best = tf.math.top_k(tf.stop_gradient(outputs["objectness"]), k=min(self.pre_nms_proposals, len(self.anchors)))
        kept = non_max_suppression(tf.gather(boxes, best.indices, batch_dims=1), best.values, count, self.proposal_iou)
        return kept["detection_boxes"], tf.sequence_mask(kept["num_detections"], count)

    def roi_features(self, features: tf.Tensor, boxes: tf.Tensor, masks: bool = False) -> tf.Tensor:
        """``[B·R, p, p, D]`` float32: RoI pooling or RoI Align of boxes ``[B, R, 4]`` (pixels).

        ``masks``: the mask branch's grid (``mask_pool_size``, always RoI Align) instead of the box head's.
        """
        count = tf.shape(boxes)[1]
        image_index = tf.repeat(tf.range(tf.shape(boxes)[0]), count)
        flat = tf.reshape(boxes, [-1, 4])
        features = tf.cast(features, tf.float32)
        side = self.mask_pool_size if masks else self.pool_size
        size, scale = (side, side), 1.0 / self.stride
        if masks or self.roi_op == "align":
            return roi_align(features, flat, image_index, size, scale, sampling_ratio=self.sampling_ratio)
        return roi_pool(features, flat, image_index, size, scale)

    # -- training targets ----------------------------------------------------------------------
    def rpn_targets(self, gt: Mapping[str, tf.Tensor], seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """The sampled anchors of each image with their labels and offset targets."""
        anchors = tf.constant(self.anchors)
        real = tf.sequence_mask(gt["num_boxes"], tf.shape(gt["classes"])[1])
        labels = label_by_iou(pairwise_iou(anchors, gt["boxes"]), real, self.rpn_positive_iou, self.rpn_negative_iou,
                              best_match=True)
        size = float(self.image_size)
        inside = tf.reduce_all((anchors[:, :2] >= 0.0) & (anchors[:, 2:] <= size), axis=1)[None]  # paper: no cross-boundary anchors
        sample = balanced_sample(labels["positive"] & inside, labels["negative"] & inside, self.rpn_samples,
                                 self.rpn_positive_fraction, seed)
        sampled_anchors = tf.gather(anchors, sample["indices"])
        matched = tf.gather(gt["boxes"], tf.gather(labels["matched"], sample["indices"], batch_dims=1), batch_dims=1)
        matched = tf.where(sample["positive"][..., None], matched, sampled_anchors)  # no log(0) on negatives
        return {
            "rpn_indices": sample["indices"], "rpn_weights": sample["weights"], "rpn_positive": sample["positive"],
            "rpn_offset_targets": encode_offsets(sampled_anchors, matched),
        }

    def sample_rois(self, proposals: tf.Tensor, real: tf.Tensor, gt: Mapping[str, tf.Tensor], seed: tf.Tensor) -> dict:
        """The head's training RoIs: a balanced sample of proposals and ground-truth boxes, with targets."""
        real_gt = tf.sequence_mask(gt["num_boxes"], tf.shape(gt["classes"])[1])
        candidates = tf.concat([proposals, gt["boxes"]], axis=1)
        usable = tf.concat([real, real_gt], axis=1)
        labels = label_by_iou(pairwise_iou(candidates, gt["boxes"]), real_gt, self.roi_positive_iou, self.roi_positive_iou)
        sample = balanced_sample(labels["positive"] & usable, labels["negative"] & usable, self.roi_samples,
                                 self.roi_positive_fraction, seed)
        boxes = tf.gather(candidates, sample["indices"], batch_dims=1)
        matched = tf.gather(labels["matched"], sample["indices"], batch_dims=1)
        positive = sample["positive"]
        matched_boxes = tf.where(positive[..., None], tf.gather(gt["boxes"], matched, batch_dims=1), boxes)
        return {
            "roi_boxes": boxes, "roi_weights": sample["weights"], "roi_positive": positive, "roi_matched": matched,
            "roi_classes": tf.where(positive, tf.gather(gt["classes"], matched, batch_dims=1) + 1, 0),
            # Only foreground rows have targets; a background RoI clipped to zero width would give
            # inf / NaN offsets, and NaN reaches the gradient even through tf.where.
            "roi_offset_targets": tf.where(positive[..., None], encode_offsets(boxes, matched_boxes), 0.0),
        }

    def mask_targets(self, masks: tf.Tensor, matched: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
        """Binary ``M × M`` targets (M = 2 · ``mask_pool_size``) of RoIs ``[B, R, 4]``: the matched
        instance's mask ``[B, G, S, S]`` sampled at the RoI grid's bin centres (RoI Align with one
        sample per bin), thresholded at 0.5 (Mask R-CNN §3, paper default)."""
        shape, size = tf.shape(masks), 2 * self.mask_pool_size
        per_object = tf.reshape(tf.cast(masks, tf.float32), [-1, shape[2], shape[3], 1])
        object_index = tf.reshape(matched + tf.range(shape[0])[:, None] * shape[1], [-1])
        sampled = roi_align(per_object, tf.reshape(boxes, [-1, 4]), object_index, size, sampling_ratio=1)
        return tf.reshape(tf.cast(sampled[..., 0] >= 0.5, tf.float32), tf.concat([tf.shape(matched), [size, size]], 0))

    @staticmethod
    def mask_loss(logits: tf.Tensor, targets: tf.Tensor, foreground: tf.Tensor) -> tf.Tensor:
        """Mask R-CNN's L_mask: per-pixel sigmoid cross-entropy of the true class's mask, averaged
        over the pixels and the foreground RoIs (``logits``, ``targets`` ``[B, R, M, M]``)."""
        per_roi = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(targets, logits), axis=[2, 3])
        return tf.reduce_sum(tf.where(foreground, per_roi, 0.0)) / tf.maximum(tf.reduce_sum(tf.cast(foreground, tf.float32)), 1.0)

    # -- loss and decoding ---------------------------------------------------------------------
    def loss(self, targets: Mapping[str, tf.Tensor], outputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The loss parts (module docstring); ``outputs`` hold the head's on the sampled RoIs."""
        parts = {}
        if self.rpn:
            weights = targets["rpn_weights"]
            count = tf.maximum(tf.reduce_sum(weights), 1.0)
            logits = tf.gather(outputs["objectness"], targets["rpn_indices"], batch_dims=1)
            offsets = tf.gather(outputs["rpn_offsets"], targets["rpn_indices"], batch_dims=1)
            labels = tf.cast(targets["rpn_positive"], tf.float32)
            cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
            box_error = tf.reduce_sum(smooth_l1(offsets - targets["rpn_offset_targets"], 1.0 / 9.0), axis=-1)
            parts["rpn_class_loss"] = tf.reduce_sum(cross_entropy * weights) / count
            parts["rpn_box_loss"] = tf.reduce_sum(tf.where(targets["rpn_positive"], box_error, 0.0)) / count
        weights = targets["roi_weights"]
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        cross_entropy, box_error = self.head_errors(targets, outputs)
        parts["class_loss"] = tf.reduce_sum(cross_entropy * weights) / count
        parts["box_loss"] = tf.reduce_sum(tf.where(targets["roi_positive"], box_error, 0.0)) / count
        return parts

    @staticmethod
    def head_errors(targets: Mapping[str, tf.Tensor], outputs: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """Per sampled RoI ``[B, R]``: the head's softmax cross-entropy, and the smooth L1 (β = 1)
        of its offsets for the RoI's class (meaningful on foreground RoIs only)."""
        classes = targets["roi_classes"]
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, outputs["class_logits"])
        class_offsets = tf.gather(outputs["box_offsets"], tf.maximum(classes - 1, 0), batch_dims=2)  # [B, R, 4]
        return cross_entropy, tf.reduce_sum(smooth_l1(class_offsets - targets["roi_offset_targets"], 1.0), axis=-1)

    def decode(self, outputs: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """``(boxes [B, P, C, 4], class_scores [B, P, C])``: per-class boxes; padding proposals score 0."""
        boxes = self._decode(outputs["proposals"][:, :, None, :], outputs["box_offsets"])
        scores = tf.nn.softmax(outputs["class_logits"], axis=-1)[..., 1:]
        return boxes, scores * tf.cast(outputs["proposal_real"], tf.float32)[..., None]

    def get_config(self):
        return {
            **super().get_config(), "image_size": self.image_size, "feature_size": self.feature_size,
            "stride": self.stride, "anchor_sizes": self.anchor_sizes, "anchor_ratios": self.anchor_ratios,
            "rpn": self.rpn, "settings": self.settings, "mask_pool_size": self.mask_pool_size,
        }


@keras.saving.register_keras_serializable(package="tfmodels")
class TwoStageDetector(Detector):
    """A :class:`~tfmodels.recipes.detection.Detector` whose head runs on RoIs of the shared features.

    Args:
        network: ``images -> {"features", "objectness", "rpn_offsets"}`` (with an RPN) or
            ``images -> {"features"}`` (fixed windows).
        box_head: ``roi_features [R, p, p, D] -> {"class_logits", "box_offsets"}``.
        coder: the :class:`TwoStageCoder`.
        seed: the run seed; the training samples draw from it and the optimizer's step.
        **kwargs: :class:`~tfmodels.recipes.detection.Detector`'s (``num_classes``, NMS settings).

    Example:
        >>> detector = TwoStageDetector(network, box_head, coder, num_classes=10)  # doctest: +SKIP
        >>> detector.detect(images)["detection_boxes"].shape                      # doctest: +SKIP
        TensorShape([8, 100, 4])
    """

    def __init__(self, network, box_head, coder, seed: int = 0, **kwargs):
        super().__init__(network, coder, **kwargs)
        self.box_head = box_head
        self.seed = int(seed)

    def _head(self, features: tf.Tensor, boxes: tf.Tensor, training: bool) -> dict[str, tf.Tensor]:
        """The box head on RoIs ``[B, R, 4]``, outputs reshaped to ``[B, R, ...]``, float32."""
        head = self.box_head(self.coder.roi_features(features, boxes), training=training)
        leading = tf.shape(boxes)[:2]
        return {key: tf.reshape(tf.cast(value, tf.float32), tf.concat([leading, tf.shape(value)[1:]], 0))
                for key, value in head.items()}

    def _inference(self, features: tf.Tensor, proposals: tf.Tensor, real: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"proposals": proposals, "proposal_real": real, **self._head(features, proposals, training=False)}

    def call(self, images, training=False):
        """Inference outputs: ``proposals [B, P, 4]``, ``proposal_real``, ``class_logits``, ``box_offsets``."""
        network_outputs = self.network(images, training=False)
        proposals, real = self.coder.proposals(network_outputs, self.coder.test_proposals, tf.shape(images)[0])
        return self._inference(network_outputs["features"], proposals, real)

    def step_seed(self, training: bool = True) -> tf.Tensor:
        """``[2]`` stateless seed of this training step: the run seed and the optimizer's step
        (step 0 outside training), so a resumed run draws what an uninterrupted one did."""
        step = self.optimizer.iterations if training and self.optimizer is not None else tf.constant(0, tf.int64)
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])

    def _step_seeds(self, training: bool, stream: int = 0) -> tf.Tensor:
        """``[2, 2]`` stateless seeds (RPN sample, RoI sample) of this step; ``stream`` separates
        the draws of several losses in one step (a semi-supervised detector's labelled and
        unlabelled batches)."""
        seed = self.step_seed(training)
        seed = tf.random.experimental.stateless_fold_in(seed, stream) if stream else seed
        return tf.random.experimental.stateless_split(seed, 2)

    def network_outputs(self, images, training: bool) -> dict[str, tf.Tensor]:
        """The backbone's (and RPN's) outputs, float32 except the feature map."""
        outputs = self.network(images, training=training)
        return {key: tf.cast(value, tf.float32) if key != "features" else value for key, value in outputs.items()}

    def detection_loss(self, images, gt, training: bool, stream: int = 0):
        """RPN and head losses on the sampled anchors and RoIs; in evaluation also the inference outputs."""
        network_outputs = self.network_outputs(images, training)
        rpn_seed, roi_seed = tf.unstack(self._step_seeds(training, stream))
        batch_size = tf.shape(images)[0]
        targets = self.coder.rpn_targets(gt, rpn_seed) if self.coder.rpn else {}
        count = self.coder.train_proposals if training else self.coder.test_proposals
        proposals, real = self.coder.proposals(network_outputs, count, batch_size)
        targets.update(self.coder.sample_rois(proposals, real, gt, roi_seed))
        head = self._head(network_outputs["features"], targets["roi_boxes"], training)
        parts = self.coder.loss(targets, {**network_outputs, **head})
        parts.update(self._extra_losses(network_outputs["features"], targets, gt, training))
        total, parts = self._total_loss(parts)
        outputs = None if training else self._inference(network_outputs["features"], proposals, real)
        return total, parts, outputs

    def _extra_losses(self, features, targets, gt, training: bool) -> dict[str, tf.Tensor]:
        """Loss parts of further RoI branches (a subclass's), from the sampled RoIs' ``targets``."""
        return {}

    def get_config(self):
        return {**super().get_config(), "box_head": keras.saving.serialize_keras_object(self.box_head), "seed": self.seed}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["box_head"] = keras.saving.deserialize_keras_object(config["box_head"], custom_objects=custom_objects)
        return super().from_config(config, custom_objects)
