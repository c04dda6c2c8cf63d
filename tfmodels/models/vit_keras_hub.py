"""Converts keras-hub's ``ViTBackbone`` / ``ViTImageClassifier`` into this zoo's ViT, weights included.

Design handbook, non-negotiable 5: where keras-hub has the architecture, ours loads its weights and
gives the same outputs; issue 15 item 1. The result is :func:`~tfmodels.models.vit.build_vit`'s
model, which, unlike keras-hub's (fixed ``image_shape``), runs at any image size.

Weight mapping, keras-hub part → our layer (every shape is checked before the first assignment):

- ``vit_patching_and_embedding.patch_embedding`` (Conv2D) → ``patch_projection``;
- ``vit_patching_and_embedding.position_embedding`` rows ``1..N`` → ``position_embedding``
  reshaped to ``[g, g, D]`` (row ``1 + i·g + j`` is grid cell ``(i, j)``: both models flatten the
  patch grid row-major), row 0 → ``class_token.position_embedding``;
- ``vit_patching_and_embedding.class_token`` → ``class_token.token``;
- ``vit_encoder.encoder_layers[i]``: ``layer_norm_1`` → ``encoder_block_{i}.self_attention_layer_norm``,
  ``mha`` → ``self_attention``, ``layer_norm_2`` → ``feedforward_layer_norm``, ``mlp.dense_1`` →
  ``feedforward_intermediate_dense``, ``mlp.dense_2`` → ``feedforward_output_dense``;
- ``vit_encoder.layer_norm`` → ``encoder_norm``;
- ``ViTImageClassifier.output_dense`` → ``head``.

keras-hub's block is ours with ``normalize_first=True``, exact GELU and LayerNorm ε 1e-6; its MLP
also drops out between its two dense layers, which matters only in training. The pixel mapping
comes from the classifier's image converter (``scale``, ``offset``): ``x / 127.5 − 1`` (the ViT
presets) becomes our ``"tf"`` preprocessing, ImageNet mean/std our ``"torch"``; the converter's
resize is not copied (our serving resizes, and the model takes any size).

keras-hub is a development dependency: only :func:`from_keras_hub_preset` imports it.
"""

from __future__ import annotations

import keras
import numpy as np

from tfmodels.layers.preprocessing import IMAGENET_RGB_MEAN, IMAGENET_RGB_STD
from tfmodels.models.vit import build_vit

# converter (scale, offset) on 0..255 pixels -> our normalization name
_PIXEL_MAPPINGS = {
    "tf": (1 / 127.5, -1.0),
    "torch": (1 / (255.0 * np.array(IMAGENET_RGB_STD)), -np.array(IMAGENET_RGB_MEAN) / np.array(IMAGENET_RGB_STD)),
}


def _split(source):
    """(backbone, classifier or None) of a ``ViTBackbone`` or ``ViTImageClassifier``."""
    backbone = getattr(source, "backbone", None)
    return (source, None) if backbone is None else (backbone, source)


def _normalization(classifier, default):
    converter = getattr(getattr(classifier, "preprocessor", None), "image_converter", None)
    if converter is None or (converter.scale is None and converter.offset is None):
        return default
    scale = 1.0 if converter.scale is None else np.asarray(converter.scale, "float64")
    offset = 0.0 if converter.offset is None else np.asarray(converter.offset, "float64")
    for name, (our_scale, our_offset) in _PIXEL_MAPPINGS.items():
        if np.allclose(scale, our_scale, rtol=1e-5) and np.allclose(offset, our_offset, rtol=1e-5, atol=1e-6):
            return name
    raise ValueError(
        f"keras-hub's image converter maps pixels by scale={converter.scale}, offset={converter.offset}; "
        f"ours knows {sorted(_PIXEL_MAPPINGS)}"
    )


def _check_convertible(backbone, classifier) -> None:
    height, width = backbone.image_shape[:2]
    patch_h, patch_w = backbone.patch_size
    problems = [
        (backbone.data_format != "channels_last", f"data_format={backbone.data_format!r} (ours is channels_last)"),
        (
            height != width or patch_h != patch_w,
            f"image_shape={backbone.image_shape}, patch_size={backbone.patch_size} (ours are square)",
        ),
        (
            not (backbone.use_mha_bias and backbone.use_mlp_bias and backbone.use_patch_bias),
            "a layer without biases (ours have them)",
        ),
    ]
    if classifier is not None:
        problems += [
            (classifier.intermediate_dim is not None, "a pre-logits layer (intermediate_dim)"),
            (classifier.activation not in (None, "softmax", "linear"), f"output activation {classifier.activation!r}"),
            (
                classifier.pooling != ("token" if backbone.use_class_token else "gap"),
                f"pooling={classifier.pooling!r} with use_class_token={backbone.use_class_token} "
                "(ours: 'token' with a class token, 'gap' over the patches without one)",
            ),
        ]
    found = [message for failed, message in problems if failed]
    if found:
        raise ValueError("this keras-hub ViT does not convert: " + "; ".join(found))


def _layer(part: str, source: keras.layers.Layer, target: keras.layers.Layer) -> list[tuple]:
    # Both sides list a layer type's variables in creation order (kernel, bias; gamma, beta;
    # MultiHeadAttention's query, key, value, output), so pairing them in order is safe.
    if len(source.weights) != len(target.weights):
        raise ValueError(f"{part}: keras-hub has {len(source.weights)} weights, ours has {len(target.weights)}")
    return [(part, dst, keras.ops.convert_to_numpy(src)) for src, dst in zip(source.weights, target.weights)]


def _embedding_assignments(backbone, ours: keras.Model) -> list[tuple]:
    embedding = backbone.get_layer("vit_patching_and_embedding")
    table = keras.ops.convert_to_numpy(embedding.position_embedding.embeddings)
    our_table = ours.get_layer("position_embedding").embeddings
    assignments = _layer("patch_projection", embedding.patch_embedding, ours.get_layer("patch_projection"))
    if backbone.use_class_token:
        token = ours.get_layer("class_token")
        assignments += [
            ("class_token.token", token.token, keras.ops.convert_to_numpy(embedding.class_token).reshape(-1)),
            ("class_token.position_embedding", token.position_embedding, table[0]),
        ]
        table = table[1:]
    return assignments + [("position_embedding", our_table, table.reshape(our_table.shape))]


def _encoder_assignments(backbone, ours: keras.Model) -> list[tuple]:
    encoder = backbone.get_layer("vit_encoder")
    assignments = []
    for i, block in enumerate(encoder.encoder_layers):
        target = ours.get_layer(f"encoder_block_{i}")
        for source_part, our_part in [
            (block.layer_norm_1, "self_attention_layer_norm"),
            (block.mha, "self_attention"),
            (block.layer_norm_2, "feedforward_layer_norm"),
            (block.mlp.dense_1, "feedforward_intermediate_dense"),
            (block.mlp.dense_2, "feedforward_output_dense"),
        ]:
            assignments += _layer(f"encoder_block_{i}/{our_part}", source_part, getattr(target, our_part))
    return assignments + _layer("encoder_norm", encoder.layer_norm, ours.get_layer("encoder_norm"))


def _assign(assignments: list[tuple]) -> None:
    for part, target, value in assignments:
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"{part}: keras-hub weight has shape {tuple(value.shape)}, ours {target.path} has {tuple(target.shape)}"
            )
    for _, target, value in assignments:  # only once every shape is known to fit
        target.assign(value)


def from_keras_hub(
    source,
    include_top: bool | None = None,
    input_shape=(None, None, 3),
    normalization: str | None = "tf",
    dropout: float = 0.0,
    name: str = "vit",
) -> keras.Model:
    """Our ViT with the weights of a ``keras_hub.models.ViTBackbone`` or ``ViTImageClassifier``.

    Args:
        source: the keras-hub model (random or pre-trained weights). A classifier must have no
            pre-logits layer, ``pooling="token"`` (``"gap"`` when its backbone has no class token)
            and no output activation but softmax (ours returns the logits before it).
        include_top: keep the classifier's head; ``None`` means "when ``source`` is a classifier".
            A backbone converts only with ``include_top`` False or ``None``.
        input_shape: our model's input (any size: the position grid is resized).
        normalization: our ``preprocess`` layer (see :func:`~tfmodels.models.vit.build_vit`) when
            ``source`` has no image converter with a ``scale``/``offset``; with one, that mapping
            decides (``x / 127.5 − 1`` → ``"tf"``, ImageNet mean/std → ``"torch"``).
        dropout: our dropout rate (keras-hub's training-time rates are not copied).
        name: our model's name.

    Returns:
        :func:`~tfmodels.models.vit.build_vit`'s model: at keras-hub's image size and on the same
        normalised pixels, the ``encoder_norm`` sequence equals the backbone's output and the
        logits equal the classifier's (float32 round-off); the parameter count is keras-hub's.

    Raises:
        ValueError: an architecture ours does not have (non-square, no biases, another pooling,
            a pre-logits layer, an unknown pixel mapping) or a weight of another shape, named;
            nothing is assigned before every shape has been checked.

    Example:
        >>> import keras_hub  # doctest: +SKIP
        >>> hub = keras_hub.models.ViTImageClassifier.from_preset("vit_base_patch16_224_imagenet")  # doctest: +SKIP
        >>> ours = from_keras_hub(hub)  # logits on raw 0..255 pixels of any size  # doctest: +SKIP
    """
    backbone, classifier = _split(source)
    include_top = classifier is not None if include_top is None else include_top
    if include_top and classifier is None:
        raise ValueError("a ViTBackbone has no head: pass a ViTImageClassifier or include_top=False")
    _check_convertible(backbone, classifier)
    ours = build_vit(
        num_classes=classifier.num_classes if include_top else 1000,
        input_shape=input_shape,
        image_size=backbone.image_shape[0],
        patch_size=backbone.patch_size[0],
        hidden_dim=backbone.hidden_dim,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        mlp_dim=backbone.mlp_dim,
        dropout=dropout,
        pooling="token" if backbone.use_class_token else "gap",
        include_top=include_top,
        normalization=_normalization(classifier, normalization),
        layer_norm_epsilon=backbone.layer_norm_epsilon,
        name=name,
    )
    assignments = _embedding_assignments(backbone, ours) + _encoder_assignments(backbone, ours)
    if include_top:
        assignments += _layer("head", classifier.output_dense, ours.get_layer("head"))
    _assign(assignments)
    return ours


def from_keras_hub_preset(preset: str, include_top: bool = True, **kwargs) -> keras.Model:
    """Loads a keras-hub ``ViTImageClassifier`` preset (online, or a local preset folder) and converts it.

    Args:
        preset: a keras-hub preset name (e.g. ``"vit_base_patch16_224_imagenet"``, downloaded
            from Kaggle and cached by keras-hub) or the path of a saved preset folder.
        include_top: keep the ImageNet head.
        **kwargs: :func:`from_keras_hub`'s ``input_shape``, ``normalization``, ``dropout``, ``name``.

    Returns:
        As :func:`from_keras_hub`.

    Example:
        >>> ours = from_keras_hub_preset("vit_base_patch16_224_imagenet")  # doctest: +SKIP
    """
    import keras_hub

    classifier = keras_hub.models.ViTImageClassifier.from_preset(preset)
    return from_keras_hub(classifier, include_top=include_top, **kwargs)
