"""``rcnn``: the original R-CNN, a CNN run on every warped proposal (notes-002-part2.md §7).

Specs: notes-002-part2.md §7 (seed 002 L2096-2108: the four steps below) and §12 (L2169: R-CNN is
the earliest of the family; Fast R-CNN shares one CNN pass per image); R-CNN (Girshick et al.,
2014) for everything the notes leave open (paper default). It is here to be compared with
``faster_rcnn``: same data, serving and report (the shared detection layer,
:mod:`tfmodels.recipes.detection`), but the CNN runs once per proposal, not once per image.
The networks are :mod:`tfmodels.models.rcnn`'s.

The notes' four steps, all in the graph with core ops (:class:`RcnnDetector`):

1. **Proposals**: fixed sliding windows, the anchors of
   :func:`~tfmodels.recipes.two_stage.grid_anchors` (``window_sizes`` × ``window_ratios`` at
   each point of a ``window_grid`` × ``window_grid`` lattice), clipped to the image. They stand
   in for selective search, which has no TensorFlow op (as notes-002-part2.md §7.4 proposes);
   unlike selective search they do not look at the image, so an object between lattice points
   is only covered loosely and relies on the box regressor.
2. **Warp and features**: each window is warped to ``crop_size`` × ``crop_size`` with
   ``tf.image.crop_and_resize`` after dilating it for ``context_padding`` pixels of context
   (:mod:`tfmodels.layers.region_warp`), and the CNN (AlexNet cut after fc7) runs on every crop
   separately: a batch of ``B × N`` crops, so the cost grows with the number of proposals, the
   notes' point about R-CNN (§9, L2127-2129). The CNN is the model's ``crop_network``, so a
   benchmark can time it alone.
3. **Per-class linear SVMs** on the features score each proposal (one-vs-rest hinge loss).
   Scores are SVM margins; they are mapped to [0, 1] with a sigmoid for the shared NMS, score
   threshold and mAP (a monotone map: the ranking, hence the AP, is the SVMs'). The network
   also returns the fine-tuning softmax's logits (``class_logits``), which detection does not
   use (the paper, Appendix B, found them a little worse than the SVMs).
4. A **class-specific linear box regressor** moves each proposal; then the shared detector's
   per-class NMS.

Training (:meth:`RcnnDetector.detection_loss`). Every image contributes all its ground-truth
boxes plus ``finetune_samples`` windows drawn by
:func:`~pipelines.detection.proposal_sampling.balanced_sample` (at most
``finetune_positive_fraction`` foreground), each warped and run through the CNN once; three
losses read those rows:

* ``finetune_loss``: softmax cross-entropy over ``C + 1`` classes (paper §2.3: IoU >= 0.5 with a
  ground-truth box is that box's class, the rest background; 32 foreground and 96 background
  windows per 128). This is the only loss that trains the CNN.
* ``svm_loss``: for each class, hinge loss ``max(0, 1 - y s)`` (:func:`svm_hinge`) with the
  ground-truth boxes of the class as positives (``y = +1``, weighted ``svm_positive_weight``,
  the reference code's 2) and every row whose IoU with all boxes of the class is below
  ``svm_negative_iou`` (0.3) as negatives; rows in between are ignored for that class.
* ``box_loss``: squared error of the matched class's offsets (ridge regression, paper Appendix
  C) on the windows whose IoU with a box is at least ``box_iou`` (0.6), towards that box.

The SVMs and the regressor read ``tf.stop_gradient`` of the features, so for them the CNN is
frozen (they see the training pass's features, with fc6's dropout where there is any).
Deviation: the paper trains the stages one after another (fine-tune the CNN, then fit the SVMs
with hard-negative mining and the regressors on the final features, cached on disk); here they
train jointly, in one loss and one optimizer, each SVM step seeing the CNN of that step. Also
not reproduced: selective search (step 1), ImageNet pre-training of the CNN, hard-negative
mining (negatives are the random sample's), pool5 features for the regressor (it reads fc7) and
the mean-pixel fill beyond the image border (0 here).

Presets:

* ``tiny``: 64² scenes, an 8×8 lattice × 2 sizes × 2 ratios = 256 windows, 24² crops, a
  1/16-width AlexNet with 32-unit fc6 / fc7, a few dozen scenes, 2 epochs: the tests.
* ``default``: 128² digit scenes (digits 12-34 pixels high, 7-32 wide, width / height
  0.4-1.25). A 16×16 lattice × sizes 12, 18, 28 × ratios (width / height) 0.6, 0.9: 1,536
  windows per image (the paper has about 2,000 proposals); 85.6% of the training digits have a
  window at IoU >= 0.5, 66% at 0.6 (3 sizes × 3 ratios, 2,304 windows, reach 87.5% at 1.5 times
  the cost). 32² crops with 2 pixels of context (the paper's 16 / 227); AlexNet at 1/8 width
  with a 3×3 stride-1 stem (the 11×11 stride-4 stem would leave nothing of a 32² crop), 128-unit
  fc6 / fc7, one group and no LRN (grouped convolutions and LRN ran 5-10 times slower on CPUs);
  32 windows plus the ground-truth boxes per image in training; Adam with a cosine schedule;
  200 validation scenes, since validation scores all 1,536 windows of each.
* ``paper``: ``tfds:voc/2007`` letterboxed to 500² (VOC images are at most 500 pixels: R-CNN
  warps proposals from the image as it is); 13×13 × sizes 64-400 × ratios 0.5, 1, 2 = 2,028
  windows; AlexNet as published (227² warps, 16 pixels of context, two groups, LRN, fc6 / fc7
  of 4096 with dropout 0.5); 64 windows per image and two images per step (the paper's
  128-window batches, 25% foreground); SGD with momentum 0.9 at lr 1e-3 (the paper's
  fine-tuning rate); flips. Not reproduced: ImageNet weights, selective search, hard-negative
  mining, the stage-wise training (above), the weight decay of fine-tuning (5e-4).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.detection.boxes import clip_boxes, decode_offsets, encode_offsets, pairwise_iou
from pipelines.detection.proposal_sampling import balanced_sample, label_by_iou
from tfmodels.config import ConfigError
from tfmodels.models import rcnn
from tfmodels.recipes.detection import BoxCoder, DetectionConfig, Detector, detection_recipe, detector_settings
from tfmodels.recipes.two_stage import grid_anchors


@dataclasses.dataclass
class RcnnConfig(DetectionConfig):
    """R-CNN settings (module docstring).

    Args:
        window_grid: the windows' centres form a ``window_grid`` × ``window_grid`` lattice.
        window_sizes: window sides in pixels (the square root of the area).
        window_ratios: window aspect ratios, width / height.
        crop_size: side of the warped crops, the CNN's input (227).
        context_padding: pixels of context around the window in its crop (16 at 227).
        cnn_width_divisor, cnn_fc_units, cnn_stem_kernel, cnn_stem_stride, cnn_groups, cnn_lrn,
            cnn_dropout: the AlexNet (:func:`tfmodels.models.rcnn.build_crop_network`); the
            dropout also precedes the fine-tuning classifier.
        finetune_samples: windows sampled per image in training, besides its ground-truth boxes.
        finetune_positive_fraction: their largest foreground share (0.25).
        finetune_positive_iou: IoU from which a window is foreground in fine-tuning (0.5).
        svm_negative_iou: below this IoU with all boxes of a class a row is that SVM's negative (0.3).
        svm_positive_weight: hinge-loss weight of the positives (the reference code's 2).
        svm_l2: L2 penalty on the SVMs' weights.
        box_iou: IoU from which a window trains the box regressor (0.6).
        box_l2: L2 penalty on the regressors' weights (ridge regression).
    """

    max_boxes: int = 5  # digit scenes hold at most 5, and every box is a training row
    num_scenes: tuple[int, ...] = (4000, 200, 500)
    window_grid: int = 16
    window_sizes: tuple[float, ...] = (12.0, 18.0, 28.0)
    window_ratios: tuple[float, ...] = (0.6, 0.9)
    crop_size: int = 32
    context_padding: int = 2
    cnn_width_divisor: int = 8
    cnn_fc_units: int = 128
    cnn_stem_kernel: int = 3
    cnn_stem_stride: int = 1
    cnn_groups: int = 1
    cnn_lrn: bool = False
    cnn_dropout: float = 0.0
    finetune_samples: int = 32
    finetune_positive_fraction: float = 0.25
    finetune_positive_iou: float = 0.5
    svm_negative_iou: float = 0.3
    svm_positive_weight: float = 2.0
    svm_l2: float = 1e-4
    box_iou: float = 0.6
    box_l2: float = 1e-4
    epochs: int = 10
    batch_size: int = 16
    lr_schedule: str = "cosine"

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64, "window_grid": 8, "window_sizes": (8.0, 14.0), "window_ratios": (0.5, 1.0),
            "crop_size": 24, "context_padding": 1, "cnn_width_divisor": 16, "cnn_fc_units": 32,
            "finetune_samples": 16, "num_scenes": (64, 16, 16), "epochs": 2, "batch_size": 16, "verbose": 2,
            "max_detections": 20,
        },
        "default": {},
        "paper": {
            "data": "tfds:voc/2007", "image_size": 500, "max_boxes": 64, "window_grid": 13,
            "window_sizes": (64.0, 128.0, 256.0, 400.0), "window_ratios": (0.5, 1.0, 2.0), "crop_size": 227,
            "context_padding": 16, "cnn_width_divisor": 1, "cnn_fc_units": 4096, "cnn_stem_kernel": 11,
            "cnn_stem_stride": 4, "cnn_groups": 2, "cnn_lrn": True, "cnn_dropout": 0.5, "finetune_samples": 64,
            "optimizer": "momentum", "momentum": 0.9, "learning_rate": 1e-3, "lr_schedule": "constant",
            "batch_size": 2, "epochs": 16, "flip": True, "scale_range": (1.0, 1.0),
            "max_detections": 100,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window_grid < 1 or not self.window_sizes or not self.window_ratios:
            raise ConfigError("window_grid must be >= 1 and window_sizes, window_ratios non-empty")
        if min(*self.window_sizes, *self.window_ratios) <= 0:
            raise ConfigError("window_sizes and window_ratios need positive values")
        if self.finetune_samples < 1 or not 0 < self.finetune_positive_fraction <= 1:
            raise ConfigError("finetune_samples must be >= 1 and finetune_positive_fraction in (0, 1]")
        if not 0 <= 2 * self.context_padding < self.crop_size:
            raise ConfigError(f"context_padding must be under half of crop_size, got {self.context_padding}")


def svm_hinge(scores: tf.Tensor, labels: tf.Tensor, positive_weight: float = 1.0) -> tf.Tensor:
    """One-vs-rest SVM hinge loss per (row, class): ``w · max(0, 1 - y s)``, elementwise.

    Args:
        scores: float ``[..., C]`` SVM outputs ``s``.
        labels: float ``[..., C]`` ``y``: +1 positive, -1 negative, 0 ignored (loss 0).
        positive_weight: ``w`` of the positives (1 for the negatives).

    Example:
        >>> svm_hinge(tf.constant([[0.5, -2.0, 3.0]]), tf.constant([[1.0, -1.0, 0.0]]), 2.0).numpy().tolist()
        [[1.0, 0.0, 0.0]]
    """
    weights = tf.where(labels > 0, positive_weight, tf.abs(labels))
    return weights * tf.nn.relu(1.0 - labels * scores)


@keras.saving.register_keras_serializable(package="tfmodels")
class RcnnCoder(BoxCoder):
    """R-CNN's windows, training targets and sample, losses and decoding (module docstring). No weights.

    Rows of :meth:`encode` are the ``N`` windows, then the ``G`` ground-truth box rows.

    Args:
        image_size: side of the square model input in pixels.
        window_grid, window_sizes, window_ratios: the windows (:func:`grid_anchors`, clipped).
        num_classes: object classes C.
        finetune_samples, finetune_positive_fraction, finetune_positive_iou, svm_negative_iou,
            svm_positive_weight, box_iou: :class:`RcnnConfig`'s.
    """

    loss_parts = ("finetune_loss", "svm_loss", "box_loss")

    def __init__(
        self, image_size, window_grid, window_sizes, window_ratios, num_classes, finetune_samples=32,
        finetune_positive_fraction=0.25, finetune_positive_iou=0.5, svm_negative_iou=0.3, svm_positive_weight=2.0,
        box_iou=0.6, **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size, self.window_grid, self.num_classes = int(image_size), int(window_grid), int(num_classes)
        self.window_sizes = tuple(float(v) for v in window_sizes)
        self.window_ratios = tuple(float(v) for v in window_ratios)
        self.finetune_samples = int(finetune_samples)
        self.finetune_positive_fraction = float(finetune_positive_fraction)
        self.finetune_positive_iou = float(finetune_positive_iou)
        self.svm_negative_iou = float(svm_negative_iou)
        self.svm_positive_weight = float(svm_positive_weight)
        self.box_iou = float(box_iou)
        grid = (self.window_grid, self.window_grid)
        # NumPy, so each traced graph embeds the windows as a constant.
        self.windows = np.clip(grid_anchors(grid, self.image_size, self.window_sizes, self.window_ratios),
                               0.0, self.image_size).astype(np.float32)

    def encode(self, gt: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Targets of every window and ground-truth row ``[B, N + G, ...]``.

        Returns:
            ``boxes``, ``real`` (False on padding boxes), ``classes`` (fine-tuning: 0 background,
            ``c + 1`` foreground), ``svm_labels`` float ``[B, N + G, C]`` (+1 / -1 / 0 ignored),
            ``regress`` (windows at IoU >= ``box_iou``) with their ``offset_targets``, and
            ``foreground`` / ``background``: the windows :meth:`sample` draws from.
        """
        boxes, classes = gt["boxes"], gt["classes"]
        real_gt = tf.sequence_mask(gt["num_boxes"], tf.shape(classes)[1])
        windows = tf.tile(tf.constant(self.windows)[None], [tf.shape(boxes)[0], 1, 1])
        candidates = tf.concat([windows, boxes], axis=1)
        is_window = tf.range(tf.shape(candidates)[1]) < len(self.windows)
        iou = pairwise_iou(candidates, boxes)
        finetune = label_by_iou(iou, real_gt, self.finetune_positive_iou, self.finetune_positive_iou)
        regress = label_by_iou(iou, real_gt, self.box_iou, self.box_iou)["positive"] & is_window
        matched = finetune["matched"]
        offsets = encode_offsets(candidates, tf.gather(boxes, matched, batch_dims=1))
        return {
            "boxes": candidates,
            "real": tf.concat([tf.ones_like(windows[..., 0], tf.bool), real_gt], axis=1),
            "classes": tf.where(finetune["positive"], tf.gather(classes, matched, batch_dims=1) + 1, 0),
            "svm_labels": self._svm_labels(iou, classes, real_gt),
            "regress": regress,
            "offset_targets": tf.where(regress[..., None], offsets, 0.0),  # padding rows would be NaN
            "foreground": finetune["positive"] & is_window,
            "background": finetune["negative"] & is_window,
        }

    def _svm_labels(self, iou: tf.Tensor, classes: tf.Tensor, real_gt: tf.Tensor) -> tf.Tensor:
        """+1 for a ground-truth row of the class, -1 below ``svm_negative_iou`` with all its boxes, else 0."""
        of_class = tf.one_hot(classes, self.num_classes, on_value=True, off_value=False) & real_gt[..., None]
        # [B, N + G, C]: each row's best IoU with the boxes of each class
        class_iou = tf.reduce_max(tf.where(of_class[:, None], iou[..., None], 0.0), axis=2)
        positive = tf.concat([tf.zeros_like(class_iou[:, : len(self.windows)], tf.bool), of_class], axis=1)
        negative = ~positive & (class_iou < self.svm_negative_iou)
        return tf.cast(positive, tf.float32) - tf.cast(negative, tf.float32)

    def sample(self, targets: Mapping[str, tf.Tensor], seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """The training rows of each image: its ``G`` ground-truth rows, then the drawn windows.

        Returns:
            :meth:`encode`'s targets gathered at those rows, ``[B, G + S, ...]``, and ``weights``
            (0 on padding boxes and on filler where too few windows could be drawn).
        """
        drawn = balanced_sample(targets["foreground"], targets["background"], self.finetune_samples,
                                self.finetune_positive_fraction, seed)
        num_windows, num_rows = len(self.windows), tf.shape(targets["real"])[1]
        gt_rows = tf.tile(tf.range(num_windows, num_rows)[None], [tf.shape(drawn["indices"])[0], 1])
        rows = tf.concat([gt_rows, drawn["indices"]], axis=1)
        sampled = {key: tf.gather(value, rows, batch_dims=1) for key, value in targets.items()}
        real_gt = tf.cast(targets["real"][:, num_windows:], tf.float32)
        return {**sampled, "weights": tf.concat([real_gt, drawn["weights"]], axis=1)}

    def loss(self, targets: Mapping[str, tf.Tensor], outputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The three parts on the sampled rows (module docstring); fine-tuning and SVMs per row."""
        weights = targets["weights"]
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        classes = targets["classes"]
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, outputs["class_logits"])
        hinge = tf.reduce_sum(svm_hinge(outputs["svm_scores"], targets["svm_labels"], self.svm_positive_weight), -1)
        regress = targets["regress"] & (weights > 0)
        class_offsets = tf.gather(outputs["box_offsets"], tf.maximum(classes - 1, 0), batch_dims=2)  # [B, R, 4]
        squared_error = tf.reduce_sum(tf.square(class_offsets - targets["offset_targets"]), axis=-1)
        return {
            "finetune_loss": tf.reduce_sum(cross_entropy * weights) / count,
            "svm_loss": tf.reduce_sum(hinge * weights) / count,
            "box_loss": tf.reduce_sum(tf.where(regress, squared_error, 0.0))
            / tf.maximum(tf.reduce_sum(tf.cast(regress, tf.float32)), 1.0),
        }

    def decode(self, outputs: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """``(boxes [B, N, C, 4], class_scores [B, N, C])``: regressed windows, sigmoid of the SVM scores."""
        windows = tf.constant(self.windows)[None, :, None, :]
        boxes = clip_boxes(decode_offsets(windows, outputs["box_offsets"]), (self.image_size, self.image_size))
        return boxes, tf.sigmoid(outputs["svm_scores"])

    def get_config(self):
        return {
            **super().get_config(), "image_size": self.image_size, "window_grid": self.window_grid,
            "window_sizes": self.window_sizes, "window_ratios": self.window_ratios, "num_classes": self.num_classes,
            "finetune_samples": self.finetune_samples, "finetune_positive_fraction": self.finetune_positive_fraction,
            "finetune_positive_iou": self.finetune_positive_iou, "svm_negative_iou": self.svm_negative_iou,
            "svm_positive_weight": self.svm_positive_weight, "box_iou": self.box_iou,
        }


@keras.saving.register_keras_serializable(package="tfmodels")
class RcnnDetector(Detector):
    """A :class:`~tfmodels.recipes.detection.Detector` that runs its CNN on every proposal.

    ``call`` is :func:`tfmodels.models.rcnn.build_rcnn`'s network on all windows; training
    (:meth:`detection_loss`) runs the same layers on the sampled rows.

    Args:
        network: :func:`tfmodels.models.rcnn.build_rcnn`'s, with the coder's windows.
        coder: the :class:`RcnnCoder`.
        seed: the run seed; the training samples draw from it and the optimizer's step, so a
            resumed run draws what an uninterrupted one did.
        **kwargs: :class:`~tfmodels.recipes.detection.Detector`'s (``num_classes``, NMS settings).

    Example:
        >>> import tfmodels
        >>> detector = tfmodels.build("rcnn", preset="tiny")
        >>> detector.detect(tf.zeros([2, 64, 64, 3]))["detection_boxes"].shape
        TensorShape([2, 20, 4])
        >>> detector.crop_network.input.shape   # one warped window; 256 of them per image
        (None, 24, 24, 3)
    """

    def __init__(self, network, coder, seed: int = 0, **kwargs):
        super().__init__(network, coder, **kwargs)
        self.seed = int(seed)

    @property
    def crop_network(self) -> keras.Model:
        """The CNN on single warped crops, ``[R, h, h, 3] -> features [R, D]``: the per-proposal cost."""
        return self.network.get_layer("per_region").layer

    def detection_loss(self, images, gt, training: bool):
        """The three losses on the sampled rows; in evaluation also the outputs on all windows."""
        step = self.optimizer.iterations if training and self.optimizer is not None else 0
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        targets = self.coder.sample(self.coder.encode(gt), seed)
        crops = self.network.get_layer("warp").warp(images, targets["boxes"])
        features = self.network.get_layer("per_region")(crops, training=training)
        # Only the fine-tuning softmax trains the CNN: the SVMs and regressors learn on its features as they are.
        outputs = self.network.get_layer("heads")([features, tf.stop_gradient(features)], training=training)
        total, parts = self._total_loss(self.coder.loss(targets, outputs))
        return total, parts, None if training else self(images, training=False)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def model(cfg: RcnnConfig) -> RcnnDetector:
    settings = detector_settings(cfg)
    coder = RcnnCoder(
        cfg.image_size, cfg.window_grid, cfg.window_sizes, cfg.window_ratios, settings["num_classes"],
        cfg.finetune_samples, cfg.finetune_positive_fraction, cfg.finetune_positive_iou, cfg.svm_negative_iou,
        cfg.svm_positive_weight, cfg.box_iou, name="rcnn_coder",
    )
    crop_network = rcnn.build_crop_network(
        cfg.crop_size, cfg.cnn_width_divisor, cfg.cnn_fc_units, cfg.cnn_dropout, cfg.cnn_stem_kernel,
        cfg.cnn_stem_stride, cfg.cnn_groups, cfg.cnn_lrn,
    )
    heads = rcnn.build_rcnn_heads(cfg.cnn_fc_units, settings["num_classes"], cfg.cnn_dropout, cfg.svm_l2, cfg.box_l2)
    network = rcnn.build_rcnn(cfg.image_size, coder.windows, cfg.crop_size, crop_network, heads, cfg.context_padding)
    return RcnnDetector(network, coder, seed=cfg.seed, name="rcnn", **settings)


RECIPE = detection_recipe(
    "rcnn", "R-CNN: a CNN on every warped sliding window, per-class SVMs and box regressors on digit scenes; "
    "AlexNet at paper scale (notes-002 §7)", RcnnConfig, model,
)
