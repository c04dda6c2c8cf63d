"""ResNet (He et al. 2016): residual blocks ``y = ReLU(F(x) + shortcut(x))``.

Specs: notes-002-part1.md S31 (seed 002 L1804-1953: degradation, residual block, ResNet-18 layout),
notes-001.md §16 (seed 001 L492-496), notes-003-004.md B5 (depth configs, bottleneck, counts), and
notes-002-part2.md §31 (seed 002 L2880-2941: the small residual MNIST net).

Corrections of the notes (notes-002-part1.md §D): the notes' ``ResNetBasicBlock`` (L1925-1943)
strides *both* 3x3 convs, uses SELU after the first BN and has no projection shortcut, so it breaks
whenever the stride or the channel count changes. Here only the first conv is strided, the
activation is ReLU, and a 1x1 projection (+BN) replaces the identity shortcut wherever the shape
changes (the paper's option B). The MNIST net's ``nn.ReLU(conv(x))`` (L2907/L2910) builds a module
instead of applying ReLU; here ReLU is applied.

Layout (stem and stages as in the paper and keras.applications): ZeroPad 3 → Conv 7x7/2 (width)
→ BN → ReLU → ZeroPad 1 → MaxPool 3x3/2 → four stages of residual blocks at widths
``width·(1, 2, 4, 8)``, the first block of stages 3-5 halving H and W → GAP → Dense logits.
ResNet-50/101/152 (bottleneck blocks) are keras.applications' ResNet50/101/152 (v1) layer for
layer: conv biases, BN epsilon 1.001e-5, the stride on the first 1x1 conv of a bottleneck.
ResNet-18/34 (basic blocks) follow the paper with bias-free convs, as torchvision's count does.
"""

from __future__ import annotations

from typing import Callable

import keras

from tfmodels.layers.preprocessing import CaffePreprocessing  # keras.applications' "caffe" preprocess_input
from tfmodels.models.keras_applications import check_weights, load_imagenet_weights

# The notes' MNIST normalisation (notes-002-part1.md S16, seed L1036-1042).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BN_EPSILON = 1.001e-5  # keras.applications' value, so that copied weights give the same outputs

Block = Callable[..., keras.KerasTensor]


def _conv_bn(x, filters: int, kernel_size: int, strides: int, use_bias: bool, name: str, relu: bool):
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _residual_sum(shortcut, residual, name: str):
    x = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _shortcut(x, out_channels: int, strides: int, use_bias: bool, name: str):
    """Identity when the shape is kept, else a strided 1x1 projection + BN (paper option B)."""
    if strides == 1 and x.shape[-1] == out_channels:
        return x
    return _conv_bn(x, out_channels, 1, strides, use_bias, f"{name}_0", relu=False)


def basic_block(x, filters: int, strides: int = 1, use_bias: bool = False, name: str = "block"):
    """ResNet-18/34 block: 3x3/s → BN → ReLU → 3x3/1 → BN, + shortcut, → ReLU; ``filters`` out.

    Args:
        x: input feature map (B, H, W, C).
        filters: output channels of both convs.
        strides: stride of the first conv (and of the projection shortcut).
        use_bias: conv biases (redundant before BN; ResNet-18/34 have none).
        name: layer-name prefix.
    """
    shortcut = _shortcut(x, filters, strides, use_bias, name)
    y = _conv_bn(x, filters, 3, strides, use_bias, f"{name}_1", relu=True)
    y = _conv_bn(y, filters, 3, 1, use_bias, f"{name}_2", relu=False)
    return _residual_sum(shortcut, y, name)


def bottleneck_block(x, filters: int, strides: int = 1, use_bias: bool = True, name: str = "block"):
    """ResNet-50/101/152 block: 1x1/s (filters) → 3x3 (filters) → 1x1 (4·filters), BN after each.

    The stride sits on the first 1x1 conv, as in the paper's Caffe models and keras.applications
    ResNet v1 (torchvision's "v1.5" moves it to the 3x3 conv).

    Args:
        x: input feature map (B, H, W, C).
        filters: bottleneck width; the block outputs ``4 * filters`` channels.
        strides: stride of the first conv (and of the projection shortcut).
        use_bias: conv biases (keras.applications' ResNet v1 has them).
        name: layer-name prefix.
    """
    shortcut = _shortcut(x, 4 * filters, strides, use_bias, name)
    y = _conv_bn(x, filters, 1, strides, use_bias, f"{name}_1", relu=True)
    y = _conv_bn(y, filters, 3, 1, use_bias, f"{name}_2", relu=True)
    y = _conv_bn(y, 4 * filters, 1, 1, use_bias, f"{name}_3", relu=False)
    return _residual_sum(shortcut, y, name)


def build_resnet(
    block: Block,
    stage_blocks: tuple[int, ...],
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    width: int = 64,
    use_bias: bool = False,
    name: str = "resnet",
) -> keras.Model:
    """Builds a ResNet from a block type and the number of blocks per stage.

    Args:
        block: :func:`basic_block` or :func:`bottleneck_block`.
        stage_blocks: blocks in each stage (conv2_x ... conv5_x), e.g. ``(2, 2, 2, 2)``.
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32.
        include_top: logits if True, else the last feature map (stride 32, before pooling).
        width: stem and first-stage channels; stage ``i`` has ``width · 2**i`` (64 in the paper).
        use_bias: conv biases in the stem and the blocks.
        name: model name.

    Example:
        >>> build_resnet(basic_block, (1, 1, 1, 1), num_classes=10, input_shape=(32, 32, 3), width=8)
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = CaffePreprocessing(name="preprocess")(inputs)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(width, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, blocks in enumerate(stage_blocks):
        for index in range(blocks):
            # The max-pool already halved the map, so stage conv2_x keeps it (S31, L1916-1923).
            strides = 2 if index == 0 and stage > 0 else 1
            x = block(x, width * 2**stage, strides, use_bias, name=f"conv{stage + 2}_block{index + 1}")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


# name → (block, blocks per stage, conv biases, the keras.applications twin or None)
_DEPTHS = {
    "resnet18": (basic_block, (2, 2, 2, 2), False, None),
    "resnet34": (basic_block, (3, 4, 6, 3), False, None),
    "resnet50": (bottleneck_block, (3, 4, 6, 3), True, keras.applications.ResNet50),
    "resnet101": (bottleneck_block, (3, 4, 23, 3), True, keras.applications.ResNet101),
    "resnet152": (bottleneck_block, (3, 8, 36, 3), True, keras.applications.ResNet152),
}


def _build(name: str, num_classes, input_shape, include_top, weights, width) -> keras.Model:
    block, stage_blocks, use_bias, application = _DEPTHS[name]
    check_weights(weights)
    if weights == "imagenet" and application is None:
        raise ValueError(f"{name} has no ImageNet weights in keras.applications; use weights=None")
    if weights == "imagenet" and width != 64:
        raise ValueError(f"weights='imagenet' needs width=64, the published model's (got width={width})")
    model = build_resnet(block, stage_blocks, num_classes, input_shape, include_top, width, use_bias, name)
    if weights == "imagenet":
        load_imagenet_weights(
            model, application, include_top=include_top, input_shape=tuple(input_shape), classes=num_classes
        )
    return model


def build_resnet18(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    width: int = 64,
) -> keras.Model:
    """ResNet-18: basic blocks (2, 2, 2, 2), 11,689,512 trainable parameters (224², 1000 classes).

    The notes' reference architecture (notes-002-part1.md S31, seed L1916-1923; notes-001.md §16):
    7x7/2 stem + 3x3/2 max-pool, 4 stages of 2 basic blocks at 64/128/256/512 channels, GAP, FC;
    17 3x3/7x7 convs + 1 FC = 18 layers. The published count is trainable parameters (torchvision's);
    Keras' ``count_params()`` adds the BN moving means and variances. Paper default: bias-free convs,
    1x1 projection shortcuts where the shape changes (option B) and the paper's mean subtraction done
    as keras.applications' "caffe" preprocessing (RGB → BGR, minus the ImageNet channel means).
    No ImageNet weights.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32.
        include_top: logits if True, else the last feature map (stride 32, before pooling).
        weights: None (random init); keras.applications has no ResNet-18, so "imagenet" raises.
        width: base channels (64); ``width=8`` is the tiny variant for 32x32 inputs.

    Example:
        >>> build_resnet18().count_params()  # + 9,600 BN moving statistics
        11699112
    """
    return _build("resnet18", num_classes, input_shape, include_top, weights, width)


def build_resnet34(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    width: int = 64,
) -> keras.Model:
    """ResNet-34: basic blocks (3, 4, 6, 3), 21,797,672 trainable parameters (224², 1000 classes).

    notes-003-004.md B5 (depth configs); count and blocks as :func:`build_resnet18` (paper default:
    bias-free convs, option-B projection shortcuts, "caffe" preprocessing). No ImageNet weights.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32.
        include_top: logits if True, else the last feature map (stride 32, before pooling).
        weights: None (random init); keras.applications has no ResNet-34, so "imagenet" raises.
        width: base channels (64); ``width=8`` is the tiny variant for 32x32 inputs.

    Example:
        >>> build_resnet34().count_params()  # + 17,024 BN moving statistics
        21814696
    """
    return _build("resnet34", num_classes, input_shape, include_top, weights, width)


def build_resnet50(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    width: int = 64,
) -> keras.Model:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3), 25,636,712 parameters = keras.applications.ResNet50.

    notes-003-004.md B5 (bottleneck 1x1 → 3x3 → 1x1·4, configs, the Keras count), notes-002-part1.md
    S31. Weight-compatible with ``keras.applications.ResNet50`` and with its "caffe" preprocessing
    built in.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32 (224x224x3 for
            ImageNet weights with the top).
        include_top: logits if True, else the last feature map (stride 32, before pooling).
        weights: None (random init) or "imagenet" (downloads keras.applications' weights; the top
            needs ``num_classes=1000``).
        width: base channels (64); other widths have no ImageNet weights.

    Example:
        >>> build_resnet50().count_params()
        25636712
    """
    return _build("resnet50", num_classes, input_shape, include_top, weights, width)


def build_resnet101(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    width: int = 64,
) -> keras.Model:
    """ResNet-101: bottleneck blocks (3, 4, 23, 3), 44,707,176 parameters = keras.applications.ResNet101.

    notes-003-004.md B5; blocks and preprocessing as :func:`build_resnet50`.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32 (224x224x3 for
            ImageNet weights with the top).
        include_top: logits if True, else the last feature map (stride 32, before pooling).
        weights: None (random init) or "imagenet" (downloads keras.applications' weights).
        width: base channels (64); other widths have no ImageNet weights.

    Example:
        >>> build_resnet101().count_params()
        44707176
    """
    return _build("resnet101", num_classes, input_shape, include_top, weights, width)


def build_resnet152(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    width: int = 64,
) -> keras.Model:
    """ResNet-152: bottleneck blocks (3, 8, 36, 3), 60,419,944 parameters = keras.applications.ResNet152.

    The deepest net the notes name (notes-002-part1.md S31, L1923; notes-003-004.md B5: top-5 error
    4.49 % single model on ImageNet). Blocks and preprocessing as :func:`build_resnet50`.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels in 0..255, channels-last; at least 32x32 (224x224x3 for
            ImageNet weights with the top).
        include_top: logits if True, else the last feature map (stride 32, before pooling).
        weights: None (random init) or "imagenet" (downloads keras.applications' weights).
        width: base channels (64); other widths have no ImageNet weights.

    Example:
        >>> build_resnet152().count_params()
        60419944
    """
    return _build("resnet152", num_classes, input_shape, include_top, weights, width)


def mnist_residual_block(x, name: str):
    """The notes' ``ResidualBlock(channels)``: ReLU(x + conv(ReLU(conv(x)))), 3x3 same convs with bias."""
    channels = x.shape[-1]
    y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(y)
    return _residual_sum(x, y, name)


def build_resnet_mnist(
    num_classes: int = 10, input_shape=(28, 28, 1), include_top: bool = True, weights: str | None = None
) -> keras.Model:
    """The notes' small residual CNN for MNIST: 41,514 parameters; the notes report 99 % test accuracy.

    notes-002-part2.md §31 (seed 002 L2880-2941; d2l-style): conv 5x5 (1→16) → ReLU → max-pool 2 →
    ResidualBlock(16) → conv 5x5 (16→32) → ReLU → max-pool 2 → ResidualBlock(32) → flatten (512)
    → Dense logits; 28 → 24 → 12 → 8 → 4. The first layer normalises raw 0..255 pixels with the
    notes' MNIST mean 0.1307 and std 0.3081 (S16). The flatten is channels-last (H, W, C) where
    PyTorch's ``view`` flattens (C, H, W): same count, no weights to port.

    Args:
        num_classes: number of logits.
        input_shape: raw grayscale pixels in 0..255, (28, 28, 1) in the notes.
        include_top: logits if True, else the last feature map (4, 4, 32) before flattening.
        weights: None only (the notes publish no weights).

    Example:
        >>> build_resnet_mnist().count_params()
        41514
    """
    if weights is not None:
        raise ValueError(f"resnet_mnist has no published weights; use weights=None (got {weights!r})")
    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Rescaling(1.0 / (255.0 * MNIST_STD), offset=-MNIST_MEAN / MNIST_STD, name="preprocess")(inputs)
    for stage, filters in enumerate((16, 32)):
        x = keras.layers.Conv2D(filters, 5, activation="relu", name=f"conv{stage + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
        x = mnist_residual_block(x, name=f"rblock{stage + 1}")
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, x, name="resnet_mnist")
