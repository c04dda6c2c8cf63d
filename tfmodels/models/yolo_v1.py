"""YOLO v1 (Redmon et al. 2016, "You Only Look Once: Unified, Real-Time Object Detection").

Spec: notes-003-004.md D2 (seed S4:L114-117), notes-002-part2.md §14 (seed 002 L2187-2192) and
notes-001.md §23 (seed 001 L577-593). The image is divided into an S×S grid; every cell predicts B
boxes of 5 numbers (x, y, w, h, confidence) and C class probabilities, so the last fully connected
layer has S·S·(B·5 + C) outputs (S4:L117), reshaped here to ``[S, S, B·5 + C]``.

Per cell the channels are ``[x, y, √w, √h, confidence] × B`` followed by the C class
probabilities: x, y are the box centre relative to the cell, w, h relative to the image (S4:L116).
The network predicts √w and √h, as Darknet's detection layer does with ``sqrt=1``, so the paper's
loss on √w, √h is a plain squared error and a box's width is the square of its output.

The ``paper`` network is the paper's Figure 3 (paper default): 448×448 input, 24 convolutions
with 1×1 reductions, 4 max-pools and a stride-2 convolution down to 7×7×1024, FC-4096, dropout 0.5,
FC-S·S·(B·5+C); Leaky ReLU α = 0.1 everywhere but the linear last layer; no batch normalisation.
With S=7, B=2, C=20 (VOC) it outputs 7×7×30 = 1,470 numbers and has 271,703,550 parameters.

The ``tiny`` (5 convolutions) and ``default`` (8) backbones are the same kind of network, narrower
and shallower, for the 128×128 digit scenes on a CPU. They add batch normalisation after every
convolution (YOLOv2's change, not YOLOv1's), since they train from scratch with no ImageNet
pre-training; their head is YOLOv1's two FC layers.

Input: raw RGB pixels in 0..255, scaled to 0..1 by the first layer.
"""

from __future__ import annotations

from typing import Sequence, Union

import keras

LEAKY_ALPHA = 0.1  # paper: "leaky rectified linear activation" with slope 0.1
Layer = Union[str, tuple[int, int, int]]  # "M" (2×2/2 max-pool) or (kernel, filters, stride)

_REDUCE_512 = ((1, 256, 1), (3, 512, 1))
_REDUCE_1024 = ((1, 512, 1), (3, 1024, 1))
# Paper Figure 3, block by block (7×7/2 conv and 4 max-pools: 448 -> 14; a stride-2 conv: -> 7).
PAPER_ARCH: tuple[Layer, ...] = (
    (7, 64, 2), "M",
    (3, 192, 1), "M",
    (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1), "M",
    *_REDUCE_512 * 4, (1, 512, 1), (3, 1024, 1), "M",
    *_REDUCE_1024 * 2, (3, 1024, 1), (3, 1024, 2),
    (3, 1024, 1), (3, 1024, 1),
)  # fmt: skip
# 128×128 digit scenes -> 8×8 with the paper's opening (a stride-2 convolution, then a max-pool)
# and its 1×1/3×3 pattern, narrow enough for 2 CPU cores (default: ~20M multiply-adds per image).
# The default ends in a 1×1 reduction, so its first FC layer sees 8·8·32 = 2,048 numbers.
TINY_ARCH: tuple[Layer, ...] = ((3, 8, 1), "M", (3, 16, 1), "M", (3, 32, 1), "M", (1, 16, 1), (3, 32, 1), "M")
DEFAULT_ARCH: tuple[Layer, ...] = (
    (3, 16, 2), "M",
    (3, 32, 1), "M",
    (1, 16, 1), (3, 64, 1), (1, 32, 1), (3, 64, 1), "M",
    (3, 128, 1), (1, 32, 1),
)  # fmt: skip
BACKBONES = {"paper": PAPER_ARCH, "default": DEFAULT_ARCH, "tiny": TINY_ARCH}


def output_channels(boxes_per_cell: int, num_classes: int) -> int:
    """Channels per grid cell, ``B·5 + C`` (S4:L117): 30 for YOLOv1 on VOC (B=2, C=20)."""
    return boxes_per_cell * 5 + num_classes


def conv_backbone(x, arch: Sequence[Layer], batch_norm: bool, name: str = "backbone"):
    """The convolution stack of ``arch``: each conv is 'same'-padded and followed by Leaky ReLU 0.1."""
    for i, layer in enumerate(arch, start=1):
        if layer == "M":
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"{name}_pool{i}")(x)
            continue
        kernel, filters, stride = layer
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_ALPHA, name=f"{name}_leaky{i}")(x)
    return x


def build_yolo_v1(
    num_classes: int = 20,
    grid_size: int = 7,
    boxes_per_cell: int = 2,
    input_shape=(448, 448, 3),
    backbone: str = "paper",
    fc_units: int = 4096,
    dropout: float = 0.5,
    batch_norm: bool | None = None,
    name: str = "yolo_v1",
) -> keras.Model:
    """Builds YOLOv1: a convolution backbone, FC-``fc_units``, dropout, FC to the S×S×(B·5+C) grid.

    Args:
        num_classes: C, the class probabilities per cell (20 for VOC).
        grid_size: S, the grid is S×S (7 in the paper).
        boxes_per_cell: B, boxes predicted per cell (2 in the paper).
        input_shape: one raw RGB image (0..255), channels-last.
        backbone: ``paper`` (24 convolutions, Figure 3), ``default`` or ``tiny`` (module docstring).
        fc_units: width of the first FC layer (4096 in the paper).
        dropout: dropout rate after the first FC layer (0.5 in the paper).
        batch_norm: batch normalisation after each convolution; ``None``: off for ``paper``
            (YOLOv1 has none), on for the small backbones.
        name: the model's name.

    Returns:
        A functional model ``pixels [N, H, W, 3] -> grid [N, S, S, B·5 + C]`` (float32, linear).

    Example:
        >>> model = build_yolo_v1(num_classes=3, grid_size=4, input_shape=(64, 64, 3), backbone="tiny", fc_units=32)
        >>> model.output_shape
        (None, 4, 4, 13)
    """
    if batch_norm is None:
        batch_norm = backbone != "paper"
    channels = output_channels(boxes_per_cell, num_classes)
    pixels = keras.Input(input_shape, name="pixels")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(pixels)
    x = conv_backbone(x, BACKBONES[backbone], batch_norm)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, name="fc1")(x)
    x = keras.layers.LeakyReLU(negative_slope=LEAKY_ALPHA, name="fc1_leaky")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    # Linear last layer (paper); float32 so the loss sees float32 under mixed precision.
    x = keras.layers.Dense(grid_size * grid_size * channels, dtype="float32", name="fc2")(x)
    grid = keras.layers.Reshape((grid_size, grid_size, channels), dtype="float32", name="grid")(x)
    return keras.Model(pixels, grid, name=name)
