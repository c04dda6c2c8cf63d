"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

Specs: notes-001.md §24 (seed 001 L597-629): split the image into 16x16 patches (224² → 14x14 =
196), project each flattened patch linearly, add a learned position embedding, prepend a CLS
token, run a standard Transformer encoder, classify from the CLS output with a linear layer.
The notes give no sizes; ViT-B/16 (D 768, 12 layers, 12 heads, MLP 3072, pre-LN, GELU) is the
paper default. Issue 15 item 1: keras-hub-compatible weights, any image size.

The graph, top to bottom (layer names are a contract: MAE hands its encoder over by name)::

    pixels [B, H, W, 3], 0..255
    preprocess             x / 127.5 - 1 (keras-hub's ViT image converter; see ``normalization``)
    patch_projection       Conv2D(D, kernel = stride = patch, "valid")      -> [B, h, w, D]
    position_embedding     + GridPositionEmbedding(image_size // patch)      (resized if h, w differ)
    flatten_patches        [B, h·w, D], row-major (keras-hub's order)
    class_token            ClassToken: [B, 1 + h·w, D]                        (pooling="token" only)
    embedding_dropout
    encoder_block_{i}      pre-LN TransformerEncoderBlock, GELU, LayerNorm ε 1e-6, i = 0..L-1
    encoder_norm           LayerNorm ε 1e-6                                  <- include_top=False
    pool                   token 0 (pooling="token") or the mean of the patch tokens ("gap")
    head                   Dense(num_classes), zero-initialised (paper default), float32 logits

The convolution with kernel = stride = patch is exactly "flatten each patch, multiply by E"
(paper eq. 1). The position embeddings are added to the patch grid before flattening, so a grid of
another size reads the learned table bilinearly resized (paper §3.2): a model trained at one image
size fine-tunes and serves at another. Eq. 1's class token and its position embedding
``E_pos[0]`` are two vectors of :class:`~tfmodels.layers.class_token.ClassToken`, so the count is
the paper's and keras-hub's: ViT-B/16 has 85,798,656 parameters without the head and 86,567,656
with the 1000-class head.

Dropout (``dropout``) follows the paper's placement: after adding the position embeddings and on
each block's attention and MLP outputs; no attention-probability dropout. The paper trains
ViT-B/16 on ImageNet alone with dropout 0.1 and fine-tunes with 0 (our default, as keras-hub).
"""

from __future__ import annotations

import keras

from tfmodels.layers.class_token import ClassToken
from tfmodels.layers.grid_position_embedding import GridPositionEmbedding
from tfmodels.layers.preprocessing import imagenet_standardization, tf_preprocessing
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock
from tfmodels.models.keras_applications import check_weights

LAYER_NORM_EPSILON = 1e-6  # the paper's code, keras-hub's ViTBackbone
POOLINGS = ("token", "gap")
NORMALIZATIONS = {"tf": tf_preprocessing, "torch": imagenet_standardization}

# Encoder sizes by variant. b16, s16: the paper's ViT-B/16 (Table 1) and ViT-S/16 (DeiT-S, Touvron
# et al. 2021; Steiner et al. 2021); tiny: notes-001.md §24's CPU configuration (32², patch 4).
VIT_CONFIGS = {
    "b16": dict(image_size=224, patch_size=16, hidden_dim=768, num_layers=12, num_heads=12, mlp_dim=3072),
    "s16": dict(image_size=224, patch_size=16, hidden_dim=384, num_layers=12, num_heads=6, mlp_dim=1536),
    "tiny": dict(image_size=32, patch_size=4, hidden_dim=64, num_layers=4, num_heads=4, mlp_dim=128),
}
# keras-hub's ImageNet-1k fine-tuned ViT-B/16 at 224² (Kaggle handle keras/vit/keras/vit_base_patch16_224_imagenet)
B16_IMAGENET_PRESET = "vit_base_patch16_224_imagenet"


def vit_config(variant: str) -> dict:
    """The encoder configuration of a named variant: keyword arguments of :func:`build_vit`.

    Args:
        variant: ``"b16"`` (ViT-B/16, paper default), ``"s16"`` (ViT-S/16) or ``"tiny"``
            (notes-001.md §24's CPU configuration: 32², patch 4, D 64, 4 layers, 4 heads, MLP 128).

    Returns:
        A new dict with ``image_size``, ``patch_size``, ``hidden_dim``, ``num_layers``,
        ``num_heads`` and ``mlp_dim``.

    Example:
        >>> vit_config("b16")["hidden_dim"], vit_config("tiny")["patch_size"]
        (768, 4)
    """
    if variant not in VIT_CONFIGS:
        raise ValueError(f"unknown ViT variant {variant!r}; choose from {sorted(VIT_CONFIGS)}")
    return dict(VIT_CONFIGS[variant])


def _embed_patches(pixels, image_size, patch_size, hidden_dim, pooling, dropout, normalization):
    """Pixels → the encoder's input sequence ``[B, (1 +) h·w, D]`` (paper eq. 1)."""
    x = pixels if normalization is None else NORMALIZATIONS[normalization](name="preprocess")(pixels)
    x = keras.layers.Conv2D(hidden_dim, patch_size, strides=patch_size, padding="valid", name="patch_projection")(x)
    positions = GridPositionEmbedding(grid_size=image_size // patch_size, name="position_embedding")(x)
    x = keras.layers.Add(name="add_position_embedding")([x, positions])
    x = keras.layers.Reshape((-1, hidden_dim), name="flatten_patches")(x)
    if pooling == "token":
        x = ClassToken(name="class_token")(x)
    return keras.layers.Dropout(dropout, name="embedding_dropout")(x)


def _encode(x, num_layers, num_heads, mlp_dim, dropout, layer_norm_epsilon):
    """The pre-LN Transformer encoder (paper eq. 2-4) and its final LayerNorm."""
    for i in range(num_layers):
        x = TransformerEncoderBlock(
            num_heads=num_heads,
            intermediate_dim=mlp_dim,
            dropout=dropout,
            attention_dropout=0.0,
            activation="gelu",
            layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=True,
            name=f"encoder_block_{i}",
        )(x)
    return keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="encoder_norm")(x)


def _classify(sequence, num_classes, pooling):
    """Class-token output (``"token"``) or the mean of all tokens (``"gap"``) → linear head."""
    if pooling == "token":
        pooled = sequence[:, 0]
    else:
        pooled = keras.layers.GlobalAveragePooling1D(name="pool")(sequence)
    return keras.layers.Dense(num_classes, kernel_initializer="zeros", dtype="float32", name="head")(pooled)


def build_vit(
    num_classes: int = 1000,
    input_shape=(None, None, 3),
    image_size: int = 224,
    patch_size: int = 16,
    hidden_dim: int = 768,
    num_layers: int = 12,
    num_heads: int = 12,
    mlp_dim: int = 3072,
    dropout: float = 0.0,
    pooling: str = "token",
    include_top: bool = True,
    normalization: str | None = "tf",
    layer_norm_epsilon: float = LAYER_NORM_EPSILON,
    name: str = "vit",
) -> keras.Model:
    """Builds a Vision Transformer on raw pixels.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels 0..255, channels-last; height and width may be ``None`` (any
            size; a side that is not a multiple of ``patch_size`` loses its remainder, as a
            "valid" convolution does).
        image_size: the (square) training size; the position table has
            ``image_size // patch_size`` cells per side and is resized for other grids.
        patch_size: side of the square patches (16 in ViT-B/16).
        hidden_dim: model width D (a multiple of ``num_heads``).
        num_layers: encoder blocks L.
        num_heads: attention heads per block.
        mlp_dim: hidden width of each block's MLP.
        dropout: rate after the position embeddings and on every block's sub-layer outputs.
        pooling: ``"token"`` (a class token, its output feeds the head; the paper's default) or
            ``"gap"`` (no class token; the head reads the mean of the patch outputs).
        include_top: logits ``[B, num_classes]``; else the ``encoder_norm`` sequence
            ``[B, 1 + N, D]`` (``[B, N, D]`` with ``"gap"``), keras-hub ``ViTBackbone``'s output.
        normalization: the first layer, ``preprocess``: ``"tf"`` (x / 127.5 − 1, the mapping of
            keras-hub's ViT presets, so ours matches them on the same pixels), ``"torch"``
            (ImageNet mean and std) or ``None`` (no layer: the input is already normalised).
        layer_norm_epsilon: of every LayerNorm (1e-6, the paper's code and keras-hub's).
        name: model name.

    Returns:
        A functional ``keras.Model`` with the layer names of the module docstring.

    Example:
        >>> model = build_vit(10, input_shape=(32, 32, 3), **vit_config("tiny"))
        >>> model.output_shape, model.get_layer("encoder_block_3").output.shape
        ((None, 10), (None, 65, 64))
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be None or one of {sorted(NORMALIZATIONS)}, got {normalization!r}")
    pixels = keras.Input(input_shape, name="pixels")
    x = _embed_patches(pixels, image_size, patch_size, hidden_dim, pooling, dropout, normalization)
    x = _encode(x, num_layers, num_heads, mlp_dim, dropout, layer_norm_epsilon)
    if include_top:
        x = _classify(x, num_classes, pooling)
    return keras.Model(pixels, x, name=name)


def vit_b16(
    num_classes: int = 1000,
    input_shape=(None, None, 3),
    include_top: bool = True,
    weights: str | None = None,
    pooling: str = "token",
    dropout: float = 0.0,
    image_size: int = 224,
) -> keras.Model:
    """ViT-B/16 (paper default): 224², patch 16, D 768, 12 layers, 12 heads, MLP 3072.

    86,567,656 parameters with the 1000-class head, 85,798,656 without (keras-hub's
    ``ViTBackbone`` count). The position table stays 14x14 (``image_size // 16``) whatever
    ``input_shape`` is, so ImageNet weights load at every input size and are resized there.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels 0..255; ``None`` sides take any size.
        include_top: logits, or the ``encoder_norm`` sequence.
        weights: ``None`` (random) or ``"imagenet"``: keras-hub's ``vit_base_patch16_224_imagenet``
            preset (needs the network and keras-hub once; the top needs ``num_classes=1000``,
            ``pooling="token"`` and ``image_size=224``).
        pooling: ``"token"`` or ``"gap"`` (see :func:`build_vit`).
        dropout: see :func:`build_vit` (the paper: 0.1 training on ImageNet, 0 fine-tuning).
        image_size: the training size that sets the position grid.

    Example:
        >>> vit_b16().count_params()
        86567656
    """
    check_weights(weights)
    if weights == "imagenet":
        return _imagenet_b16(num_classes, input_shape, include_top, pooling, dropout, image_size)
    return build_vit(
        num_classes, input_shape, **{**vit_config("b16"), "image_size": image_size},
        dropout=dropout, pooling=pooling, include_top=include_top, name="vit_b16",
    )


def vit_tiny(
    num_classes: int = 10,
    input_shape=(None, None, 3),
    include_top: bool = True,
    weights: str | None = None,
    pooling: str = "token",
    dropout: float = 0.0,
    image_size: int = 32,
) -> keras.Model:
    """The tiny CPU ViT of notes-001.md §24: 32², patch 4 (8x8 grid), D 64, 4 layers, 4 heads, MLP 128.

    Args:
        num_classes: number of logits.
        input_shape: raw RGB pixels 0..255; ``None`` sides take any size.
        include_top: logits, or the ``encoder_norm`` sequence.
        weights: ``None`` only (there are no published weights; ``"imagenet"`` raises).
        pooling: ``"token"`` or ``"gap"`` (see :func:`build_vit`).
        dropout: see :func:`build_vit`.
        image_size: the training size that sets the position grid (``image_size // 4`` a side).

    Example:
        >>> vit_tiny(num_classes=10, input_shape=(32, 32, 3)).output_shape
        (None, 10)
    """
    check_weights(weights)
    if weights == "imagenet":
        raise ValueError("the tiny ViT has no ImageNet weights; use weights=None")
    return build_vit(
        num_classes, input_shape, **{**vit_config("tiny"), "image_size": image_size},
        dropout=dropout, pooling=pooling, include_top=include_top, name="vit_tiny",
    )


def _imagenet_b16(num_classes, input_shape, include_top, pooling, dropout, image_size) -> keras.Model:
    if include_top and num_classes != 1000:
        raise ValueError(f"the ImageNet head has 1000 classes, got num_classes={num_classes}; use include_top=False")
    if pooling != "token" or image_size != 224:
        raise ValueError(
            "the ImageNet ViT-B/16 has a class token and a 14x14 position grid: pooling='token', image_size=224"
        )
    # imported here: keras-hub is a development dependency, needed only for this online path
    from tfmodels.models.vit_keras_hub import from_keras_hub_preset

    return from_keras_hub_preset(
        B16_IMAGENET_PRESET, include_top=include_top, input_shape=input_shape, dropout=dropout, name="vit_b16"
    )
