"""Converts keras-hub's ``SwinTransformerBackbone`` into this zoo's Swin, weights included.

Design handbook, non-negotiable 5: where keras-hub has the architecture, ours loads its weights and
gives the same outputs. Both follow the paper's code (Liu et al. 2021) weight for weight; only the
layout differs: keras-hub keeps ``[B, H·W, C]`` token sequences and outputs them, ours keeps
``[B, H, W, C]`` maps (so ``ours(x) == reshape(hub(x), [B, h, w, C])``), and ours takes raw pixels
and standardises them inside with the ImageNet mean/std — what keras-hub's Swin image converter
does (``convert_swin_transformer.load_image_converter_config``: scale ``1/(255·std)``, offset
``−mean/std``), which the backbone itself leaves to its preprocessor.

Weight mapping (keras-hub attribute → our layer, ``i`` stage, ``j`` block)::

    patch_embedding.proj                     → "patch_embedding" (Conv2D, kernel = stride = patch)
    patch_embedding.norm                     → "patch_embedding_norm"
    stages[i].blocks[j].norm1 / norm2        → "stage{i}_block{j}".norm1 / .norm2
    stages[i].blocks[j].attn.qkv / .proj     → "stage{i}_block{j}".attn.qkv / .attn.proj
    stages[i].blocks[j].attn.relative_position_bias_table
                                             → "stage{i}_block{j}".attn.relative_position_bias_table
    stages[i].blocks[j].mlp.fc1 / .fc2       → "stage{i}_block{j}".mlp_fc1 / .mlp_fc2
    stages[i].downsample.norm / .reduction   → "stage{i}_merging".norm / .reduction
    norm                                     → "norm"

keras-hub is a development dependency only: nothing here imports it; its models are passed in.
"""

from __future__ import annotations

import keras

from tfmodels.models.swin import build_swin


def _block_pairs(hub_block, our_block) -> list[tuple]:
    hub_attention, our_attention = hub_block.attn, our_block.attn
    pairs = [(hub_attention.relative_position_bias_table, our_attention.relative_position_bias_table)]
    for source, target in (
        (hub_block.norm1, our_block.norm1),
        (hub_attention.qkv, our_attention.qkv),
        (hub_attention.proj, our_attention.proj),
        (hub_block.norm2, our_block.norm2),
        (hub_block.mlp.fc1, our_block.mlp_fc1),
        (hub_block.mlp.fc2, our_block.mlp_fc2),
    ):
        pairs += list(zip(source.weights, target.weights))
    return pairs


def _variable_pairs(hub_backbone, ours: keras.Model) -> list[tuple]:
    """(keras-hub variable, our variable) for every weight, following the module docstring's map."""
    embedding = hub_backbone.patch_embedding
    pairs = list(zip(embedding.proj.weights, ours.get_layer("patch_embedding").weights))
    pairs += list(zip(embedding.norm.weights, ours.get_layer("patch_embedding_norm").weights))
    for i, stage in enumerate(hub_backbone.stages):
        for j, block in enumerate(stage.blocks):
            pairs += _block_pairs(block, ours.get_layer(f"stage{i}_block{j}"))
        if stage.downsample is not None:
            merging = ours.get_layer(f"stage{i}_merging")
            pairs += list(zip(stage.downsample.norm.weights, merging.norm.weights))
            pairs += list(zip(stage.downsample.reduction.weights, merging.reduction.weights))
    return pairs + list(zip(hub_backbone.norm.weights, ours.get_layer("norm").weights))


def _check_convertible(hub_backbone) -> None:
    if not hub_backbone.patch_norm:
        raise ValueError("keras-hub backbone has patch_norm=False; ours always normalises the patch embedding")
    if hub_backbone.data_format != "channels_last":
        raise ValueError(f"ours is channels-last; the keras-hub backbone is {hub_backbone.data_format}")


def swin_from_keras_hub(hub_backbone, input_shape=None, name: str | None = None) -> keras.Model:
    """Our Swin feature extractor with the weights of a ``keras_hub.models.SwinTransformerBackbone``.

    Args:
        hub_backbone: the keras-hub backbone (random or pre-trained weights).
        input_shape: our input shape; default the backbone's ``image_shape``. Another size works
            when every stage keeps the same window (e.g. 448² for a 224² window-7 model).
        name: model name (default ``<hub name>_tfmodels``).

    Returns:
        ``build_swin(include_top=False)`` with the backbone's configuration (dropout and
        stochastic depth included) and weights: raw pixels 0..255 → ``[B, h, w, C_last]``, equal
        (float32 round-off) to keras-hub's ``[B, h·w, C_last]`` output on ImageNet-standardised
        pixels; same parameter count.

    Raises:
        ValueError: an unsupported option, or weights that differ in number or shape (named);
            nothing is assigned before every pair is checked.

    Example:
        >>> import keras_hub  # doctest: +SKIP
        >>> hub = keras_hub.models.SwinTransformerBackbone.from_preset("swin_tiny_patch4_window7_224")  # doctest: +SKIP
        >>> ours = swin_from_keras_hub(hub)  # doctest: +SKIP
    """
    _check_convertible(hub_backbone)
    ours = build_swin(
        input_shape=tuple(input_shape or hub_backbone.image_shape), patch_size=hub_backbone.patch_size,
        embed_dim=hub_backbone.embed_dim, depths=tuple(hub_backbone.depths), num_heads=tuple(hub_backbone.num_heads),
        window_size=hub_backbone.window_size, mlp_ratio=hub_backbone.mlp_ratio, qkv_bias=hub_backbone.qkv_bias,
        dropout=hub_backbone.dropout_rate, attention_dropout=hub_backbone.attention_dropout,
        drop_path_rate=hub_backbone.drop_path, include_top=False, name=name or f"{hub_backbone.name}_tfmodels",
    )
    pairs = _variable_pairs(hub_backbone, ours)
    if len(pairs) != len(hub_backbone.weights) or len(pairs) != len(ours.weights):
        raise ValueError(
            f"mapped {len(pairs)} weights; keras-hub has {len(hub_backbone.weights)}, ours {len(ours.weights)}"
        )
    for source, target in pairs:
        if tuple(source.shape) != tuple(target.shape):
            raise ValueError(f"keras-hub {source.path} {tuple(source.shape)} vs ours {target.path} {tuple(target.shape)}")
    for source, target in pairs:
        target.assign(source.value)
    return ours
