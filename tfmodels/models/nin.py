"""Network in Network (Lin, Chen & Yan 2013), in d2l's ImageNet layout.

Spec: notes-001.md §13 (seed 001 L477-480) and notes-003-004.md C2 (S3:L180-188). A NiN block is
one ordinary convolution followed by two 1×1 convolutions — an MLP applied at every pixel, with
pixels as samples and channels as features (seed 001 L477) — each with ReLU. The fully connected
classifier is gone (it overfits, L480): the last block outputs one map per class and global
average pooling, which has no parameters and is robust to spatial shifts (S3:L186-188), turns
them into the logits. Layout (d2l, paper default where the notes give no sizes):

    NiN(96, 11×11/4, valid) → max-pool 3/2
    NiN(256, 5×5, 'same') → max-pool 3/2
    NiN(384, 3×3, 'same') → max-pool 3/2 → dropout 0.5
    NiN(num_classes, 3×3, 'same') → global average pooling → logits

As in d2l and the paper's Caffe model, the class maps pass through the block's ReLU before the
pooling, so the logits are non-negative (with only a handful of classes a class map can die
and pin its logit at 0; train the tiny variant with 10 or more class maps). At 224×224×3:
7,439,608 parameters for 1000 classes, 2,015,398 for d2l's 10 (Fashion-MNIST).

Preprocessing (paper default): ImageNet mean/std standardisation, as :mod:`tfmodels.models.alexnet`
(:func:`tfmodels.layers.preprocessing.imagenet_standardization`).
"""

from __future__ import annotations

import keras

from tfmodels.layers.preprocessing import imagenet_standardization


def nin_block(x, filters: int, kernel_size: int, strides: int, padding: str, name: str):
    """A k×k convolution, then two 1×1 convolutions (the per-pixel MLP), each followed by ReLU."""
    x = keras.layers.Conv2D(filters, kernel_size, strides, padding, activation="relu", name=f"{name}_conv")(x)
    x = keras.layers.Conv2D(filters, 1, activation="relu", name=f"{name}_mlp1")(x)
    return keras.layers.Conv2D(filters, 1, activation="relu", name=f"{name}_mlp2")(x)


def build_nin(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    width_divisor: int = 1,
    dropout: float = 0.5,
    stem_kernel: int = 11,
    stem_stride: int = 4,
) -> keras.Model:
    """Builds NiN: three NiN blocks with max-pools, a class-map block and global average pooling.

    Follows notes-001 §13 (seed 001 L477-480) and notes-003-004 C2 (S3:L180-188); the block sizes
    are d2l's and the preprocessing is paper default (module docstring). There are no Dense
    layers. 7,439,608 parameters at 224×224×3 and 1000 classes.

    Args:
        num_classes: number of logits (channels of the last block).
        input_shape: one raw RGB image (0..255), channels-last; ``(None, None, 3)`` accepts any
            size the pools allow (GAP makes the head size-independent).
        include_top: with ``False`` the model returns the feature map after the third block's
            pool (``384 / width_divisor`` channels), before dropout and the class block.
        weights: ``None`` only; no reference implementation ships NiN weights for Keras.
        width_divisor: divides the channels of the first three blocks (96, 256, 384).
        dropout: dropout rate before the class block.
        stem_kernel: the first block's kernel size (11).
        stem_stride: the first block's stride (4). 32×32 inputs need ``stem_kernel=3,
            stem_stride=1``; 11/4 shrinks them to nothing after the second pool.

    Tiny variant for 32×32 images: ``width_divisor=8, stem_kernel=3, stem_stride=1``.

    Example:
        >>> build_nin().count_params()
        7439608
        >>> build_nin(10, (None, None, 3), width_divisor=8, stem_kernel=3, stem_stride=1).output.shape
        (None, 10)
    """
    if weights is not None:
        raise ValueError(f"NiN has no pretrained weights here; weights must be None, got {weights!r}")
    inputs = keras.Input(input_shape, name="pixels")
    x = imagenet_standardization()(inputs)
    for i, (filters, kernel, strides, padding) in enumerate(
        [(96, stem_kernel, stem_stride, "valid"), (256, 5, 1, "same"), (384, 3, 1, "same")], start=1
    ):
        x = nin_block(x, filters // width_divisor, kernel, strides, padding, name=f"block{i}")
        x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)
    if include_top:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = nin_block(x, num_classes, 3, 1, "same", name="classes")
        x = keras.layers.GlobalAveragePooling2D(name="global_average_pool")(x)
    return keras.Model(inputs, x, name="nin")
