"""CenterNet ("Objects as Points", Zhou, Wang & Krähenbühl 2019): an anchor-free detector.

Spec: notes-002-part2.md §15 (seed 002 L2194-2198): no anchors; a fully convolutional network
predicts, for every pixel, whether it is the centre of a ground-truth box, so boxes become
per-pixel labels as in segmentation. Everything else is paper default ([REF] in the spec):

* output stride R = 4: a stride-32 backbone followed by three up-convolutions (x2 each);
* three heads on the stride-4 map, each a 3x3 conv (``head_channels``, ReLU) then a 1x1 conv:
  the **class heatmap** (C channels; a sigmoid gives the centre probability per class; the
  last bias starts at -2.19 = -log((1 - 0.1) / 0.1), the paper's prior of 0.1, so the focal
  loss does not start on a flood of confident negatives), the **size** (2 channels: box width
  and height in output pixels) and the **offset** (2 channels: the centre's sub-pixel position
  lost by the stride).

The ``paper`` network is the paper's ResNet-18 variant: ResNet-18 (without pooling and FC), then
three stages of [3x3 deformable conv -> BN -> ReLU -> 4x4 transposed conv (stride 2) -> BN -> ReLU]
at 256, 128 and 64 channels, heads of 64 channels. The paper's deformable conv is DCNv2 (with a
modulation mask); the zoo's :class:`~tfmodels.layers.DeformableConv2D` is DCNv1, so its offset
conv has 18 instead of 27 output channels per layer. The reference code initialises the
transposed convs bilinearly; here they keep Keras' default initialiser. The paper publishes no
parameter count; the test checks the closed form of this layout.

For small CPU presets, ``skips=True`` adds the backbone's stride-16/8/4 maps on the way up
(1x1 projections, summed), the aggregation the paper's DLA-34 variant has and its ResNet variant
lacks: a small network trained briefly cannot place a peak to one output pixel from the
stride-32 map alone.

The heatmap head returns **logits** (float32): the focal loss takes ``log_sigmoid`` of them,
which stays finite where a sigmoid would saturate, and decoding applies the sigmoid.
"""

from __future__ import annotations

from typing import Sequence

import keras

from tfmodels.layers import DeformableConv2D
from tfmodels.models.resnet import BN_EPSILON, basic_block, build_resnet

OUTPUT_STRIDE = 4  # paper default R
HEATMAP_PRIOR_BIAS = -2.19  # paper default: -log((1 - pi) / pi) with pi = 0.1
BACKBONE_STRIDE = 32


def _up_stage(x, filters: int, deformable: bool, name: str):
    """[3x3 (deformable) conv -> BN -> ReLU] -> 4x4 transposed conv /2 -> BN -> ReLU."""
    conv = DeformableConv2D if deformable else keras.layers.Conv2D
    x = conv(filters, 3, padding="same", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_conv_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_conv_relu")(x)
    x = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=f"{name}_up")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_up_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_up_relu")(x)


def _lateral(x, skip, name: str):
    """Adds a 1x1 projection of the backbone's feature map at the same stride (a skip connection)."""
    projected = keras.layers.Conv2D(x.shape[-1], 1, name=f"{name}_skip")(skip)
    return keras.layers.Add(name=f"{name}_fuse")([x, projected])


def _head(x, channels: int, outputs: int, name: str, bias: float = 0.0):
    """3x3 conv (ReLU) -> 1x1 conv to ``outputs`` channels, float32 (losses stay float32)."""
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    return keras.layers.Conv2D(
        outputs, 1, bias_initializer=keras.initializers.Constant(bias), dtype="float32", name=name
    )(x)


def build_centernet(
    num_classes: int = 80,
    input_shape=(512, 512, 3),
    stage_blocks: Sequence[int] = (2, 2, 2, 2),
    width: int = 64,
    upsample_filters: Sequence[int] = (256, 128, 64),
    deformable: bool = True,
    head_channels: int = 64,
    skips: bool = False,
    name: str = "centernet",
) -> keras.Model:
    """Builds CenterNet: a ResNet backbone, up-convolutions to stride 4 and three heads.

    The defaults are the paper's ResNet-18 variant at 512x512 with COCO's 80 classes (module
    docstring); smaller ``width``, ``stage_blocks`` and ``upsample_filters`` give the CPU presets.

    Args:
        num_classes: heatmap channels C.
        input_shape: raw RGB pixels in 0..255, ``(H, W, 3)`` with H and W multiples of 32.
        stage_blocks: basic blocks per ResNet stage ((2, 2, 2, 2): ResNet-18).
        width: the ResNet's first-stage channels (64 in the paper).
        upsample_filters: channels of the three up-convolution stages.
        deformable: deformable 3x3 convs before each up-convolution (paper), else plain ones.
        head_channels: channels of each head's 3x3 conv.
        skips: add the backbone's stride-16, 8 and 4 feature maps (1x1 projections) after the
            up-convolutions that reach those strides, as the paper's DLA-34 variant's up-path does;
            the ResNet variant (``False``) rebuilds the stride-4 map from stride 32 alone.
        name: model name.

    Returns:
        A functional model ``pixels [B, H, W, 3] -> {"heatmap_logits": [B, H/4, W/4, C],
        "size": [B, H/4, W/4, 2], "offset": [B, H/4, W/4, 2]}``, float32 outputs.

    Example:
        >>> net = build_centernet(3, (64, 64, 3), (1, 1, 1, 1), 8, (16, 16, 16), False, 16)
        >>> {k: tuple(v.shape) for k, v in net.output.items()}["heatmap_logits"]
        (None, 16, 16, 3)
    """
    height, width_px = input_shape[:2]
    if height % BACKBONE_STRIDE or width_px % BACKBONE_STRIDE:
        raise ValueError(f"CenterNet needs an input size that is a multiple of {BACKBONE_STRIDE}, got {input_shape[:2]}")
    if len(upsample_filters) != 3:
        raise ValueError("three up-convolution stages take the stride-32 features to stride 4")
    backbone = build_resnet(basic_block, tuple(stage_blocks), input_shape=input_shape, include_top=False, width=width)
    x = backbone.output
    for index, filters in enumerate(upsample_filters):
        x = _up_stage(x, filters, deformable, name=f"up{index + 1}")
        if skips:  # stages conv4, conv3, conv2 end at strides 16, 8, 4
            stage = 4 - index
            x = _lateral(x, backbone.get_layer(f"conv{stage}_block{stage_blocks[stage - 2]}_out").output, f"up{index + 1}")
    outputs = {
        "heatmap_logits": _head(x, head_channels, num_classes, "heatmap_logits", HEATMAP_PRIOR_BIAS),
        "size": _head(x, head_channels, 2, "size"),
        "offset": _head(x, head_channels, 2, "offset"),
    }
    return keras.Model(backbone.input, outputs, name=name)
