"""``unet``: U-Net's encoder-decoder with skip connections, on the shared segmentation recipe layer.

Spec: notes-003-004.md D3 (seed 003 L95, L271-277) and Ronneberger et al. 2015 (paper default):
:mod:`tfmodels.models.unet`. Data, crops, loss, metrics, serving and report:
:mod:`tfmodels.recipes.segmentation`.

Presets:

* ``tiny``: 4 base filters, 2 levels, a few dozen 64² windows (the tests).
* ``default``: 16 base filters, 3 levels on the embedded digit scenes (96² crops, 128² evaluation).
* ``paper``: the paper's layout (64 base filters, 4 levels, 31,031,810 parameters at 2 classes),
  on the Oxford-IIIT pets' trimaps (``tfds:oxford_iiit_pet``, 2 classes, online); the paper's
  SGD momentum 0.99 at batch 1 on 512² crops is kept as SGD momentum 0.99, lr 1e-2, batch 1
  (paper default); its elastic deformations and weight map are not built.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras

from tfmodels.models.unet import SIZE_MULTIPLE, build_unet
from tfmodels.recipes.segmentation import TINY, SegmentationConfig, class_names, segmentation_recipe


@dataclasses.dataclass
class UnetConfig(SegmentationConfig):
    """U-Net config (shared fields: :class:`~tfmodels.recipes.segmentation.SegmentationConfig`).

    Args:
        base_filters: channels of the first level (64 in the paper), doubled at every level.
        depth: pooling levels (4 in the paper).
        batch_norm: BN after every 3x3 conv (not in the paper).
        dropout: dropout at the end of the contracting path (the paper gives no rate).
    """

    base_filters: int = 16
    depth: int = 3
    batch_norm: bool = False
    dropout: float = 0.0

    SIZE_MULTIPLE: ClassVar[int] = SIZE_MULTIPLE
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**TINY, "base_filters": 4, "depth": 2},
        "default": {},
        "paper": {
            "base_filters": 64, "depth": 4, "data": "tfds:oxford_iiit_pet", "image_size": 512, "crop_size": 256,
            "optimizer": "momentum", "momentum": 0.99, "learning_rate": 1e-2, "batch_size": 1, "epochs": 20,
        },
    }


def model(cfg: UnetConfig) -> keras.Model:
    return build_unet(
        len(class_names(cfg)), base_filters=cfg.base_filters, depth=cfg.depth, batch_norm=cfg.batch_norm,
        dropout=cfg.dropout,
    )


RECIPE = segmentation_recipe(
    "unet", "U-Net: encoder-decoder with concatenated skip connections, 2x2 up-convolutions (notes-003-004 D3)",
    UnetConfig, model,
)
