"""MobileNet v1 (Howard et al. 2017): depthwise-separable convolutions and a width multiplier.

Spec: notes-003-004.md A7 (S4:L31-35). A depthwise-separable convolution is a depthwise conv —
one K×K filter per input channel, kernel ``[K, K, C, 1]`` — followed by a pointwise 1×1 conv,
kernel ``[1, 1, C, D]``, which mixes the channels; it costs ``K²·C + C·D`` weights instead of
``K²·C·D`` (S4:L33-35). Correction of the notes (A7 §3): the pointwise conv is linear, the
non-linearity is the activation after it. MobileNet (paper default, as keras.applications):

    conv 3×3/2, 32 → 13 × [depthwise 3×3 → BN → ReLU6 → pointwise 1×1 → BN → ReLU6]
    with pointwise widths 64, 128/2, 128, 256/2, 256, 512/2, 512 ×5, 1024/2, 1024 (/2: stride 2)
    → global average pooling → dropout → 1×1 conv to the classes (= FC on the pooled vector)

Every width is ``int(width * alpha)``. At 224×224×3, 1000 classes and ``alpha=1``: 4,253,864
parameters (21,888 of them BatchNorm moving statistics), as keras.applications.MobileNet.

Input: raw RGB pixels in 0..255; the first layer ("preprocess") is keras.applications' 'tf'
``preprocess_input``, x / 127.5 − 1. The weight-bearing layers are built in keras.applications'
order and names, so ImageNet weights load.
"""

from __future__ import annotations

import keras

from tfmodels.layers.preprocessing import tf_preprocessing
from tfmodels.models.keras_applications import check_weights, load_imagenet_weights

# (pointwise width, stride) of the 13 depthwise-separable blocks (paper Table 1).
SEPARABLE_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip
IMAGENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
IMAGENET_SIDES = (128, 160, 192, 224)


def depthwise_separable_block(x, filters: int, strides: int, block_id: int):
    """Depthwise 3×3 → BN → ReLU6 → pointwise 1×1 → BN → ReLU6 (keras.applications' layout).

    A stride-2 block pads one row and column at the bottom/right and convolves 'valid', which is
    TensorFlow's 'same' for even sizes, written out as the reference does.
    """
    if strides == 2:
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = keras.layers.DepthwiseConv2D(
        3, strides, padding="same" if strides == 1 else "valid", use_bias=False, name=f"conv_dw_{block_id}"
    )(x)
    x = keras.layers.BatchNormalization(name=f"conv_dw_{block_id}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"conv_pw_{block_id}")(x)
    x = keras.layers.BatchNormalization(name=f"conv_pw_{block_id}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def build_mobilenet(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    alpha: float = 1.0,
    dropout: float = 1e-3,
) -> keras.Model:
    """Builds MobileNet v1 with width multiplier ``alpha``.

    Follows notes-003-004 A7 (S4:L31-35) for the depthwise-separable block; the network, ReLU6,
    BatchNorm and the dropout rate 1e-3 are paper default / keras.applications. 4,253,864
    parameters at 224×224×3, 1000 classes, ``alpha=1``.

    Args:
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last, sides ≥ 32 (five stride-2 steps).
        include_top: with ``False`` the model returns the last block's feature map
            (``H/32 × W/32 × int(1024·alpha)``).
        weights: ``None`` or ``"imagenet"`` (downloads keras.applications.MobileNet's weights;
            needs ``alpha`` in 0.25/0.5/0.75/1, a square 128/160/192/224 input and, with the top,
            1000 classes).
        alpha: width multiplier; ``0.25`` is the tiny variant (trains in seconds on 32×32).
        dropout: dropout rate before the classifier.

    Example:
        >>> build_mobilenet().count_params()
        4253864
        >>> build_mobilenet(10, (32, 32, 3), alpha=0.25).output.shape
        (None, 10)
    """
    check_weights(weights)
    if weights == "imagenet":  # refuse before building, not after a download
        _check_imagenet_weights(num_classes, input_shape, include_top, alpha)
    inputs = keras.Input(input_shape, name="pixels")
    x = tf_preprocessing()(inputs)
    x = keras.layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, strides) in enumerate(SEPARABLE_BLOCKS, start=1):
        x = depthwise_separable_block(x, int(filters * alpha), strides, block_id)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_average_pool")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Conv2D(num_classes, 1, name="conv_preds")(x)
        x = keras.layers.Reshape((num_classes,), name="logits")(x)
    model = keras.Model(inputs, x, name=f"mobilenet_{alpha:0.2f}")
    if weights == "imagenet":
        load_imagenet_weights(
            model, keras.applications.MobileNet, input_shape=tuple(input_shape), alpha=alpha, include_top=include_top
        )
    return model


def _check_imagenet_weights(num_classes, input_shape, include_top, alpha):
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(f"ImageNet weights exist for alpha in {IMAGENET_ALPHAS}, got {alpha}")
    height, width = input_shape[:2]
    if height != width or height not in IMAGENET_SIDES:
        raise ValueError(f"ImageNet weights need a square input of side {IMAGENET_SIDES}, got {tuple(input_shape)}")
    if include_top and num_classes != 1000:
        raise ValueError(f"ImageNet weights with include_top=True need num_classes=1000, got {num_classes}")
