"""ERFNet (Romera, Álvarez, Bergasa & Arroyo, T-ITS 2018): a real-time encoder–decoder segmenter.

Spec: notes-003-004.md A4 (seed 003 L45-58: the non-bottleneck-1D block and its parameter count);
the network is the paper's (paper default), laid out as its reference code
``Eromera/erfnet_pytorch/train/erfnet.py``, from the blocks of :mod:`tfmodels.layers.erfnet`:

* encoder: downsampler 3→16, downsampler 16→64, 5 x non-bt-1D(64, dropout 0.03, dilation 1),
  downsampler 64→128, 2 x [non-bt-1D(128, dropout 0.3, dilation d) for d in 2, 4, 8, 16];
* decoder: upsampler 128→64, 2 x non-bt-1D(64), upsampler 64→16, 2 x non-bt-1D(16), and a 2x2
  stride-2 transposed conv 16→C to the full resolution.

The encoder works at stride 8, so H and W must be multiples of :data:`SIZE_MULTIPLE` = 8. The
reference code feeds ``ToTensor()`` images (pixels / 255, no mean subtraction): the first layer
does the same, so weights ported from it see the same inputs. The reference ``Encoder`` also
holds a 1x1 ``output_conv`` (128→C) that only its encoder-only pre-training uses; the full
network never calls it, and it is not built here.

Parameters at C = 20 (Cityscapes' 19 classes + void, the reference's ``NUM_CLASSES``):
**2,064,256 trainable** (every conv with its bias, 2 per BN channel), 2,070,848 with the BN
moving statistics that Keras also counts. This is the "2.07M" quoted for ERFNet (e.g.
pytorch-auto-drive's profile; the paper's Table I lists the layers, not a total).

``width_multiplier`` scales the three widths (16, 64, 128) for the CPU presets; the block counts
are keyword arguments too. Presets (``build_erfnet(num_classes, **preset)``):

* ``tiny``:    ``width_multiplier=0.25, encoder_blocks=1, dilations=(2,), dilation_repeats=1,
  decoder_blocks=1`` — widths (4, 16, 32), 27,775 parameters at 3 classes, 64x64 inputs;
* ``default``: ``width_multiplier=0.5`` (the full depth at widths 8, 32, 64) — 522,647 parameters at
  11 classes, 128x128 inputs;
* ``paper``:   the defaults — 2,070,848 parameters (2,064,256 trainable) at 20 classes.
"""

from __future__ import annotations

from typing import Sequence

import keras

from tfmodels.layers.erfnet import downsampler_block, non_bottleneck_1d, upsampler_block

SIZE_MULTIPLE = 8  # three downsamplers
PAPER_WIDTHS = (16, 64, 128)


def scaled_widths(width_multiplier: float) -> tuple[int, int, int]:
    """The three stage widths ``round(w · width_multiplier)`` for w in (16, 64, 128).

    Example:
        >>> scaled_widths(0.5)
        (8, 32, 64)
    """
    widths = tuple(int(round(w * width_multiplier)) for w in PAPER_WIDTHS)
    if not 3 < widths[0] < widths[1] < widths[2]:
        raise ValueError(f"width_multiplier={width_multiplier} gives widths {widths}; each downsampler must add channels")
    return widths


def _encoder(x, widths, encoder_blocks: int, dilations: Sequence[int], dilation_repeats: int, dropout_rates):
    """Downsample to stride 8 with non-bt-1D blocks at strides 4 (dilation 1) and 8 (dilated)."""
    x = downsampler_block(x, widths[0], name="down1")
    x = downsampler_block(x, widths[1], name="down2")
    for index in range(1, encoder_blocks + 1):
        x = non_bottleneck_1d(x, dropout_rates[0], 1, name=f"enc64_{index}")
    x = downsampler_block(x, widths[2], name="down3")
    for repeat in range(1, dilation_repeats + 1):
        for dilation in dilations:
            x = non_bottleneck_1d(x, dropout_rates[1], dilation, name=f"enc128_{repeat}_d{dilation}")
    return x


def _decoder(x, widths, decoder_blocks: int, decoder_stages: int, num_classes: int):
    """Upsample with non-bt-1D blocks; 2 stages (paper): a 2x2/2 transposed conv to the classes at
    full resolution; 1 stage: a 1x1 conv to the classes at stride 4, upsampled bilinearly x4."""
    for stage, width in ((1, widths[1]), (2, widths[0]))[:decoder_stages]:
        x = upsampler_block(x, width, name=f"up{stage}")
        for index in range(1, decoder_blocks + 1):
            x = non_bottleneck_1d(x, name=f"dec{stage}_{index}")
    if decoder_stages == 2:
        return keras.layers.Conv2DTranspose(num_classes, 2, strides=2, dtype="float32", name="logits")(x)
    x = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return keras.layers.UpSampling2D(4, interpolation="bilinear", dtype="float32", name="upsample")(x)


def build_erfnet(
    num_classes: int,
    *,
    width_multiplier: float = 1.0,
    encoder_blocks: int = 5,
    dilations: Sequence[int] = (2, 4, 8, 16),
    dilation_repeats: int = 2,
    decoder_blocks: int = 2,
    decoder_stages: int = 2,
    dropout_rates: Sequence[float] = (0.03, 0.3),
    name: str = "erfnet",
) -> keras.Model:
    """Builds ERFNet; the defaults are the paper's network (module docstring).

    Args:
        num_classes: output channels C (20 in the reference code's Cityscapes setting).
        width_multiplier: scales the widths (16, 64, 128); see :func:`scaled_widths`.
        encoder_blocks: non-bt-1D blocks at stride 4 (5).
        dilations: the dilation rates of one group of stride-8 blocks ((2, 4, 8, 16)).
        dilation_repeats: how many times the group is repeated (2).
        decoder_blocks: non-bt-1D blocks after each upsampler (2).
        decoder_stages: upsampler stages (2, the paper's); 1 ends at stride 4 with a 1x1 conv and
            a bilinear x4 (the second stage stops the network naming the digits of the embedded scenes).
        dropout_rates: spatial dropout of the stride-4 and stride-8 encoder blocks ((0.03, 0.3)).
        name: the model's name.

    Returns:
        A functional model ``images [B, H, W, 3]`` (raw RGB, 0..255) → float32 logits
        ``[B, H, W, C]``, H and W multiples of 8.

    Example:
        >>> model = build_erfnet(3, width_multiplier=0.25, encoder_blocks=1, dilations=(2,),
        ...                      dilation_repeats=1, decoder_blocks=1)
        >>> model.count_params()
        27775
        >>> model.compute_output_shape((1, 32, 64, 3))
        (1, 32, 64, 3)
    """
    widths = scaled_widths(width_multiplier)
    images = keras.Input((None, None, 3), name="images")
    x = keras.layers.Rescaling(1.0 / 255.0, name="preprocess")(images)  # the reference's ToTensor()
    x = _encoder(x, widths, encoder_blocks, dilations, dilation_repeats, dropout_rates)
    if decoder_stages not in (1, 2):
        raise ValueError(f"decoder_stages must be 1 or 2, got {decoder_stages}")
    logits = _decoder(x, widths, decoder_blocks, decoder_stages, num_classes)
    return keras.Model(images, logits, name=name)
