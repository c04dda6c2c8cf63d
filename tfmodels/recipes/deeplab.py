"""``deeplab_v1`` .. ``deeplab_v3_plus``: the DeepLab series on the shared segmentation recipe layer.

Spec: notes-001.md §7 (seed 001 L273-369) and notes-003-004.md A9, D4 (seed 003 L83-99,
L279-295): atrous convolution keeps resolution while widening the field of view; v1 puts it in
VGG-16 (DeepLab-LargeFOV), v2 adds ASPP (parallel rates, summed class scores), v3 ASPP with image
pooling and BN on an atrous ResNet, v3+ a decoder with low-level features. The networks are
:mod:`tfmodels.models.deeplab`'s; data, crops, loss, metrics, serving and report
:mod:`tfmodels.recipes.segmentation`'s.

One config holds every field of the series; each version reads the ones its network has
(``conv_arch`` / ``fc_*``: v1's VGG; ``block`` / ``stage_blocks`` / ``width`` / ``output_stride``:
the ResNet of v2-v3+; ``aspp_*``; ``low_level_channels`` / ``decoder_channels``: v3+).

Presets:

* ``tiny``: 1/16-width networks on a few dozen 64² windows (the tests).
* ``default`` (embedded digit scenes, 96² crops, 128² evaluation): v1 a VGG of widths
  16-32-64-128-128 with fc6 rate 4; v2-v3+ a ResNet-10 (basic blocks, one per stage) of width 16
  at output stride 8, ASPP rates scaled to 128² (v2 (1, 2, 3, 4), v3 / v3+ (2, 4, 6), 64 channels).
* v1 weights its loss per class (ENet's ``1 / ln(1.02 + p_c)``, not in the paper) in every
  preset: on the digit scenes, whose pixels are 97% background, the plain VGG (no batch norm,
  trained from scratch) stayed at the all-background answer for 10 epochs without it, at lr 1e-3
  and 1e-4. ``--set class_weighting=none`` gives the paper's loss.
* ``paper``: the papers' networks (v1 VGG-16 LargeFOV, 20,505,429 parameters at 21 classes; v2
  and v3 / v3+ on ResNet-101 at output strides 8 and 16, rates 6/12/18/24 and 6/12/18) on Pascal
  VOC 2012 from a local folder (``voc:VOCdevkit/VOC2012``), SGD momentum 0.9 with the papers'
  batch and base lr; crops of 320² (v1, v2: the papers' 321) and 512² (v3: 513), since inputs
  must be multiples of 32. The papers' "poly" lr decay is replaced by ``cosine`` (paper default
  otherwise); the CRF of v1 / v2 is not built.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras

from tfmodels.models import deeplab
from tfmodels.recipes.segmentation import TINY, SegmentationConfig, class_names, segmentation_recipe

_VOC = {"data": "voc:VOCdevkit/VOC2012", "optimizer": "momentum", "momentum": 0.9, "lr_schedule": "cosine"}
_RESNET101 = {"block": "bottleneck", "stage_blocks": deeplab.RESNET101_BLOCKS, "width": 64}
_TINY_RESNET = {**TINY, "block": "basic", "stage_blocks": (1, 1, 1, 1), "width": 4, "aspp_channels": 8}


@dataclasses.dataclass
class DeeplabConfig(SegmentationConfig):
    """DeepLab config (shared fields: :class:`~tfmodels.recipes.segmentation.SegmentationConfig`).

    Args:
        conv_arch: v1's VGG blocks ``(convs, channels)``.
        fc_channels: v1's fc6 / fc7 channels (1024).
        fc6_rate: v1's fc6 dilation rate (12: the large field of view).
        block: ``basic`` or ``bottleneck`` residual blocks (v2-v3+).
        stage_blocks: blocks per ResNet stage (ResNet-101: 3, 4, 23, 3).
        width: the ResNet's first-stage channels (64).
        output_stride: input side / feature side (8 or 16; atrous convs past it).
        multi_grid: unit rates of the last stage's blocks (v3's (1, 2, 4)); ``()``: none.
        aspp_rates: the ASPP's atrous rates; ``()``: the paper's (v3: (6, 12, 18) · 16 / stride).
        aspp_channels: v3 / v3+ ASPP width (256).
        low_level_channels: v3+'s projection of the stride-4 features (48).
        decoder_channels: v3+'s decoder convs (256).
        dropout: the heads' dropout (v1 / v2 0.5 after fc6 / fc7, v3 0.1 after the ASPP).
    """

    conv_arch: tuple[tuple[int, int], ...] = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))
    fc_channels: int = 256
    fc6_rate: int = 4
    block: str = "basic"
    stage_blocks: tuple[int, ...] = (1, 1, 1, 1)
    width: int = 16
    output_stride: int = 8
    multi_grid: tuple[int, ...] = ()
    aspp_rates: tuple[int, ...] = (2, 4, 6)
    aspp_channels: int = 64
    low_level_channels: int = 16
    decoder_channels: int = 64
    dropout: float = 0.1

    SIZE_MULTIPLE: ClassVar[int] = deeplab.INPUT_MULTIPLE
    CHOICES: ClassVar[Mapping[str, tuple]] = {
        **SegmentationConfig.CHOICES, "block": tuple(deeplab.BLOCKS), "output_stride": deeplab.OUTPUT_STRIDES,
    }


def _resnet(cfg: DeeplabConfig) -> dict:
    return dict(block=cfg.block, stage_blocks=tuple(cfg.stage_blocks), width=cfg.width, output_stride=cfg.output_stride)


def _v3_head(cfg: DeeplabConfig) -> dict:
    return dict(
        multi_grid=tuple(cfg.multi_grid) or None, aspp_rates=tuple(cfg.aspp_rates) or None,
        aspp_channels=cfg.aspp_channels, dropout=cfg.dropout,
    )


@dataclasses.dataclass
class DeeplabV1Config(DeeplabConfig):
    """DeepLab v1 (LargeFOV) config: ENet class weighting on (not the paper's; module docstring)."""

    dropout: float = 0.5
    class_weighting: str = "enet"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**TINY, "conv_arch": ((1, 4), (1, 8), (1, 8), (1, 8), (1, 8)), "fc_channels": 16, "fc6_rate": 2},
        "default": {},
        "paper": {**_VOC, "conv_arch": deeplab.VGG16_ARCH, "fc_channels": 1024, "fc6_rate": 12, "image_size": 512,
                  "crop_size": 320, "batch_size": 20, "learning_rate": 1e-3, "epochs": 20},
    }


def deeplab_v1(cfg: DeeplabV1Config) -> keras.Model:
    return deeplab.build_deeplab_v1(
        len(class_names(cfg)), conv_arch=tuple(map(tuple, cfg.conv_arch)), fc_channels=cfg.fc_channels,
        fc6_rate=cfg.fc6_rate, dropout=cfg.dropout,
    )


@dataclasses.dataclass
class DeeplabV2Config(DeeplabConfig):
    """DeepLab v2 (ASPP of summed class scores) config."""

    aspp_rates: tuple[int, ...] = (1, 2, 3, 4)
    dropout: float = 0.5
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**_TINY_RESNET, "aspp_rates": (1, 2, 3, 4)},
        "default": {},
        "paper": {**_VOC, **_RESNET101, "aspp_rates": (6, 12, 18, 24), "image_size": 512, "crop_size": 320,
                  "batch_size": 10, "learning_rate": 2.5e-4, "epochs": 20},
    }


def deeplab_v2(cfg: DeeplabV2Config) -> keras.Model:
    return deeplab.build_deeplab_v2(
        len(class_names(cfg)), **_resnet(cfg), aspp_rates=tuple(cfg.aspp_rates), dropout=cfg.dropout,
    )


_V3_PAPER = {**_VOC, **_RESNET101, "output_stride": 16, "multi_grid": (1, 2, 4), "aspp_rates": (), "aspp_channels": 256,
             "image_size": 512, "crop_size": 512, "batch_size": 16, "learning_rate": 7e-3, "epochs": 20}


@dataclasses.dataclass
class DeeplabV3Config(DeeplabConfig):
    """DeepLab v3 (atrous ResNet, ASPP with image pooling and BN) config."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**_TINY_RESNET, "aspp_rates": (1, 2, 3)},
        "default": {},
        "paper": _V3_PAPER,
    }


def deeplab_v3(cfg: DeeplabV3Config) -> keras.Model:
    return deeplab.build_deeplab_v3(len(class_names(cfg)), **_resnet(cfg), **_v3_head(cfg))


@dataclasses.dataclass
class DeeplabV3PlusConfig(DeeplabConfig):
    """DeepLab v3+ (v3's encoder and a decoder with the stride-4 features) config."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**_TINY_RESNET, "aspp_rates": (1, 2, 3), "low_level_channels": 4, "decoder_channels": 8},
        "default": {},
        "paper": {**_V3_PAPER, "low_level_channels": 48, "decoder_channels": 256},
    }


def deeplab_v3_plus(cfg: DeeplabV3PlusConfig) -> keras.Model:
    return deeplab.build_deeplab_v3_plus(
        len(class_names(cfg)), **_resnet(cfg), **_v3_head(cfg), low_level_channels=cfg.low_level_channels,
        decoder_channels=cfg.decoder_channels,
    )


RECIPES = [
    segmentation_recipe(
        "deeplab_v1", "DeepLab v1 (LargeFOV): atrous VGG-16 at output stride 8, fc6 at rate 12 (notes-001 §7)",
        DeeplabV1Config, deeplab_v1,
    ),
    segmentation_recipe(
        "deeplab_v2", "DeepLab v2: atrous ResNet + ASPP, rates 6/12/18/24, summed class scores (notes-001 §7)",
        DeeplabV2Config, deeplab_v2,
    ),
    segmentation_recipe(
        "deeplab_v3", "DeepLab v3: atrous ResNet + ASPP with image pooling and BN, output stride 16/8 (notes-001 §7)",
        DeeplabV3Config, deeplab_v3,
    ),
    segmentation_recipe(
        "deeplab_v3_plus", "DeepLab v3+: v3's encoder + a decoder with stride-4 low-level features (notes-001 §7)",
        DeeplabV3PlusConfig, deeplab_v3_plus,
    ),
]
