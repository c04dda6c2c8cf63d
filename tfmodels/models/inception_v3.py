"""Inception v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision").

Spec: notes-003-004.md B4 (seed S3:L146-165): Inception modules with factorised convolutions,
Inception-A (a large kernel as small ones: 5x5 -> two 3x3), Inception-B (a 1xn then an nx1
convolution in series), Inception-C (1x3 and 3x1 in parallel, for the coarsest grid), and grid
reduction modules whose branches end in a stride-2 layer instead of a pooling before the module.
The kernel shapes of B and C, lost from the notes as "[插图]", the widths, the stem and the head
are the paper's and the keras.applications model's (paper default).

The layers are the ones of ``keras.applications.InceptionV3`` (the TF-slim layout), built in the
same order, so its weights copy over (:func:`tfmodels.models.keras_applications.copy_weights`):
every convolution is conv (no bias) -> batch norm (no scale) -> ReLU, and the network stops at
global average pooling -> dense; it has no auxiliary classifier. Like TF-slim, its A modules keep a
5x5 path beside the double 3x3 one (the paper's Figure 5 has only 3x3s). 23,851,784 parameters at
299x299x3 with 1000 classes.
"""

from __future__ import annotations

import keras

from tfmodels.layers.preprocessing import tf_preprocessing
from tfmodels.models.keras_applications import check_weights, load_imagenet_weights

MIN_SIZE_WITH_STEM = 75


def conv2d_bn(x, filters: int, kernel: tuple[int, int], name: str, strides: int = 1, padding: str = "same"):
    """Convolution without bias, batch norm without scale (the next convolution absorbs it), ReLU."""
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(scale=False, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=name)(x)


def _divided_by(width_divisor: int):
    return lambda channels: max(1, channels // width_divisor)


def _avg_pool_3x3(x, name: str):
    return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)


def inception_a(x, pool_proj: int, name: str, width_divisor: int = 1):
    """35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1 (pool_proj)."""
    width = _divided_by(width_divisor)
    branch1x1 = conv2d_bn(x, width(64), (1, 1), f"{name}_1x1")
    branch5x5 = conv2d_bn(x, width(48), (1, 1), f"{name}_5x5_reduce")
    branch5x5 = conv2d_bn(branch5x5, width(64), (5, 5), f"{name}_5x5")
    branch3x3dbl = conv2d_bn(x, width(64), (1, 1), f"{name}_3x3dbl_reduce")
    branch3x3dbl = conv2d_bn(branch3x3dbl, width(96), (3, 3), f"{name}_3x3dbl_1")
    branch3x3dbl = conv2d_bn(branch3x3dbl, width(96), (3, 3), f"{name}_3x3dbl_2")
    branch_pool = conv2d_bn(_avg_pool_3x3(x, f"{name}_pool"), width(pool_proj), (1, 1), f"{name}_pool_proj")
    return keras.layers.Concatenate(name=name)([branch1x1, branch5x5, branch3x3dbl, branch_pool])


def reduction_a(x, name: str, width_divisor: int = 1):
    """35x35 -> 17x17: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool 3x3/2 (the input's channels)."""
    width = _divided_by(width_divisor)
    branch3x3 = conv2d_bn(x, width(384), (3, 3), f"{name}_3x3", strides=2, padding="valid")
    branch3x3dbl = conv2d_bn(x, width(64), (1, 1), f"{name}_3x3dbl_reduce")
    branch3x3dbl = conv2d_bn(branch3x3dbl, width(96), (3, 3), f"{name}_3x3dbl_1")
    branch3x3dbl = conv2d_bn(branch3x3dbl, width(96), (3, 3), f"{name}_3x3dbl_2", strides=2, padding="valid")
    branch_pool = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return keras.layers.Concatenate(name=name)([branch3x3, branch3x3dbl, branch_pool])


def inception_b(x, channels_7x7: int, n: int, name: str, width_divisor: int = 1):
    """17x17 module, nxn factorised into 1xn and nx1 in series (n = 7 in the paper):
    1x1 | 1x1 -> 1xn -> nx1 | 1x1 -> nx1 -> 1xn -> nx1 -> 1xn | avg-pool -> 1x1."""
    width = _divided_by(width_divisor)
    c7 = width(channels_7x7)
    branch1x1 = conv2d_bn(x, width(192), (1, 1), f"{name}_1x1")
    branch7x7 = conv2d_bn(x, c7, (1, 1), f"{name}_7x7_reduce")
    branch7x7 = conv2d_bn(branch7x7, c7, (1, n), f"{name}_7x7_1")
    branch7x7 = conv2d_bn(branch7x7, width(192), (n, 1), f"{name}_7x7_2")
    branch7x7dbl = conv2d_bn(x, c7, (1, 1), f"{name}_7x7dbl_reduce")
    branch7x7dbl = conv2d_bn(branch7x7dbl, c7, (n, 1), f"{name}_7x7dbl_1")
    branch7x7dbl = conv2d_bn(branch7x7dbl, c7, (1, n), f"{name}_7x7dbl_2")
    branch7x7dbl = conv2d_bn(branch7x7dbl, c7, (n, 1), f"{name}_7x7dbl_3")
    branch7x7dbl = conv2d_bn(branch7x7dbl, width(192), (1, n), f"{name}_7x7dbl_4")
    branch_pool = conv2d_bn(_avg_pool_3x3(x, f"{name}_pool"), width(192), (1, 1), f"{name}_pool_proj")
    return keras.layers.Concatenate(name=name)([branch1x1, branch7x7, branch7x7dbl, branch_pool])


def reduction_b(x, n: int, name: str, width_divisor: int = 1):
    """17x17 -> 8x8: 1x1 -> 3x3/2 | 1x1 -> 1xn -> nx1 -> 3x3/2 | max-pool 3x3/2."""
    width = _divided_by(width_divisor)
    branch3x3 = conv2d_bn(x, width(192), (1, 1), f"{name}_3x3_reduce")
    branch3x3 = conv2d_bn(branch3x3, width(320), (3, 3), f"{name}_3x3", strides=2, padding="valid")
    branch7x7x3 = conv2d_bn(x, width(192), (1, 1), f"{name}_7x7x3_reduce")
    branch7x7x3 = conv2d_bn(branch7x7x3, width(192), (1, n), f"{name}_7x7x3_1")
    branch7x7x3 = conv2d_bn(branch7x7x3, width(192), (n, 1), f"{name}_7x7x3_2")
    branch7x7x3 = conv2d_bn(branch7x7x3, width(192), (3, 3), f"{name}_7x7x3_3", strides=2, padding="valid")
    branch_pool = keras.layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    return keras.layers.Concatenate(name=name)([branch3x3, branch7x7x3, branch_pool])


def inception_c(x, name: str, width_divisor: int = 1):
    """8x8 module, 3x3 split into 1x3 and 3x1 in parallel (wide, against a representational
    bottleneck): 1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) | avg-pool -> 1x1."""
    width = _divided_by(width_divisor)
    branch1x1 = conv2d_bn(x, width(320), (1, 1), f"{name}_1x1")
    branch3x3 = conv2d_bn(x, width(384), (1, 1), f"{name}_3x3_reduce")
    branch3x3 = keras.layers.Concatenate(name=f"{name}_3x3")(
        [
            conv2d_bn(branch3x3, width(384), (1, 3), f"{name}_3x3_1x3"),
            conv2d_bn(branch3x3, width(384), (3, 1), f"{name}_3x3_3x1"),
        ]
    )
    branch3x3dbl = conv2d_bn(x, width(448), (1, 1), f"{name}_3x3dbl_reduce")
    branch3x3dbl = conv2d_bn(branch3x3dbl, width(384), (3, 3), f"{name}_3x3dbl_1")
    branch3x3dbl = keras.layers.Concatenate(name=f"{name}_3x3dbl")(
        [
            conv2d_bn(branch3x3dbl, width(384), (1, 3), f"{name}_3x3dbl_1x3"),
            conv2d_bn(branch3x3dbl, width(384), (3, 1), f"{name}_3x3dbl_3x1"),
        ]
    )
    branch_pool = conv2d_bn(_avg_pool_3x3(x, f"{name}_pool"), width(192), (1, 1), f"{name}_pool_proj")
    return keras.layers.Concatenate(name=name)([branch1x1, branch3x3, branch3x3dbl, branch_pool])


def build_inception_v3(
    num_classes: int = 1000,
    input_shape=(299, 299, 3),
    include_top: bool = True,
    weights: str | None = None,
    width_divisor: int = 1,
    stem: bool = True,
    factorized_n: int = 7,
) -> keras.Model:
    """Builds Inception v3, layer for layer the keras.applications model.

    Spec: notes-003-004.md B4 (S3:L146-165); paper default: the stem, widths and module counts
    (3 x A at 35x35, reduction, 4 x B at 17x17, reduction, 2 x C at 8x8), the B modules' n = 7,
    and keras.applications' 'tf' preprocessing ``x / 127.5 - 1`` (layer ``preprocess``).
    Grid sizes at 299x299: stem 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35, then 35 -> 17 -> 8.

    Args:
        num_classes: number of logits.
        input_shape: one RGB image of raw pixels (float 0..255), channels-last; at least 75x75
            with the stem.
        include_top: with global average pooling and the dense logits layer; without, the output
            is the last module's feature map (8x8x2048 at 299x299), like the application with
            ``pooling=None``.
        weights: ``None`` (random) or ``"imagenet"``: downloads keras.applications' ImageNet
            weights (network needed) and copies them; needs the paper architecture (the defaults
            of the three options below) and, with the top, ``num_classes=1000``.
        width_divisor: divides every convolution's channel count.
        stem: with the stem that takes 299x299 to 35x35; without it the modules start at the
            input's resolution, so 32x32 images go through A at 32, B at 15 and C at 7.
        factorized_n: the n of the 1xn / nx1 convolutions at 17x17 (paper 7).
            ``width_divisor=8, stem=False, factorized_n=3`` on 32x32 inputs is the tiny variant.

    Example:
        >>> build_inception_v3().count_params()
        23851784
        >>> tiny = build_inception_v3(10, (32, 32, 3), width_divisor=8, stem=False, factorized_n=3)
        >>> tiny.output.shape
        (None, 10)
    """
    check_weights(weights)
    if stem and min(input_shape[:2]) < MIN_SIZE_WITH_STEM:
        raise ValueError(
            f"Inception v3's stem needs inputs of at least {MIN_SIZE_WITH_STEM}x{MIN_SIZE_WITH_STEM}, "
            f"got {input_shape}; use stem=False"
        )
    if width_divisor < 1:
        raise ValueError(f"width_divisor must be a positive integer, got {width_divisor}")
    paper_architecture = width_divisor == 1 and stem and factorized_n == 7
    if weights == "imagenet" and not (paper_architecture and (num_classes == 1000 or not include_top)):
        raise ValueError(
            "ImageNet weights need the paper architecture (width_divisor=1, stem=True, factorized_n=7) "
            f"and 1000 classes with the top; got width_divisor={width_divisor}, stem={stem}, "
            f"factorized_n={factorized_n}, num_classes={num_classes}, include_top={include_top}"
        )

    width = _divided_by(width_divisor)
    inputs = keras.Input(input_shape, name="image")
    x = tf_preprocessing()(inputs)

    if stem:  # 299 -> 35 with convolutions only, pooling twice
        x = conv2d_bn(x, width(32), (3, 3), "conv2d_1a_3x3", strides=2, padding="valid")
        x = conv2d_bn(x, width(32), (3, 3), "conv2d_2a_3x3", padding="valid")
        x = conv2d_bn(x, width(64), (3, 3), "conv2d_2b_3x3")
        x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool_3a_3x3")(x)
        x = conv2d_bn(x, width(80), (1, 1), "conv2d_3b_1x1", padding="valid")
        x = conv2d_bn(x, width(192), (3, 3), "conv2d_4a_3x3", padding="valid")
        x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool_5a_3x3")(x)

    for i, pool_proj in enumerate((32, 64, 64)):
        x = inception_a(x, pool_proj, f"mixed{i}", width_divisor)
    x = reduction_a(x, "mixed3", width_divisor)
    for i, channels_7x7 in enumerate((128, 160, 160, 192)):
        x = inception_b(x, channels_7x7, factorized_n, f"mixed{4 + i}", width_divisor)
    x = reduction_b(x, factorized_n, "mixed8", width_divisor)
    for i in range(2):
        x = inception_c(x, f"mixed{9 + i}", width_divisor)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    model = keras.Model(inputs, x, name="inception_v3")
    if weights == "imagenet":
        # The weights do not depend on the input size (global pooling), so the reference keeps its own.
        load_imagenet_weights(model, keras.applications.InceptionV3, include_top=include_top)
    return model
