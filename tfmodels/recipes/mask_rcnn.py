"""``mask_rcnn``: Faster R-CNN with RoI Align and a mask FCN per RoI (notes-002-part2.md §11).

Spec: notes-002-part2.md §11 (seed 002 L2151-2163): with pixel-level labels, an FCN predicts
each object's pixels; RoI pooling's rounding is harmless for boxes but not for pixel labels, so
RoI Align, which interpolates bilinearly and never rounds, replaces it. He et al., 2017 is paper
default for the rest:

* the box branch is Faster R-CNN's (:mod:`tfmodels.recipes.two_stage`), on RoI Align 7×7;
* the mask branch (:func:`tfmodels.models.faster_rcnn.build_mask_head`): RoI Align 14×14 of the
  shared feature map, four 3×3 convs, a 2×2 transposed conv, one 28×28 sigmoid mask per class;
* its loss L_mask is the mean per-pixel binary cross-entropy of the ground-truth class's mask on
  the foreground RoIs only, so classes do not compete for pixels (§3); the targets are the
  matched instance masks sampled at the RoI grid's bin centres (:meth:`TwoStageCoder.mask_targets`);
* at inference the mask branch runs on the final detections (after NMS), and each detection
  keeps the mask of its predicted class.

Data: the digit scenes with their instance masks (amodal: a digit keeps its full shape under
another one). Served ``detection_masks`` (:mod:`tfmodels.recipes.detection`): the 28×28 masks
pasted into the input image's pixels (:func:`pipelines.detection.masks.paste_masks`: each
pixel reads the mask bilinearly at its centre; 0 outside the box), float32 probabilities; the
original image's for ``serving_default`` (the letterbox undone like the boxes), the model
input's for ``predict_pixels``.

Report: the detection report (box AP) plus pycocotools' mask AP (``iouType="segm"``, masks
thresholded at 0.5) on the test scenes, and ``masks.png``.

Presets: ``tiny`` (the tests), ``default`` (``faster_rcnn``'s default network and schedule plus a
mask branch of four 64-channel convs, on 4,000 scenes at 128²) and ``paper`` (the paper's
ResNet-50-C4 variant is not built here: VGG-16 as ``faster_rcnn``'s paper preset, with the
paper's mask head of 256 channels; COCO's polygons are not read, so ``paper`` keeps the digit
scenes at 600²).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.detection.masks import paste_masks
from pipelines.splits import Splits
from tfmodels.metrics.coco_eval import coco_evaluate
from tfmodels.models import faster_rcnn
from tfmodels.recipes import detection
from tfmodels.recipes.detection import detection_recipe
from tfmodels.recipes.faster_rcnn import FasterRcnnConfig, detector_parts
from tfmodels.recipes.two_stage import TwoStageDetector

_NOT_PAPER_DATA = ("data", "max_boxes", "flip")


@dataclasses.dataclass
class MaskRcnnConfig(FasterRcnnConfig):
    """Mask R-CNN config: Faster R-CNN's with RoI Align and a mask branch.

    Args:
        mask_pool_size: the mask branch's RoI Align grid (14; masks are twice as wide).
        mask_channels: its convs' channels (256).
        mask_convs: its 3×3 convs (4).
    """

    roi_op: str = "align"
    max_boxes: int = 8
    max_detections: int = 20
    mask_pool_size: int = 14
    mask_channels: int = 64
    mask_convs: int = 4

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**FasterRcnnConfig.PRESETS["tiny"], "mask_pool_size": 7, "mask_channels": 8, "mask_convs": 2,
                 "max_detections": 10},
        "default": {},
        "paper": {
            **{key: value for key, value in FasterRcnnConfig.PRESETS["paper"].items() if key not in _NOT_PAPER_DATA},
            "mask_channels": 256, "max_detections": 100,
        },
    }


@keras.saving.register_keras_serializable(package="tfmodels")
class MaskRcnnDetector(TwoStageDetector):
    """A :class:`TwoStageDetector` with a mask branch; :meth:`detect` adds ``detection_masks``.

    Args:
        network, box_head, coder, seed, **kwargs: :class:`TwoStageDetector`'s (the coder has a
            ``mask_pool_size``).
        mask_head: ``roi_features [R, p, p, D] -> mask logits [R, 2p, 2p, C]``.
    """

    has_masks = True

    def __init__(self, network, box_head, mask_head, coder, seed: int = 0, **kwargs):
        super().__init__(network, box_head, coder, seed=seed, **kwargs)
        self.mask_head = mask_head

    def _mask_logits(self, features, boxes, classes, training: bool) -> tf.Tensor:
        """``[B, K, M, M]``: the mask logits of boxes ``[B, K, 4]`` for their classes ``[B, K]`` (0-based)."""
        logits = self.mask_head(self.coder.roi_features(features, boxes, masks=True), training=training)
        size = tf.shape(logits)[1]
        logits = tf.reshape(tf.cast(logits, tf.float32), tf.concat([tf.shape(boxes)[:2], [size, size, -1]], 0))
        return tf.gather(tf.transpose(logits, [0, 1, 4, 2, 3]), classes, batch_dims=2)

    def _extra_losses(self, features, targets, gt, training: bool) -> dict[str, tf.Tensor]:
        rows = min(self.coder.foreground_rows, targets["roi_boxes"].shape[1])
        boxes, foreground = targets["roi_boxes"][:, :rows], targets["roi_positive"][:, :rows]
        classes = tf.maximum(targets["roi_classes"][:, :rows] - 1, 0)
        logits = self._mask_logits(features, boxes, classes, training)
        mask_targets = self.coder.mask_targets(gt["masks"], targets["roi_matched"][:, :rows], boxes)
        return {"mask_loss": self.coder.mask_loss(logits, mask_targets, foreground)}

    def detect(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """:meth:`Detector.detect`'s detections plus box-relative ``detection_masks`` ``[B, K, M, M]``
        (probabilities; 0 on padding)."""
        network_outputs = self.network(images, training=False)
        proposals, real = self.coder.proposals(network_outputs, self.coder.test_proposals, tf.shape(images)[0])
        detections = self._detections(self._inference(network_outputs["features"], proposals, real))
        classes = detections["detection_classes"]
        logits = self._mask_logits(network_outputs["features"], detections["detection_boxes"], tf.maximum(classes, 0), False)
        masks = tf.where((classes >= 0)[..., None, None], tf.sigmoid(logits), 0.0)
        return {**detections, "detection_masks": masks}

    def get_config(self):
        return {**super().get_config(), "mask_head": keras.saving.serialize_keras_object(self.mask_head)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["mask_head"] = keras.saving.deserialize_keras_object(config["mask_head"], custom_objects=custom_objects)
        return super().from_config(config, custom_objects)


def datasets(cfg: MaskRcnnConfig) -> Splits:
    """The detection splits with instance ``masks`` in ``gt``."""
    return detection.datasets(cfg, masks=True)


def model(cfg: MaskRcnnConfig) -> MaskRcnnDetector:
    parts = detector_parts(cfg, "mask_rcnn", mask_pool_size=cfg.mask_pool_size)
    mask_head = faster_rcnn.build_mask_head(cfg.mask_pool_size, parts["network"].output["features"].shape[-1],
                                            parts["num_classes"], cfg.mask_channels, cfg.mask_convs)
    return MaskRcnnDetector(mask_head=mask_head, **parts)


def _masks_split(model: MaskRcnnDetector, split: tf.data.Dataset, size: int, batch_size: int = 16):
    """``(gt, detections, pixels)`` of a test split with binary masks in the model input's pixels."""
    detect = tf.function(model.detect)
    parts: dict[str, list] = {}
    for pixels, gt in split.batch(batch_size):
        found = detect(pixels)
        pasted = paste_masks(found["detection_masks"], found["detection_boxes"], size, size) >= 0.5
        batch = {**{key: value.numpy() for key, value in {**gt, **found}.items()}, "detection_masks": pasted.numpy(),
                 "image": pixels.numpy()}
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
    joined = {key: np.concatenate(values) for key, values in parts.items()}
    gt = {key: joined[key] for key in (*detection.GT_KEYS, "masks")}
    return gt, {key: joined[key] for key in (*detection.DETECTION_KEYS, "detection_masks")}, joined["image"]


def draw_masks(pixels, detections, names, path: Path, count: int = 6, min_score: float = 0.3) -> None:
    """``masks.png``: test scenes with each confident detection's mask tinted in its own colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = min(count, len(pixels))
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, count, figsize=(2.4 * count, 2.6), squeeze=False)
    for i, ax in enumerate(axes[0]):
        picture = np.clip(pixels[i], 0, 255) / 255.0
        kept = np.flatnonzero((np.arange(len(detections["detection_scores"][i])) < detections["num_detections"][i])
                              & (detections["detection_scores"][i] >= min_score))
        for k in kept:
            mask = detections["detection_masks"][i, k][..., None]
            picture = np.where(mask, 0.45 * picture + 0.55 * np.array(colours(k % 10)[:3]), picture)
            x0, y0 = detections["detection_boxes"][i, k, :2]
            ax.text(x0, y0, names[detections["detection_classes"][i, k]], color="white", fontsize=7, va="bottom")
        ax.imshow(picture)
        ax.set_title(f"{len(kept)} masks", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(cfg: MaskRcnnConfig, model: MaskRcnnDetector, splits: Splits, run_dir: Path) -> dict:
    """The detection report plus ``mask_map``, ``mask_map_50``, ``mask_map_75`` and ``masks.png``."""
    box_report = detection.report(cfg, model, splits, run_dir)
    names = detection.class_names(cfg)
    gt, detections, pixels = _masks_split(model, splits.test, cfg.image_size, cfg.batch_size or 16)
    metrics = coco_evaluate(gt, detections, names, iou_type="segm")
    draw_masks(pixels, detections, names, Path(run_dir) / "masks.png")
    return {**box_report, "mask_map": metrics.map, "mask_map_50": metrics.map_50, "mask_map_75": metrics.map_75,
            "mask_picture": "masks.png"}


RECIPE = detection_recipe(
    "mask_rcnn", "Mask R-CNN: Faster R-CNN with RoI Align and a per-class mask FCN, on digit scenes' instance masks "
    "(notes-002 §11)", MaskRcnnConfig, model, datasets=datasets, report=report,
)
