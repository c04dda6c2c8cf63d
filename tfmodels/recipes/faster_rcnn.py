"""``faster_rcnn``: a region proposal network replaces selective search (notes-002-part2.md §10).

Specs: notes-002-part2.md §10 (seed 002 L2138-2149: the RPN, a 3×3 conv on the CNN's feature map,
then per anchor a binary classifier and an offset regressor, NMS, and the rest as Fast R-CNN)
and Ren et al., 2015 (paper default for sizes, thresholds and sampling). The two-stage detector,
its targets, loss and decoding are :mod:`tfmodels.recipes.two_stage`'s; the networks are
:mod:`tfmodels.models.faster_rcnn`'s; data, serving and report the shared detection layer's.

Presets:

* ``tiny``: a ResNet of width 8 at 64², a few dozen scenes, one epoch: the tests.
* ``default``: a ResNet (two stages of two basic blocks, width 32, stride 8: a 16×16×64 map) at
  128² on 4,000 digit scenes; anchors of 10, 18 and 32 pixels at width / height 0.5, 0.75 and 1
  (digits are 6-36 pixels high and mostly taller than wide); RPN conv of 128 channels; 256
  training and 100 test proposals; RoI pooling to 7×7; a head of two 256-unit layers; Adam with a
  cosine schedule.
* ``paper``: VGG-16 (conv5_3) on ``tfds:voc/2007`` letterboxed to 600² (the paper rescales the
  shorter side to 600), anchors 128, 256 and 512 at ratios 0.5, 1 and 2, RPN conv 512, 2,000
  training / 300 test proposals from the 12,000 / 6,000 best before NMS, RoI pooling 7×7, fc6 and
  fc7 of 4,096 with dropout, 64 RoIs per image, SGD momentum 0.9 at lr 1e-3 then 1e-4, flips.
  Not reproduced: the paper's weight decay (5e-4), ImageNet initialisation of VGG-16 and its
  frozen conv1-conv2.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from tfmodels.models import faster_rcnn
from tfmodels.recipes.detection import detection_recipe, detector_settings
from tfmodels.recipes.two_stage import TwoStageCoder, TwoStageConfig, TwoStageDetector


@dataclasses.dataclass
class FasterRcnnConfig(TwoStageConfig):
    """Faster R-CNN config: :class:`~tfmodels.recipes.two_stage.TwoStageConfig` with presets."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "image_size": 64, "width": 8, "anchor_sizes": (6.0, 12.0, 20.0), "rpn_channels": 16,
            "pre_nms_proposals": 200, "train_proposals": 64, "test_proposals": 20, "roi_samples": 32,
            "head_units": (32,), "num_scenes": (64, 16, 16), "epochs": 2, "batch_size": 16, "verbose": 2,
            "max_detections": 20,
        },
        "default": {},
        "paper": {
            "backbone": "vgg16", "data": "tfds:voc/2007", "image_size": 600, "max_boxes": 64,
            "anchor_sizes": (128.0, 256.0, 512.0), "anchor_ratios": (0.5, 1.0, 2.0), "rpn_channels": 512,
            "pre_nms_proposals": 12000, "train_proposals": 2000, "test_proposals": 300, "roi_samples": 64,
            "head_units": (4096, 4096), "head_dropout": 0.5, "optimizer": "momentum", "momentum": 0.9,
            "learning_rate": 1e-3, "batch_size": 2, "epochs": 16, "lr_schedule": "multistep",
            "lr_milestones": (12,), "lr_gamma": 0.1, "flip": True, "scale_range": (1.0, 1.0),
            "score_threshold": 0.05, "max_detections": 100,
        },
    }


def features(cfg: TwoStageConfig):
    """The backbone: VGG-16's conv5_3 (stride 16) or a narrow ResNet (stride 8)."""
    if cfg.backbone == "vgg16":
        return faster_rcnn.build_vgg16_features(cfg.image_size), faster_rcnn.VGG16_STRIDE
    return faster_rcnn.build_resnet_features(cfg.image_size, cfg.width), faster_rcnn.RESNET_STRIDE


def detector_parts(cfg: TwoStageConfig, name: str, rpn: bool = True, **coder_options) -> dict[str, Any]:
    """The keyword arguments of a :class:`TwoStageDetector` called ``name``, built from ``cfg``.

    The backbone (:func:`features`), with an RPN on it when ``rpn`` (else fixed windows are the
    proposals: Fast R-CNN), the box head on its pooled features, the coder (``coder_options``
    go to :class:`TwoStageCoder`, e.g. a mask branch's ``mask_pool_size``) and the shared detector
    settings (``num_classes`` among them).
    """
    settings = detector_settings(cfg)
    backbone, stride = features(cfg)
    if rpn:
        anchors_per_location = len(cfg.anchor_sizes) * len(cfg.anchor_ratios)
        network = faster_rcnn.build_rpn(backbone, anchors_per_location, cfg.rpn_channels)
    else:
        network = faster_rcnn.build_feature_network(backbone)
    feature_shape = network.output["features"].shape
    box_head = faster_rcnn.build_box_head(cfg.pool_size, feature_shape[-1], settings["num_classes"],
                                          cfg.head_units, cfg.head_dropout)
    coder = TwoStageCoder(cfg.image_size, feature_shape[1:3], stride, cfg.anchor_sizes, cfg.anchor_ratios, rpn=rpn,
                          settings={key: getattr(cfg, key) for key in TwoStageCoder.SETTINGS}, name=f"{name}_coder",
                          **coder_options)
    return {"network": network, "box_head": box_head, "coder": coder, "seed": cfg.seed, "name": name, **settings}


def model(cfg: FasterRcnnConfig) -> TwoStageDetector:
    return TwoStageDetector(**detector_parts(cfg, "faster_rcnn"))


RECIPE = detection_recipe(
    "faster_rcnn", "Faster R-CNN: RPN proposals, RoI pooling and a box head on digit scenes; VGG-16 at paper scale "
    "(notes-002 §10)", FasterRcnnConfig, model,
)
