"""The DDPM noise predictor: a U-Net ε_θ(x_t, t) with a time embedding in every residual block.

Spec: notes-003-004.md F1 (seed 004 L1: "DDPM trains a noise predictor, a U-Net that takes the
previous step's image and a time embedding and predicts this step's noise ε; the U-Net shares its
parameters across steps"). The layout is the paper's code (Ho et al. 2020, Appendix B and
``diffusion_tf/models/unet.py``; paper default), read top to bottom:

* time: :class:`~tfmodels.layers.timestep_embedding.TimestepEmbedding` — sinusoids of width
  ``ch`` → Dense(4ch) → swish → Dense(4ch);
* in: 3x3 conv to ``ch``;
* down: per level ``l`` (width ``ch · channel_multipliers[l]``) ``num_res_blocks`` residual blocks
  (:class:`~tfmodels.layers.diffusion_residual_block.DiffusionResidualBlock`), each followed by
  :class:`~tfmodels.layers.spatial_self_attention.SpatialSelfAttention` when the map's side is in
  ``attention_resolutions``; every output is kept for a skip; between levels a stride-2 3x3 conv;
* middle: residual block → attention → residual block;
* up: per level, deepest first, ``num_res_blocks + 1`` residual blocks, each on the concatenation
  of the running map and the most recent unused skip (plus attention at the same sides); between
  levels nearest-neighbour 2x up-sampling and a 3x3 conv;
* out: GroupNorm → swish → 3x3 conv to the image's channels (initialised ≈ 0), float32.

``paper`` (:data:`PAPER_CONFIG`) is the CIFAR-10 network: ch 128, multipliers (1, 2, 2, 2), 2 residual
blocks per level, attention at 16x16, dropout 0.1 — 35,746,307 parameters, the paper's "35.7 million"
(Appendix B).

**Image sizes.** Every level but the last halves the map, so the side must be divisible by
``2 ** (len(channel_multipliers) − 1)`` (checked when building). MNIST's 28x28 digits are used as
they are, with at most three levels (28 → 14 → 7, e.g. multipliers (1, 2, 2) and attention at 14,
the paper's 16x16 counterpart), rather than padded to 32: padding would spend a quarter of the
compute and of the model's capacity on a frame that is always −1. Four levels need a side divisible
by 8 (pad 28 to 32 in the data pipeline if the paper's depth is wanted).
"""

from __future__ import annotations

import keras

from tfmodels.layers.diffusion_residual_block import (
    GROUP_NORM_GROUPS,
    DiffusionResidualBlock,
    group_norm,
    near_zero_initializer,
)
from tfmodels.layers.spatial_self_attention import SpatialSelfAttention
from tfmodels.layers.timestep_embedding import TimestepEmbedding

PAPER_CONFIG = {  # DDPM on CIFAR-10 (paper default, Appendix B)
    "image_size": 32,
    "channels": 3,
    "base_channels": 128,
    "channel_multipliers": (1, 2, 2, 2),
    "num_res_blocks": 2,
    "attention_resolutions": (16,),
    "dropout": 0.1,
}
PAPER_PARAMETERS = 35.7e6  # "35.7 million parameters" (Ho et al. 2020, Appendix B)
TINY_CONFIG = {  # CPU tests: MNIST-sized, two levels, attention at the lowest resolution
    "image_size": 28,
    "channels": 1,
    "base_channels": 16,
    "channel_multipliers": (1, 2),
    "num_res_blocks": 1,
    "attention_resolutions": (14,),
    "dropout": 0.1,
    "norm_groups": 8,
}


def _check_config(image_size: int, base_channels: int, channel_multipliers, attention_resolutions, norm_groups: int):
    """Raises ValueError for a side that does not halve evenly, a bad attention side or group count."""
    levels = len(channel_multipliers)
    if levels < 1:
        raise ValueError("channel_multipliers must name at least one level")
    if image_size % 2 ** (levels - 1):
        raise ValueError(
            f"image_size {image_size} is not divisible by 2**{levels - 1}: {levels} levels halve it {levels - 1} times"
        )
    sides = [image_size // 2**level for level in range(levels)]
    unknown = set(attention_resolutions) - set(sides)
    if unknown:
        raise ValueError(f"attention_resolutions {sorted(unknown)} are not among the U-Net's sides {sides}")
    for width in {base_channels, *(base_channels * m for m in channel_multipliers)}:
        if width % norm_groups:
            raise ValueError(f"{width} channels do not split into {norm_groups} GroupNorm groups")


def _block(x, temb, out_channels: int, attention: bool, dropout: float, norm_groups: int, name: str):
    """A residual block, followed by self-attention when ``attention``."""
    x = DiffusionResidualBlock(out_channels, dropout=dropout, groups=norm_groups, name=name)([x, temb])
    if attention:
        x = SpatialSelfAttention(groups=norm_groups, name=f"{name}_attention")(x)
    return x


def _down_path(x, temb, cfg: dict):
    """Levels from the top down; returns the bottom map and every skip, in order."""
    skips, side = [x], cfg["image_size"]
    levels = len(cfg["channel_multipliers"])
    for level, multiplier in enumerate(cfg["channel_multipliers"]):
        for index in range(cfg["num_res_blocks"]):
            x = _block(x, temb, cfg["base_channels"] * multiplier, side in cfg["attention_resolutions"],
                       cfg["dropout"], cfg["norm_groups"], name=f"down{level}_block{index}")
            skips.append(x)
        if level != levels - 1:
            x = keras.layers.Conv2D(x.shape[-1], 3, strides=2, padding="same", name=f"down{level}_downsample")(x)
            skips.append(x)
            side //= 2
    return x, skips


def _up_path(x, temb, skips: list, cfg: dict):
    """Levels from the bottom up, each block on [x, skip]; consumes ``skips`` from the end."""
    side = cfg["image_size"] // 2 ** (len(cfg["channel_multipliers"]) - 1)
    for level in reversed(range(len(cfg["channel_multipliers"]))):
        for index in range(cfg["num_res_blocks"] + 1):
            x = keras.layers.Concatenate(name=f"up{level}_concat{index}")([x, skips.pop()])
            x = _block(x, temb, cfg["base_channels"] * cfg["channel_multipliers"][level],
                       side in cfg["attention_resolutions"], cfg["dropout"], cfg["norm_groups"],
                       name=f"up{level}_block{index}")
        if level != 0:
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_upsample")(x)
            x = keras.layers.Conv2D(x.shape[-1], 3, padding="same", name=f"up{level}_upsample_conv")(x)
            side *= 2
    return x


def build_ddpm_unet(
    image_size: int,
    channels: int,
    base_channels: int = 128,
    channel_multipliers=(1, 2, 2, 2),
    num_res_blocks: int = 2,
    attention_resolutions=(16,),
    dropout: float = 0.1,
    *,
    norm_groups: int = GROUP_NORM_GROUPS,
    name: str = "ddpm_unet",
) -> keras.Model:
    """Builds the DDPM ε-predictor; the defaults are the paper's CIFAR-10 layout (module docstring).

    Args:
        image_size: side of the square images; divisible by ``2 ** (len(channel_multipliers) − 1)``.
        channels: image channels C (3 for CIFAR-10, 1 for digits).
        base_channels: ``ch`` (128); the time embedding is ``4 · ch`` wide.
        channel_multipliers: width of each level as a multiple of ``ch``; one level per entry.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolutions: map sides that get self-attention after each residual block.
        dropout: dropout rate inside the residual blocks (0.1 on CIFAR-10).
        norm_groups: GroupNorm groups (32, paper default); must divide every level's width.
        name: the model's name.

    Returns:
        A functional model ``{"x_t": [B, H, W, C] float in about [−1, 1], "t": [B] int32 in
        0 … T−1}`` → float32 ε̂ ``[B, H, W, C]``. The same weights serve every ``t``.

    Example:
        >>> model = build_ddpm_unet(8, 1, base_channels=8, channel_multipliers=(1, 2), num_res_blocks=1,
        ...                         attention_resolutions=(4,), norm_groups=4)
        >>> tuple(model({"x_t": keras.ops.zeros((2, 8, 8, 1)), "t": keras.ops.convert_to_tensor([0, 9])}).shape)
        (2, 8, 8, 1)
    """
    cfg = {
        "image_size": image_size, "base_channels": base_channels, "channel_multipliers": tuple(channel_multipliers),
        "num_res_blocks": num_res_blocks, "attention_resolutions": tuple(attention_resolutions),
        "dropout": dropout, "norm_groups": norm_groups,
    }
    _check_config(image_size, base_channels, cfg["channel_multipliers"], cfg["attention_resolutions"], norm_groups)
    x_t = keras.Input((image_size, image_size, channels), name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    temb = TimestepEmbedding(base_channels, 4 * base_channels, name="time_embedding")(t)
    x = keras.layers.Conv2D(base_channels, 3, padding="same", name="conv_in")(x_t)
    x, skips = _down_path(x, temb, cfg)
    x = _block(x, temb, x.shape[-1], True, dropout, norm_groups, name="middle_block0")
    x = _block(x, temb, x.shape[-1], False, dropout, norm_groups, name="middle_block1")
    x = _up_path(x, temb, skips, cfg)
    x = keras.layers.Activation("silu", name="out_swish")(group_norm(norm_groups, "out_norm")(x))
    epsilon = keras.layers.Conv2D(
        channels, 3, padding="same", kernel_initializer=near_zero_initializer(), dtype="float32", name="conv_out"
    )(x)
    return keras.Model({"x_t": x_t, "t": t}, epsilon, name=name)
