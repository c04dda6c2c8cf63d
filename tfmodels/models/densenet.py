"""DenseNet (Huang et al. 2017): every layer of a dense block sees the concatenation of all earlier ones.

Specs: notes-002-part1.md S32 (seed 002 L1955-1990: x → [x, f1(x), f2([x, f1(x)]), ...], dense
blocks + transition layers), notes-001.md §17 (seed 001 L498-499: transition = 1x1 conv to cut the
channels + stride-2 average pooling). The notes give no hyper-parameters; DenseNet-121/169 are the
paper's "DenseNet-BC" and keras.applications' DenseNet121/169 layer for layer (paper default):

ZeroPad 3 → Conv 7x7/2 (2k) → BN → ReLU → ZeroPad 1 → MaxPool 3x3/2 → dense block → transition
→ dense block → transition → dense block → transition → dense block → BN → ReLU → GAP → Dense.
A dense layer is BN → ReLU → Conv 1x1 (4k) → BN → ReLU → Conv 3x3 (k), concatenated to its input
(k = growth rate, 32); a transition is BN → ReLU → Conv 1x1 (half the channels) → AvgPool 2/2.
Convs have no bias; BN epsilon is keras.applications' 1.001e-5.
"""

from __future__ import annotations

import keras

from tfmodels.layers.preprocessing import imagenet_standardization
from tfmodels.models.keras_applications import check_weights, load_imagenet_weights

BN_EPSILON = 1.001e-5
COMPRESSION = 0.5  # DenseNet-BC: a transition halves the channels


def _bn_relu(x, name: str):
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def dense_layer(x, growth_rate: int, name: str):
    """BN → ReLU → 1x1 (4k) → BN → ReLU → 3x3 (k), concatenated to the input: C → C + k channels."""
    y = _bn_relu(x, f"{name}_0")
    y = keras.layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn_relu(y, f"{name}_1")
    y = keras.layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x, num_layers: int, growth_rate: int, name: str):
    """``num_layers`` dense layers: C → C + num_layers · growth_rate channels, H and W kept."""
    for index in range(num_layers):
        x = dense_layer(x, growth_rate, name=f"{name}_block{index + 1}")
    return x


def transition(x, name: str):
    """BN → ReLU → 1x1 conv to ``COMPRESSION`` of the channels → 2x2/2 average pooling (halves H, W)."""
    x = _bn_relu(x, name)
    x = keras.layers.Conv2D(int(x.shape[-1] * COMPRESSION), 1, use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def _depth(blocks: tuple[int, ...]) -> int:
    """Weight layers: the stem conv, 2 per dense layer, 1 per transition, the classifier."""
    return 1 + 2 * sum(blocks) + (len(blocks) - 1) + 1


_APPLICATIONS = {
    (6, 12, 24, 16): keras.applications.DenseNet121,
    (6, 12, 32, 32): keras.applications.DenseNet169,
    (6, 12, 48, 32): keras.applications.DenseNet201,
}


def build_densenet(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    blocks: tuple[int, ...] = (6, 12, 24, 16),
    growth_rate: int = 32,
) -> keras.Model:
    """Builds a DenseNet-BC; the defaults are DenseNet-121 (8,062,504 parameters).

    notes-002-part1.md S32 (seed L1955-1990) and notes-001.md §17 (seed L498-499) for dense blocks
    and transitions; depth, growth rate, bottleneck (4k) and compression (0.5) are paper default.
    The stem has 2k channels (the paper's "2k convolutions"; 64 at k = 32). Preprocessing is
    keras.applications' "torch" mode (x/255, minus the ImageNet mean, over the std) inside the model.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32 (224x224x3 for
            ImageNet weights with the top).
        include_top: logits if True, else the last feature map after the final BN-ReLU (stride 32).
        weights: None (random init) or "imagenet" (downloads keras.applications' weights; only
            for growth_rate 32 and the blocks of DenseNet-121/169/201).
        blocks: dense layers per dense block; ``(2, 2, 2, 2)`` with ``growth_rate=8`` is the tiny
            variant for 32x32 inputs.
        growth_rate: k, the channels each dense layer adds.

    Example:
        >>> build_densenet(num_classes=10, input_shape=(32, 32, 3), blocks=(2, 2, 2, 2), growth_rate=8)
    """
    check_weights(weights)
    blocks = tuple(blocks)
    if weights == "imagenet" and (growth_rate != 32 or blocks not in _APPLICATIONS):
        raise ValueError(
            f"weights='imagenet' exists only for growth_rate=32 and blocks in {sorted(_APPLICATIONS)}; "
            f"got growth_rate={growth_rate}, blocks={blocks}"
        )
    inputs = keras.Input(input_shape, name="pixels")
    # keras.applications "torch" preprocessing: x / 255, then the ImageNet RGB mean and std.
    x = keras.layers.Rescaling(1.0 / 255.0, name="preprocess")(inputs)
    x = imagenet_standardization(name="preprocess_normalize", pixel_scale=1.0)(x)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(2 * growth_rate, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = _bn_relu(x, "conv1")
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, num_layers in enumerate(blocks):
        x = dense_block(x, num_layers, growth_rate, name=f"conv{stage + 2}")
        if stage < len(blocks) - 1:
            x = transition(x, name=f"pool{stage + 2}")
    x = _bn_relu(x, "final")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    model = keras.Model(inputs, x, name=f"densenet{_depth(blocks)}")
    if weights == "imagenet":
        load_imagenet_weights(
            model, _APPLICATIONS[blocks], include_top=include_top, input_shape=tuple(input_shape), classes=num_classes
        )
    return model


def build_densenet121(
    num_classes: int = 1000, input_shape=(224, 224, 3), include_top: bool = True, weights: str | None = None
) -> keras.Model:
    """DenseNet-121: blocks (6, 12, 24, 16), k = 32; 8,062,504 parameters = keras.applications.DenseNet121.

    See :func:`build_densenet` (notes-002-part1.md S32, notes-001.md §17; paper default layout).

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32.
        include_top: logits if True, else the last feature map after the final BN-ReLU.
        weights: None or "imagenet" (keras.applications' weights).

    Example:
        >>> build_densenet121().count_params()
        8062504
    """
    return build_densenet(num_classes, input_shape, include_top, weights, blocks=(6, 12, 24, 16))


def build_densenet169(
    num_classes: int = 1000, input_shape=(224, 224, 3), include_top: bool = True, weights: str | None = None
) -> keras.Model:
    """DenseNet-169: blocks (6, 12, 32, 32), k = 32; 14,307,880 parameters = keras.applications.DenseNet169.

    See :func:`build_densenet` (notes-002-part1.md S32, notes-001.md §17; paper default layout).

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32.
        include_top: logits if True, else the last feature map after the final BN-ReLU.
        weights: None or "imagenet" (keras.applications' weights).

    Example:
        >>> build_densenet169().count_params()
        14307880
    """
    return build_densenet(num_classes, input_shape, include_top, weights, blocks=(6, 12, 32, 32))
