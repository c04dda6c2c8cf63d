"""U-Net (Ronneberger, Fischer & Brox 2015): an encoder–decoder with concatenated skip connections.

Spec: notes-003-004.md D3 (seed 003 L95: shrink the map, then restore it to a label map the size
of the input; L271-277: the encoder–decoder family, "FCN, UNet"). The layout is the paper's (paper
default):

* contracting path: ``depth`` levels of [3x3 conv → ReLU] x 2, each followed by a 2x2 max-pool
  (stride 2); the channels double at every level, 64 → 128 → 256 → 512, and a bottom level of
  1024 channels (depth 4);
* expanding path: per level a 2x2 "up-convolution" (a stride-2 transposed conv that doubles H and
  W and halves the channels), concatenation with the contracting path's map of the same level
  (the skip connection), then [3x3 conv → ReLU] x 2;
* a final 1x1 conv to the classes (2 in the paper: cell / border-or-background);
* He-normal initialisation, the paper's Gaussian with std ``sqrt(2 / N)``.

Departure from the paper: its convolutions are unpadded (572x572 in → 388x388 out, the skips
cropped to fit); here they use ``padding="same"``, so the output has the input's size and the skips
need no crop (the usual Keras form, D3). Padding does not change the parameter count: at the
paper's widths and 2 classes it is 31,031,810. The paper's drop-out "at the end of the contracting
path" has no rate in the text; ``dropout`` sets one (0 = none). ``batch_norm`` adds a BN after each
3x3 conv (a common modern variant, not the paper's). The paper specifies no input normalisation;
the first layer standardises raw pixels with the ImageNet mean and std.

Presets (``build_unet(num_classes, **preset)``):

* ``tiny``:    ``base_filters=4, depth=2`` — 7,479 parameters at 3 classes, 64x64 inputs;
* ``default``: ``base_filters=16, depth=3`` — 482,203 parameters at 11 classes, 128x128 inputs;
* ``paper``:   ``base_filters=64, depth=4`` — 31,031,810 parameters at 2 classes.

Inputs must have H and W divisible by ``2 ** depth`` (:data:`SIZE_MULTIPLE` = 16 at the paper's
depth), so that every pooled map upsamples back to its skip's size.
"""

from __future__ import annotations

import keras

from tfmodels.layers.preprocessing import imagenet_standardization

PAPER_DEPTH = 4
SIZE_MULTIPLE = 2**PAPER_DEPTH  # 2 ** depth in general
INITIALIZER = "he_normal"  # paper default: Gaussian, std sqrt(2 / fan_in)


def double_conv(x, filters: int, batch_norm: bool, name: str):
    """[3x3 conv ('same') → (BN) → ReLU] x 2, the unit of both paths (paper Fig. 1).

    Args:
        x: input feature map ``[B, H, W, C]``.
        filters: output channels of both convs.
        batch_norm: insert a BN before each ReLU (then the convs have no bias).
        name: layer-name prefix.

    Returns:
        ``[B, H, W, filters]``.

    Example:
        >>> double_conv(keras.Input((8, 8, 3)), 4, False, "d").shape
        (None, 8, 8, 4)
    """
    for index in (1, 2):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", use_bias=not batch_norm, kernel_initializer=INITIALIZER, name=f"{name}_conv{index}"
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def _contracting_path(x, base_filters: int, depth: int, batch_norm: bool):
    """Levels 1..depth: double conv, keep the map for the skip, max-pool; returns (x, skips)."""
    skips = []
    for level in range(1, depth + 1):
        x = double_conv(x, base_filters * 2 ** (level - 1), batch_norm, name=f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    return x, skips


def _expanding_path(x, skips, base_filters: int, batch_norm: bool):
    """Levels depth..1: 2x2 up-conv (halves the channels), concat the skip, double conv."""
    for level in range(len(skips), 0, -1):
        filters = base_filters * 2 ** (level - 1)
        x = keras.layers.Conv2DTranspose(
            filters, 2, strides=2, kernel_initializer=INITIALIZER, name=f"up{level}_upconv"
        )(x)
        x = keras.layers.Concatenate(name=f"up{level}_concat")([skips[level - 1], x])
        x = double_conv(x, filters, batch_norm, name=f"up{level}")
    return x


def build_unet(
    num_classes: int,
    *,
    base_filters: int = 64,
    depth: int = PAPER_DEPTH,
    batch_norm: bool = False,
    dropout: float = 0.0,
    name: str = "unet",
) -> keras.Model:
    """Builds U-Net; the defaults are the paper's layout (module docstring).

    Args:
        num_classes: output channels C (2 in the paper).
        base_filters: channels of the first level (64); level ``l`` has ``base_filters · 2**(l-1)``.
        depth: number of max-pools (4); the bottom level has ``base_filters · 2**depth`` channels.
        batch_norm: BN after every 3x3 conv (not in the paper).
        dropout: drop-out rate at the end of the contracting path (after the bottom level).
        name: the model's name.

    Returns:
        A functional model ``images [B, H, W, 3]`` (raw RGB, 0..255) → float32 logits
        ``[B, H, W, C]``, H and W divisible by ``2 ** depth``.

    Example:
        >>> model = build_unet(3, base_filters=4, depth=2)
        >>> model.count_params()
        7479
        >>> model.compute_output_shape((1, 32, 48, 3))
        (1, 32, 48, 3)
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    images = keras.Input((None, None, 3), name="images")
    x = imagenet_standardization()(images)
    x, skips = _contracting_path(x, base_filters, depth, batch_norm)
    x = double_conv(x, base_filters * 2**depth, batch_norm, name="bottom")
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottom_dropout")(x)
    x = _expanding_path(x, skips, base_filters, batch_norm)
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return keras.Model(images, logits, name=name)
