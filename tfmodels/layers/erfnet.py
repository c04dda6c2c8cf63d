"""ERFNet's residual blocks, and the two designs it is compared with (notes-003-004.md A4).

The seed (003 L45-58, figure from Romera et al., "ERFNet", T-ITS 2018) compares three residual
blocks by parameter count, biases included and BN excluded, with ``w0`` the common width unit:

* non-bottleneck, two 3x3 convs at width ``w0``:           ``18 w0^2 + 2 w0``  (L49);
* bottleneck, 1x1 -> 3x3 -> 1x1 at inner width ``w0`` inside a ``4 w0``-wide block:
  ``17 w0^2 + 6 w0`` (L53; the seed's ``w`` there is the block width, ``4 w0``);
* non-bottleneck-1D, each 3x3 factorised into 3x1 then 1x3: ``12 w0^2 + 4 w0``  (L57).

The first two are the seed's conv-only comparison blocks. ``non_bottleneck_1d``,
``downsampler_block`` and ``upsampler_block`` are ERFNet's own, laid out as the reference code
(``Eromera/erfnet_pytorch/train/erfnet.py``, paper default): BN with ``epsilon=1e-3``, and PyTorch's
explicit paddings reproduced exactly (``ZeroPadding2D`` / ``Cropping2D``), so weights port 1:1.

Every builder takes a 4-D channels-last tensor and returns one; a residual block keeps the shape.
"""

from __future__ import annotations

import keras

BLOCK_KINDS = ("non_bottleneck", "bottleneck", "non_bottleneck_1d")


def erfnet_block_params(kind: str, w0: int) -> int:
    """The seed's closed-form parameter count of a residual block (biases in, BN out).

    Args:
        kind: one of ``BLOCK_KINDS``.
        w0: the width unit: the block width, except the bottleneck's inner width (block ``4 w0``).

    Example:
        >>> [erfnet_block_params(kind, 64) for kind in BLOCK_KINDS]
        [73856, 70016, 49408]
    """
    formulas = {
        "non_bottleneck": 18 * w0**2 + 2 * w0,
        "bottleneck": 17 * w0**2 + 6 * w0,
        "non_bottleneck_1d": 12 * w0**2 + 4 * w0,
    }
    if kind not in formulas:
        raise ValueError(f"kind must be one of {BLOCK_KINDS}, got {kind!r}")
    return formulas[kind]


def _name(prefix: str | None, suffix: str) -> str | None:
    return None if prefix is None else f"{prefix}_{suffix}"


def _residual_relu(x, shortcut, name):
    x = keras.layers.Add(name=_name(name, "add"))([x, shortcut])
    return keras.layers.ReLU(name=_name(name, "out"))(x)


def non_bottleneck_block(x, name: str | None = None):
    """The seed's non-bottleneck block (ResNet basic, ERFNet Fig. 2a): 3x3 -> ReLU -> 3x3, + x, ReLU.

    ``18 w0^2 + 2 w0`` parameters at width ``w0 = x.shape[-1]``.

    Example:
        >>> inputs = keras.Input((8, 8, 64))
        >>> keras.Model(inputs, non_bottleneck_block(inputs)).count_params()
        73856
    """
    width = x.shape[-1]
    y = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=_name(name, "conv3x3_1"))(x)
    y = keras.layers.Conv2D(width, 3, padding="same", name=_name(name, "conv3x3_2"))(y)
    return _residual_relu(y, x, name)


def bottleneck_block(x, reduction: int = 4, name: str | None = None):
    """The seed's bottleneck block (ERFNet Fig. 2b): 1x1 reduce -> 3x3 -> 1x1 expand, + x, ReLU.

    The inner width is ``w0 = x.shape[-1] / reduction``; ``17 w0^2 + 6 w0`` parameters at the
    seed's ``reduction = 4``.

    Example:
        >>> inputs = keras.Input((8, 8, 256))
        >>> keras.Model(inputs, bottleneck_block(inputs)).count_params()
        70016
    """
    width = x.shape[-1]
    if width % reduction:
        raise ValueError(f"block width {width} is not divisible by reduction={reduction}")
    inner = width // reduction
    y = keras.layers.Conv2D(inner, 1, activation="relu", name=_name(name, "conv1x1_reduce"))(x)
    y = keras.layers.Conv2D(inner, 3, padding="same", activation="relu", name=_name(name, "conv3x3"))(y)
    y = keras.layers.Conv2D(width, 1, name=_name(name, "conv1x1_expand"))(y)
    return _residual_relu(y, x, name)


def non_bottleneck_1d(
    x,
    dropout_rate: float = 0.0,
    dilation: int = 1,
    batch_norm: bool = True,
    name: str | None = None,
):
    """ERFNet's non-bottleneck-1D block (Fig. 2c): two factorised 3x1 -> 1x3 pairs, + x, ReLU.

    3x1 -> ReLU -> 1x3 -> BN -> ReLU -> 3x1 (dilation (d, 1)) -> ReLU -> 1x3 (dilation (1, d))
    -> BN -> SpatialDropout -> + x -> ReLU, as in the reference code. Only the second pair is
    dilated. Conv-only (``batch_norm=False``) it has the seed's ``12 w0^2 + 4 w0`` parameters;
    each BN adds ``2 w0`` trainable (``4 w0`` with its moving statistics).

    Args:
        x: input, ``w0 = x.shape[-1]`` channels.
        dropout_rate: ``SpatialDropout2D`` rate (the reference's ``Dropout2d``); 0 adds no layer.
        dilation: the second pair's dilation rate.
        batch_norm: the reference's two BNs (``epsilon=1e-3``).
        name: prefix for the layer names.

    Example:
        >>> inputs = keras.Input((8, 8, 64))
        >>> keras.Model(inputs, non_bottleneck_1d(inputs, batch_norm=False)).count_params()
        49408
    """
    width = x.shape[-1]

    def conv(y, kernel, rate, suffix):
        return keras.layers.Conv2D(width, kernel, padding="same", dilation_rate=rate, name=_name(name, suffix))(y)

    def norm(y, suffix):
        if batch_norm:
            y = keras.layers.BatchNormalization(epsilon=1e-3, name=_name(name, suffix))(y)
        return y

    y = keras.layers.ReLU(name=_name(name, "relu1"))(conv(x, (3, 1), 1, "conv3x1_1"))
    y = keras.layers.ReLU(name=_name(name, "relu2"))(norm(conv(y, (1, 3), 1, "conv1x3_1"), "bn1"))
    y = keras.layers.ReLU(name=_name(name, "relu3"))(conv(y, (3, 1), (dilation, 1), "conv3x1_2"))
    y = norm(conv(y, (1, 3), (1, dilation), "conv1x3_2"), "bn2")
    if dropout_rate:
        y = keras.layers.SpatialDropout2D(dropout_rate, name=_name(name, "dropout"))(y)
    return _residual_relu(y, x, name)


def downsampler_block(x, out_channels: int, name: str | None = None):
    """ERFNet's downsampler: concat[3x3 stride-2 conv (out - in filters), 2x2 max-pool] -> BN -> ReLU.

    Halves H and W (which must be even) and gives ``out_channels`` channels; the conv is padded
    by 1 on every side, as PyTorch's ``padding=1``.

    Example:
        >>> inputs = keras.Input((32, 64, 3))
        >>> downsampler_block(inputs, 16).shape
        (None, 16, 32, 16)
    """
    in_channels = x.shape[-1]
    if out_channels <= in_channels:
        raise ValueError(f"out_channels ({out_channels}) must exceed the input's {in_channels}")
    conv = keras.layers.ZeroPadding2D(1, name=_name(name, "pad"))(x)
    conv = keras.layers.Conv2D(out_channels - in_channels, 3, strides=2, name=_name(name, "conv"))(conv)
    pool = keras.layers.MaxPooling2D(2, name=_name(name, "pool"))(x)
    y = keras.layers.Concatenate(name=_name(name, "concat"))([conv, pool])
    y = keras.layers.BatchNormalization(epsilon=1e-3, name=_name(name, "bn"))(y)
    return keras.layers.ReLU(name=_name(name, "relu"))(y)


def upsampler_block(x, out_channels: int, name: str | None = None):
    """ERFNet's upsampler: 3x3 stride-2 transposed conv -> BN -> ReLU; doubles H and W.

    Equals PyTorch's ``ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)``: a 'valid'
    transposed conv (``2 H + 1`` rows) without its first row and column.

    Example:
        >>> inputs = keras.Input((4, 8, 128))
        >>> upsampler_block(inputs, 64).shape
        (None, 8, 16, 64)
    """
    y = keras.layers.Conv2DTranspose(out_channels, 3, strides=2, name=_name(name, "conv"))(x)
    y = keras.layers.Cropping2D(((1, 0), (1, 0)), name=_name(name, "crop"))(y)
    y = keras.layers.BatchNormalization(epsilon=1e-3, name=_name(name, "bn"))(y)
    return keras.layers.ReLU(name=_name(name, "relu"))(y)
