"""VGG-11/13/16/19 (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks").

Spec: notes-002-part1.md S21 (seed 002 L1490-1547), notes-003-004.md B2 (S3:L118-126) and
notes-001.md §12 (seed 001 L474-475). The notes describe VGG as blocks of 3×3 convolutions
(stride 1, padding 1, ReLU) each closed by a 2×2/2 max-pool — five pools in all — followed by
FC-4096, FC-4096 and the classifier (seed 002 L1507-1519). As in d2l (notes-001 §12) a network
is a ``conv_arch`` of ``(num_convs, channels)`` blocks:

    VGG-11 (A): (1,64) (1,128) (2,256) (2,512) (2,512)     8 conv + 3 FC
    VGG-13 (B): (2,64) (2,128) (2,256) (2,512) (2,512)    10 conv + 3 FC
    VGG-16 (D): (2,64) (2,128) (3,256) (3,512) (3,512)    13 conv + 3 FC
    VGG-19 (E): (2,64) (2,128) (4,256) (4,512) (4,512)    16 conv + 3 FC

At 224×224×3 and 1000 classes: VGG-11 132,863,336, VGG-13 133,047,848, VGG-16 138,357,544 and
VGG-19 143,667,240 parameters (VGG-16/19 equal keras.applications).

Corrections of the notes (notes-002-part1 §D): the input is 224×224, not "224x244" (seed 002
L1517); VGG uses no LRN (S3:L124).

Input: raw RGB pixels in 0..255. The first layer ("preprocess") is keras.applications' 'caffe'
``preprocess_input`` — RGB→BGR and subtraction of the ImageNet BGR mean — which is the paper's
"subtract the mean RGB value computed on the training set". The weight-bearing layers are built
in keras.applications' order and names, so VGG-16/19 load its ImageNet weights.
"""

from __future__ import annotations

import keras

from tfmodels.layers.preprocessing import CaffePreprocessing
from tfmodels.models.alexnet import fully_connected_classifier
from tfmodels.models.keras_applications import check_weights, load_imagenet_weights

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG13_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512))
VGG16_ARCH = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG19_ARCH = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
IMAGENET_APPLICATIONS = {16: keras.applications.VGG16, 19: keras.applications.VGG19}


def vgg_block(x, num_convs: int, channels: int, name: str):
    """``num_convs`` × (3×3 conv, stride 1, 'same', ReLU), then a 2×2/2 max-pool (d2l's vgg_block)."""
    for i in range(1, num_convs + 1):
        x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    return keras.layers.MaxPooling2D(2, strides=2, name=f"{name}_pool")(x)


def build_vgg(
    conv_arch,
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    width_divisor: int = 1,
    fc_units: int = 4096,
    dropout: float = 0.5,
    name: str = "vgg",
) -> keras.Model:
    """Builds a VGG network from a ``conv_arch`` of ``(num_convs, channels)`` blocks.

    This is the d2l construction the notes follow (notes-001 §12, seed 001 L474); the named
    builders :func:`build_vgg11` … :func:`build_vgg19` pass the paper's four configurations.
    Dropout 0.5 after FC-1 and FC-2 is the paper's (keras.applications omits it; it has no
    weights, so inference is unchanged).

    Args:
        conv_arch: ``(num_convs, channels)`` per block; every block ends with a 2×2/2 max-pool.
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last; each side at least
            ``2 ** len(conv_arch)`` (32 for the paper's five blocks).
        include_top: with ``False`` the model returns the last block's pooled feature map
            (``H/32 × W/32 × 512/width_divisor`` for five blocks), and ``input_shape`` may have
            ``None`` sides.
        width_divisor: divides every conv's channels (``16`` with ``fc_units=64`` is a tiny VGG
            that trains in seconds on 32×32 images).
        fc_units: width of the two hidden FC layers (4096 in the paper).
        dropout: dropout rate after each hidden FC layer.
        name: the model's name.

    Example:
        >>> tiny = build_vgg(((1, 16), (1, 32), (2, 64)), num_classes=10, input_shape=(32, 32, 3), fc_units=64)
        >>> tiny.output.shape
        (None, 10)
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = CaffePreprocessing(name="preprocess")(inputs)
    for block, (num_convs, channels) in enumerate(conv_arch, start=1):
        x = vgg_block(x, num_convs, channels // width_divisor, name=f"block{block}")
    if include_top:  # keras.applications' names, so the weights also load by name
        x = fully_connected_classifier(x, num_classes, fc_units, dropout, names=("fc1", "fc2", "predictions"))
    return keras.Model(inputs, x, name=name)


def _build_named_vgg(depth, conv_arch, num_classes, input_shape, include_top, weights, architecture_kwargs):
    check_weights(weights)
    if weights == "imagenet":  # refuse before building: a full VGG takes seconds to initialise
        _check_imagenet_weights(depth, num_classes, input_shape, include_top, architecture_kwargs)
    model = build_vgg(conv_arch, num_classes, input_shape, include_top, name=f"vgg{depth}", **architecture_kwargs)
    if weights == "imagenet":
        load_imagenet_weights(
            model, IMAGENET_APPLICATIONS[depth], include_top=include_top, input_shape=tuple(input_shape)
        )
    return model


def _check_imagenet_weights(depth, num_classes, input_shape, include_top, architecture_kwargs):
    if depth not in IMAGENET_APPLICATIONS:
        raise ValueError(f"keras.applications has no ImageNet weights for VGG-{depth}; use VGG-16 or VGG-19")
    if architecture_kwargs.get("width_divisor", 1) != 1 or architecture_kwargs.get("fc_units", 4096) != 4096:
        raise ValueError(f"ImageNet weights need the full-width VGG-{depth}, got {architecture_kwargs}")
    if include_top and (num_classes != 1000 or tuple(input_shape) != (224, 224, 3)):
        raise ValueError(
            "ImageNet weights with include_top=True need num_classes=1000 and input_shape=(224, 224, 3), "
            f"got {num_classes} and {tuple(input_shape)}; use include_top=False for other shapes"
        )


def build_vgg11(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    **architecture_kwargs,
) -> keras.Model:
    """Builds VGG-11 (configuration A: 8 conv + 3 FC), the network of notes-001 §12 (d2l).

    132,863,336 parameters at 224×224×3 and 1000 classes. keras.applications has no VGG-11, so
    ``weights`` can only be ``None``.

    Args:
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last, sides ≥ 32.
        include_top: ``False`` returns the pooled feature map of block 5.
        weights: ``None`` (random initialisation).
        **architecture_kwargs: ``width_divisor``, ``fc_units``, ``dropout`` of :func:`build_vgg`.

    Example:
        >>> build_vgg11(num_classes=10, input_shape=(32, 32, 3), width_divisor=16, fc_units=64).count_params()
        43202
    """
    return _build_named_vgg(11, VGG11_ARCH, num_classes, input_shape, include_top, weights, architecture_kwargs)


def build_vgg13(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    **architecture_kwargs,
) -> keras.Model:
    """Builds VGG-13 (configuration B: 10 conv + 3 FC).

    133,047,848 parameters at 224×224×3 and 1000 classes. keras.applications has no VGG-13, so
    ``weights`` can only be ``None``.

    Args:
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last, sides ≥ 32.
        include_top: ``False`` returns the pooled feature map of block 5.
        weights: ``None`` (random initialisation).
        **architecture_kwargs: ``width_divisor``, ``fc_units``, ``dropout`` of :func:`build_vgg`.

    Example:
        >>> build_vgg13(include_top=False, input_shape=(None, None, 3)).output.shape
        (None, None, None, 512)
    """
    return _build_named_vgg(13, VGG13_ARCH, num_classes, input_shape, include_top, weights, architecture_kwargs)


def build_vgg16(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    **architecture_kwargs,
) -> keras.Model:
    """Builds VGG-16 (configuration D: 13 conv + 3 FC), the network the notes fine-tune (S21-S23).

    138,357,544 parameters at 224×224×3 and 1000 classes, as keras.applications.VGG16, whose
    weights it loads: ``ours(raw) == VGG16(preprocess_input(raw))``.

    Args:
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last, sides ≥ 32.
        include_top: ``False`` returns the pooled feature map of block 5 (the notes' frozen base).
        weights: ``None`` or ``"imagenet"`` (downloads keras.applications.VGG16's weights; with
            ``include_top`` it needs 1000 classes at 224×224×3).
        **architecture_kwargs: ``width_divisor``, ``fc_units``, ``dropout`` of :func:`build_vgg`.

    Example:
        >>> build_vgg16(num_classes=4, input_shape=(64, 64, 3)).output.shape
        (None, 4)
    """
    return _build_named_vgg(16, VGG16_ARCH, num_classes, input_shape, include_top, weights, architecture_kwargs)


def build_vgg19(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    **architecture_kwargs,
) -> keras.Model:
    """Builds VGG-19 (configuration E: 16 conv + 3 FC).

    143,667,240 parameters at 224×224×3 and 1000 classes, as keras.applications.VGG19, whose
    weights it loads.

    Args:
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last, sides ≥ 32.
        include_top: ``False`` returns the pooled feature map of block 5.
        weights: ``None`` or ``"imagenet"`` (downloads keras.applications.VGG19's weights; with
            ``include_top`` it needs 1000 classes at 224×224×3).
        **architecture_kwargs: ``width_divisor``, ``fc_units``, ``dropout`` of :func:`build_vgg`.

    Example:
        >>> build_vgg19(num_classes=4, input_shape=(64, 64, 3)).output.shape
        (None, 4)
    """
    return _build_named_vgg(19, VGG19_ARCH, num_classes, input_shape, include_top, weights, architecture_kwargs)
