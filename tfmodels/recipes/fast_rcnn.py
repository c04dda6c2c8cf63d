"""``fast_rcnn``: one CNN pass per image, RoI pooling of every proposal (notes-002-part2.md §9).

Spec: notes-002-part2.md §9 (seed 002 L2125-2140): R-CNN ran the CNN once per proposal; Fast
R-CNN runs it once on the whole image, maps each proposal proportionally onto the feature map,
RoI-pools it to a fixed n×m grid (§8), flattens it and feeds fully connected layers, then a class
predictor and a box predictor. Girshick, 2015 is paper default for the rest (7×7 RoI pooling,
fc6/fc7, ``C + 1`` classes, class-specific box offsets, 25% foreground of the sampled RoIs).

Proposals: the paper takes ~2,000 selective-search regions per image, which TensorFlow has no op
for; here they are fixed sliding windows, the same boxes as Faster R-CNN's anchors (every
feature-map cell × ``anchor_sizes`` × ``anchor_ratios``: 2,304 windows at the default 128² with
a stride-8 map), a core-op stand-in computed once per image size. Like selective search they are
not learnt: the box head's offsets are what move a window onto an object. Training samples
``roi_samples`` of them per image (plus the ground-truth boxes, as the paper's training RoIs do);
inference classifies and regresses every window, then applies the shared multiclass NMS.

The detector is :mod:`tfmodels.recipes.two_stage`'s without an RPN; backbone and head are
:mod:`tfmodels.models.faster_rcnn`'s; data, serving and report the shared detection layer's.

Presets: ``tiny`` (the tests), ``default`` (the same backbone, head and schedule as
``faster_rcnn``'s default, so the two differ only in where the proposals come from) and
``paper`` (VGG-16, VOC 2007 at 600², fc6/fc7 of 4,096, 64 RoIs per image, SGD momentum 0.9 at
lr 1e-3 then 1e-4; sliding windows of 64-512 pixels stand in for selective search).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from tfmodels.recipes.detection import detection_recipe
from tfmodels.recipes.faster_rcnn import FasterRcnnConfig, detector_parts
from tfmodels.recipes.two_stage import TwoStageDetector

_RPN_ONLY = ("rpn_channels", "pre_nms_proposals", "train_proposals", "test_proposals")


@dataclasses.dataclass
class FastRcnnConfig(FasterRcnnConfig):
    """Fast R-CNN config: Faster R-CNN's, whose anchors serve as the fixed windows (RPN fields unused)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {key: value for key, value in FasterRcnnConfig.PRESETS["tiny"].items() if key not in _RPN_ONLY},
        "default": {},
        "paper": {
            **{key: value for key, value in FasterRcnnConfig.PRESETS["paper"].items() if key not in _RPN_ONLY},
            "anchor_sizes": (64.0, 128.0, 256.0, 512.0),
        },
    }


def model(cfg: FastRcnnConfig) -> TwoStageDetector:
    return TwoStageDetector(**detector_parts(cfg, "fast_rcnn", rpn=False))


RECIPE = detection_recipe(
    "fast_rcnn", "Fast R-CNN: one backbone pass per image, RoI pooling of sliding-window proposals, a box head "
    "(notes-002 §9)", FastRcnnConfig, model,
)
