"""``fcn``: the notes' fully convolutional network on the shared segmentation recipe layer.

Spec: notes-002-part2.md §18 (seed 002 L2333-2387): a CNN without its pooling and FC layers, a
1x1 conv to the classes, and a 32x transposed conv initialised with the notes' ``bilinear_kernel``
(:mod:`tfmodels.models.fcn`). Data, crops, loss, metrics, serving and report:
:mod:`tfmodels.recipes.segmentation`.

Presets:

* ``tiny``: ResNet-18 at 1/16 width on a few dozen 64² digit-scene windows (the tests).
* ``default``: ResNet-18 at 1/4 width (d2l's backbone, not pretrained: offline) on the embedded
  digit scenes, random 96² training crops, 128² evaluation; Adam.
* ``paper``: VGG16 (Long et al. 2015's FCN-32s backbone; ``--set weights=imagenet`` loads
  keras.applications' ImageNet weights online), Pascal VOC 2012 from a local folder
  (``voc:VOCdevkit/VOC2012``), 320² crops, d2l's schedule: SGD lr 1e-3, batch 32 (paper default
  of the notes' source; d2l also uses weight decay 1e-3, which our SGD does not have).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras

from tfmodels.models.fcn import BACKBONES, SIZE_MULTIPLE, build_fcn
from tfmodels.recipes.segmentation import TINY, SegmentationConfig, class_names, segmentation_recipe


@dataclasses.dataclass
class FcnConfig(SegmentationConfig):
    """FCN config (shared fields: :class:`~tfmodels.recipes.segmentation.SegmentationConfig`).

    Args:
        backbone: ``resnet18`` (the notes') or ``vgg16`` (the FCN paper's).
        width: the backbone's first-stage channels (64 published).
        weights: ``""`` (random) or ``imagenet`` (VGG16 at width 64; downloads once).
    """

    backbone: str = "resnet18"
    width: int = 16
    weights: str = ""

    SIZE_MULTIPLE: ClassVar[int] = SIZE_MULTIPLE
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **SegmentationConfig.CHOICES, "backbone": BACKBONES, "weights": ("", "imagenet"),
    }
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**TINY, "width": 4},
        "default": {},
        "paper": {
            "backbone": "vgg16", "width": 64, "data": "voc:VOCdevkit/VOC2012", "image_size": 512, "crop_size": 320,
            "optimizer": "sgd", "learning_rate": 1e-3, "batch_size": 32, "epochs": 5,
        },
    }


def model(cfg: FcnConfig) -> keras.Model:
    return build_fcn(len(class_names(cfg)), backbone=cfg.backbone, width=cfg.width, weights=cfg.weights or None)


RECIPE = segmentation_recipe(
    "fcn", "FCN: CNN without pooling/FC, 1x1 conv to the classes, 32x transposed conv initialised bilinearly "
    "(notes-002 §18)", FcnConfig, model,
)
