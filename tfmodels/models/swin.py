"""Swin Transformer (Liu et al. 2021): a hierarchical vision Transformer with shifted windows.

Specs: notes-001.md §27 (seed 001 L722-773): patch partition (4×4) + linear embedding, four
stages of Swin blocks alternating W-MSA and SW-MSA, patch merging between stages (H/4, H/8,
H/16, H/32 at C, 2C, 4C, 8C), attention cost linear in the number of tokens for a fixed window.
The notes give no window, depths, heads or widths; those are the paper's (paper default):
Swin-T = C 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7, patch 4, MLP ratio 4,
stochastic depth 0.2, 224² input: 28,288,354 parameters with the 1000-class head, 27,519,354
without (keras-hub's ``SwinTransformerBackbone`` count).

Layout, top to bottom::

    raw RGB pixels 0..255 → (x/255 − ImageNet mean) / std      "preprocess" (as keras-hub's Swin
                                                               image converter normalises)
    Conv2D(C, kernel = stride = patch) → LayerNorm             "patch_embedding", "..._norm"
    stage i: depth_i blocks, block j shifted iff j is odd      "stage{i}_block{j}"
             PatchMerging to 2C at H/2 (all but the last)      "stage{i}_merging"
    LayerNorm                                                  "norm"  ← include_top=False output
    GlobalAveragePooling → Dense(num_classes) logits           "avg_pool", "logits"

Everything stays a ``[B, H, W, C]`` map until the pooling, so the zoo's transfer-learning split
(:mod:`tfmodels.models.backbone`: weighted layers with rank-4 outputs = backbone) applies as is.
Maps must be a whole number of windows at every stage and even before each merging (the paper's
classification code has the same limits): Swin-T needs inputs of 224·k pixels; a window at least
as large as a map shrinks to it (no shift there), as in the paper's code.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from tfmodels.layers.patch_merging import PatchMerging
from tfmodels.layers.preprocessing import imagenet_standardization
from tfmodels.layers.swin_block import SwinTransformerBlock
from tfmodels.models.keras_applications import check_weights

# keras-hub's ImageNet-1k Swin-T backbone (keras_hub/src/models/swin_transformer/swin_transformer_presets.py)
KERAS_HUB_SWIN_TINY_PRESET = "swin_tiny_patch4_window7_224"
LAYER_NORM_EPSILON = 1e-5  # PyTorch's default, the paper code's and keras-hub's


def _patch_embedding(x, patch_size: int, embed_dim: int):
    """Patch partition + linear embedding: one Conv2D with kernel = stride = patch, then LayerNorm."""
    x = keras.layers.Conv2D(embed_dim, patch_size, strides=patch_size, name="patch_embedding")(x)
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="patch_embedding_norm")(x)


def _stage(x, index: int, depth: int, num_heads: int, drop_paths: Sequence[float], merge: bool, options: dict, seed):
    """``depth`` Swin blocks (W-MSA at even j, SW-MSA at odd j), then PatchMerging when ``merge``."""
    window_size = options["window_size"]
    for j in range(depth):
        x = SwinTransformerBlock(
            num_heads,
            shift_size=0 if j % 2 == 0 else window_size // 2,
            drop_path=drop_paths[j],
            seed=None if seed is None else seed + 1000 * index + j,
            name=f"stage{index}_block{j}",
            **options,
        )(x)
    return PatchMerging(LAYER_NORM_EPSILON, name=f"stage{index}_merging")(x) if merge else x


def build_swin(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    patch_size: int = 4,
    embed_dim: int = 96,
    depths: Sequence[int] = (2, 2, 6, 2),
    num_heads: Sequence[int] = (3, 6, 12, 24),
    window_size: int = 7,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    drop_path_rate: float = 0.2,
    include_top: bool = True,
    seed: int | None = None,
    name: str = "swin",
) -> keras.Model:
    """Builds a Swin Transformer classifier (or its feature extractor) from raw pixels.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels 0..255, channels-last; ``H/patch`` must be a multiple of
            ``window_size·2^i`` at every stage i that has windows smaller than its map.
        patch_size: patch side (paper default 4).
        embed_dim: C, the channels of stage 0 (stage i has ``C·2^i``).
        depths: blocks per stage (one stage per entry; paper: four).
        num_heads: attention heads per stage.
        window_size: window side M (paper default 7); SW-MSA shifts by ``M // 2``.
        mlp_ratio: MLP hidden width over the channels (paper default 4).
        qkv_bias: bias on the Q/K/V projections (paper default True).
        dropout: dropout after the patch embedding, the attention projections and in the MLPs.
        attention_dropout: dropout on the attention probabilities.
        drop_path_rate: stochastic depth of the last block; block k of n has ``rate·k/(n−1)``
            (paper default 0.2 for Swin-T).
        include_top: logits if True, else the final LayerNorm'd ``[B, H/(patch·2^(S−1)), ., C·2^(S−1)]`` map.
        seed: seed of the drop-path streams (None: unseeded).
        name: model name.

    Returns:
        A functional ``keras.Model``.

    Example:
        >>> model = build_swin(10, (32, 32, 3), patch_size=2, embed_dim=16, depths=(2, 2),
        ...                    num_heads=(2, 4), window_size=4)
        >>> model.output.shape
        (None, 10)
    """
    if len(depths) != len(num_heads):
        raise ValueError(f"build_swin: {len(depths)} depths but {len(num_heads)} head counts")
    drop_paths = np.linspace(0.0, drop_path_rate, sum(depths)).tolist()
    options = dict(
        window_size=window_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, dropout=dropout,
        attention_dropout=attention_dropout, layer_norm_epsilon=LAYER_NORM_EPSILON,
    )
    inputs = keras.Input(input_shape, name="pixels")
    x = imagenet_standardization(name="preprocess")(inputs)
    x = _patch_embedding(x, patch_size, embed_dim)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        first = sum(depths[:i])
        x = _stage(x, i, depth, heads, drop_paths[first : first + depth], i < len(depths) - 1, options, seed)
    x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def _imagenet_backbone(input_shape) -> keras.Model:
    """keras-hub's ImageNet Swin-T backbone, converted (downloads once; keras-hub must be installed)."""
    try:
        import keras_hub
    except ImportError as error:  # keras-hub is a development dependency
        raise ImportError("weights='imagenet' converts keras-hub's Swin-T preset: pip install keras-hub") from error
    from tfmodels.models.swin_keras_hub import swin_from_keras_hub

    hub = keras_hub.models.SwinTransformerBackbone.from_preset(KERAS_HUB_SWIN_TINY_PRESET)
    return swin_from_keras_hub(hub, input_shape=tuple(input_shape), name="swin_tiny")


def swin_tiny(
    num_classes: int = 1000, input_shape=(224, 224, 3), weights: str | None = None, include_top: bool = True
) -> keras.Model:
    """Swin-T (paper default): C 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7, patch 4.

    28,288,354 parameters at 224² with 1000 classes; 27,519,354 without the head (= keras-hub's
    ``SwinTransformerBackbone`` with these arguments). Stochastic depth 0.2 (paper, Swin-T).

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels 0..255; 224·k square sizes (window 7 at every stage).
        weights: None (random) or "imagenet": keras-hub's ``swin_tiny_patch4_window7_224``
            backbone (ImageNet-1k), converted; needs the network once and ``include_top=False``
            (the preset has no classifier head; put a new head on it, as the zoo's transfer
            learning does).
        include_top: logits if True, else the final ``[B, H/32, W/32, 768]`` feature map.

    Returns:
        A functional ``keras.Model``.

    Example:
        >>> swin_tiny().count_params()
        28288354
    """
    check_weights(weights)
    if weights == "imagenet":
        if include_top:
            raise ValueError(
                "swin_tiny: keras-hub's Swin presets are backbones without an ImageNet head; "
                "use include_top=False (and a new head) with weights='imagenet'"
            )
        return _imagenet_backbone(input_shape)
    return build_swin(num_classes, input_shape, include_top=include_top, name="swin_tiny")


def swin_tiny_cpu(
    num_classes: int = 1000, input_shape=(32, 32, 3), weights: str | None = None, include_top: bool = True
) -> keras.Model:
    """A Swin small enough for CPU tests (notes-001.md §27 tiny config): patch 2, window 4, C 32,
    depths (2, 2), heads (2, 4), stochastic depth 0.1; 32² inputs give 16² and 8² maps.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels 0..255; square sizes that are multiples of 16.
        weights: None only (there are no pre-trained weights for this size).
        include_top: logits if True, else the final ``[B, H/4, W/4, 64]`` feature map.

    Returns:
        A functional ``keras.Model``.

    Example:
        >>> swin_tiny_cpu(num_classes=10).output.shape
        (None, 10)
    """
    check_weights(weights)
    if weights == "imagenet":
        raise ValueError("swin_tiny_cpu has no ImageNet weights; use weights=None")
    return build_swin(
        num_classes, input_shape, patch_size=2, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=4,
        drop_path_rate=0.1, include_top=include_top, name="swin_tiny_cpu",
    )
