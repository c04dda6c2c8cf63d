"""The networks of the R-CNN family's shared-feature detectors: backbone, RPN, RoI box and mask heads.

Specs: notes-002-part2.md §9 (Fast R-CNN, seed 002 L2125-2140: one CNN pass over the whole image,
proposals projected onto its feature map, RoI pooling to a fixed n×m map, flattened, fully
connected layers, then a class predictor and a box predictor) and §10 (Faster R-CNN, seed 002
L2138-2149: a region proposal network on the feature map, a 3×3 convolution, then per anchor a
binary object / background classifier and an offset regressor). The rest is paper default:

* Faster R-CNN (Ren et al., 2015, §3.1): the RPN's 3×3 conv has 512 channels on VGG-16 (ReLU),
  then two sibling 1×1 convs, ``k`` objectness scores (a sigmoid per anchor, the paper's "k
  scores" form; its 2k-softmax form is equivalent) and ``4k`` offsets, with k = 9 anchors (3
  scales × 3 aspect ratios) per location; the backbone is VGG-16's 13 convolutions (conv5_3,
  stride 16, pool5 removed).
* Fast R-CNN (Girshick, 2015, §2.1-2.2): RoI pooling to 7×7 (VGG-16's pool5 grid), fc6 and fc7
  (4096, ReLU, dropout 0.5), then ``C + 1`` class logits (column 0 is background) and ``4C``
  class-specific box offsets.

For the CPU presets :func:`build_resnet_features` cuts a narrow ResNet after its stride-8 stage:
digits of 6-36 pixels in a 128² scene are 1-5 cells of a stride-8 map, under one cell of VGG's
stride 16.

The detectors themselves (anchors, proposals, NMS, RoI sampling and the RoI op between the RPN
and the head) are the recipe layer's, :mod:`tfmodels.recipes.two_stage`: ``models/`` does not
depend on ``pipelines/``.
"""

from __future__ import annotations

from typing import Sequence

import keras

from tfmodels.models.resnet import basic_block, build_resnet
from tfmodels.models.vgg import build_vgg16

VGG16_STRIDE = 16  # conv5_3 (paper default)
RESNET_STRIDE = 8  # conv3 of a ResNet: stem /4, conv3 /2


def build_vgg16_features(image_size: int) -> keras.Model:
    """VGG-16's convolutions up to conv5_3 (stride 16, 512 channels), keras.applications' names.

    Args:
        image_size: side of the square input (raw RGB 0..255; VGG's 'caffe' preprocessing inside).

    Example:
        >>> build_vgg16_features(224).output.shape
        (None, 14, 14, 512)
    """
    vgg = build_vgg16(input_shape=(image_size, image_size, 3), include_top=False)
    return keras.Model(vgg.input, vgg.get_layer("block5_conv3").output, name="vgg16_features")


def build_resnet_features(image_size: int, width: int, stage_blocks: Sequence[int] = (2, 2)) -> keras.Model:
    """A ResNet (basic blocks) cut after its second stage: stride 8, ``2 * width`` channels.

    Args:
        image_size: side of the square input (raw RGB 0..255).
        width: the stem's and first stage's channels (ResNet-18: 64).
        stage_blocks: basic blocks of stages conv2 and conv3 (ResNet-18: 2, 2).

    Example:
        >>> build_resnet_features(128, 16).output.shape
        (None, 16, 16, 32)
    """
    if len(stage_blocks) != 2:
        raise ValueError(f"the stride-8 features end after two stages, got stage_blocks={tuple(stage_blocks)}")
    return build_resnet(basic_block, tuple(stage_blocks), input_shape=(image_size, image_size, 3),
                        include_top=False, width=width, name="resnet_features")


def build_feature_network(features: keras.Model) -> keras.Model:
    """The backbone alone, ``images -> {"features": [B, h, w, D]}``: Fast R-CNN's shared pass.

    Example:
        >>> build_feature_network(build_resnet_features(64, 8)).output["features"].shape
        (None, 8, 8, 16)
    """
    return keras.Model(features.input, {"features": features.output}, name="backbone")


def build_rpn(features: keras.Model, anchors_per_location: int, channels: int) -> keras.Model:
    """The backbone with the region proposal network on top (Faster R-CNN §3.1, paper default).

    Args:
        features: ``images -> feature map [B, h, w, D]``.
        anchors_per_location: k.
        channels: the RPN's 3×3 conv channels (512 on VGG-16).

    Returns:
        ``images -> {"features": [B, h, w, D], "objectness": [B, h·w·k] logits,
        "rpn_offsets": [B, h·w·k, 4]}``; rows are anchors, pixel-major then the k anchors of a
        pixel (the recipe's anchor order); ``objectness`` and ``rpn_offsets`` are float32.

    Example:
        >>> net = build_rpn(build_resnet_features(64, 8), 9, 16)
        >>> net.output["objectness"].shape
        (None, 576)
    """
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="rpn_conv")(features.output)
    scores = keras.layers.Conv2D(anchors_per_location, 1, name="rpn_objectness")(x)
    offsets = keras.layers.Conv2D(4 * anchors_per_location, 1, name="rpn_offsets_conv",
                                  kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(x)
    return keras.Model(
        features.input,
        {
            "features": features.output,
            "objectness": keras.layers.Reshape((-1,), dtype="float32", name="objectness")(scores),
            "rpn_offsets": keras.layers.Reshape((-1, 4), dtype="float32", name="rpn_offsets")(offsets),
        },
        name="backbone_rpn",
    )


def build_box_head(
    pool_size: int, channels: int, num_classes: int, hidden: Sequence[int] = (4096, 4096), dropout: float = 0.5
) -> keras.Model:
    """Fast R-CNN's head on pooled RoI features (Fast R-CNN §2, paper default).

    Args:
        pool_size: side of the pooled RoI grid (7).
        channels: channels D of the pooled features.
        num_classes: object classes C.
        hidden: widths of the fully connected layers (fc6, fc7: 4096, 4096).
        dropout: dropout after each of them (0.5).

    Returns:
        ``roi_features [R, p, p, D] -> {"class_logits": [R, C + 1], "box_offsets": [R, C, 4]}``,
        float32; class 0 is background, box offsets are per object class (d2l's σ 0.1 / 0.2
        encoding, Faster R-CNN's (10, 10, 5, 5) weights).

    Example:
        >>> head = build_box_head(7, 32, 10, hidden=(64,))
        >>> head.output["box_offsets"].shape
        (None, 10, 4)
    """
    rois = keras.Input((pool_size, pool_size, channels), name="roi_features")
    x = keras.layers.Flatten(name="flatten")(rois)
    for index, units in enumerate(hidden, start=6):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    logits = keras.layers.Dense(num_classes + 1, dtype="float32", name="class_logits")(x)
    offsets = keras.layers.Dense(4 * num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                                 name="box_offsets_dense")(x)
    offsets = keras.layers.Reshape((num_classes, 4), dtype="float32", name="box_offsets")(offsets)
    return keras.Model(rois, {"class_logits": logits, "box_offsets": offsets}, name="box_head")


def build_mask_head(
    pool_size: int, channels: int, num_classes: int, conv_channels: int = 256, num_convs: int = 4
) -> keras.Model:
    """Mask R-CNN's mask branch on RoI-Aligned features (He et al., 2017, Fig. 4 right, paper default).

    ``num_convs`` 3×3 convs (ReLU), a 2×2 transposed conv with stride 2 (ReLU), then a 1×1 conv to
    one mask per class: a ``2p × 2p`` mask per RoI (28 × 28 from the paper's 14 × 14 RoIs).

    Args:
        pool_size: side p of the RoI Align grid (14).
        channels: channels D of the pooled features.
        num_classes: object classes C (one sigmoid mask each; no background mask).
        conv_channels: the convs' channels (256).
        num_convs: 3×3 convs before the up-sampling (4).

    Returns:
        ``roi_features [R, p, p, D] -> mask logits [R, 2p, 2p, C]``, float32.

    Example:
        >>> build_mask_head(14, 32, 10, conv_channels=16).output.shape
        (None, 28, 28, 10)
    """
    rois = keras.Input((pool_size, pool_size, channels), name="mask_roi_features")
    x = rois
    for index in range(1, num_convs + 1):
        x = keras.layers.Conv2D(conv_channels, 3, padding="same", activation="relu", name=f"mask_conv{index}")(x)
    x = keras.layers.Conv2DTranspose(conv_channels, 2, strides=2, activation="relu", name="mask_deconv")(x)
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="mask_logits")(x)
    return keras.Model(rois, logits, name="mask_head")
