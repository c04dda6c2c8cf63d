"""Copies keras-hub's BERT weights (``BertBackbone``, ``BertMaskedLM``) into this zoo's BERT.

Design handbook, non-negotiable 5: where keras-hub has the architecture, ours loads its weights
and gives the same outputs. The copy goes layer by layer through the named parts of both models
(keras-hub's sub-layer attributes, our layer names), never by weight index, and every variable's
shape is checked, so a size mismatch fails with the name of the part.

keras-hub is a development dependency only: nothing here imports it; the keras-hub models are
passed in (built with ``keras_hub.models.BertBackbone(...)`` or ``.from_preset(...)``).
``BertMaskedLM`` has no next-sentence head, so ours keeps its initial NSP weights.
"""

from __future__ import annotations

import keras

from tfmodels.models.bert import BertPretrainer


def _pairs(part: str, source: list, target: list) -> list[tuple]:
    """(keras-hub variable, our variable) pairs of one part, after checking their number and shapes."""
    if len(source) != len(target):
        raise ValueError(f"{part}: keras-hub has {len(source)} weights, ours has {len(target)}")
    for src, dst in zip(source, target):
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
                f"{part}: keras-hub weight {src.path} has shape {tuple(src.shape)}, ours {dst.path} has {tuple(dst.shape)}"
            )
    return list(zip(source, target))


def _layer_pairs(part: str, source: keras.layers.Layer, target: keras.layers.Layer) -> list[tuple]:
    # Within one layer type both sides list their variables in creation order (kernel, bias;
    # gamma, beta; MultiHeadAttention's query, key, value, output), so pairing them is safe.
    return _pairs(part, source.weights, target.weights)


def _encoder_pairs(hub, our_encoder: keras.Model) -> list[tuple]:
    blocks = [layer for layer in our_encoder.layers if layer.name.startswith("transformer_layer_")]
    if len(hub.transformer_layers) != len(blocks):
        raise ValueError(
            f"keras-hub BertBackbone has {len(hub.transformer_layers)} transformer layers, our encoder has {len(blocks)}"
        )
    pairs = _pairs("token_embedding", [hub.token_embedding.embeddings], [our_encoder.get_layer("token_embedding").embeddings])
    pairs += _pairs(
        "position_embedding",
        [hub.position_embedding.position_embeddings],
        [our_encoder.get_layer("position_embedding").embeddings],
    )
    pairs += _layer_pairs("segment_embedding", hub.segment_embedding, our_encoder.get_layer("segment_embedding"))
    pairs += _layer_pairs("embeddings_layer_norm", hub.embeddings_layer_norm, our_encoder.get_layer("embeddings_layer_norm"))
    for i, (source, target) in enumerate(zip(hub.transformer_layers, blocks)):
        for hub_part, our_part in [
            ("_self_attention_layer", "self_attention"),
            ("_self_attention_layer_norm", "self_attention_layer_norm"),
            ("_feedforward_intermediate_dense", "feedforward_intermediate_dense"),
            ("_feedforward_output_dense", "feedforward_output_dense"),
            ("_feedforward_layer_norm", "feedforward_layer_norm"),
        ]:
            pairs += _layer_pairs(f"transformer_layer_{i}/{our_part}", getattr(source, hub_part), getattr(target, our_part))
    return pairs + _layer_pairs("pooled_dense", hub.pooled_dense, our_encoder.get_layer("pooled_dense"))


def _assign(pairs: list[tuple]) -> None:
    # Called only once every pair has been checked, so a mismatch leaves our model untouched.
    for source, target in pairs:
        target.assign(source)


def copy_keras_hub_bert_weights(keras_hub_backbone, our_encoder: keras.Model) -> None:
    """Copies a ``keras_hub.models.BertBackbone``'s weights into :func:`build_bert_encoder`'s model.

    Both models must have the same sizes (vocabulary, layers, width, FFN width, positions,
    segments). Afterwards both give the same ``sequence_output`` and ``pooled_output`` when our
    encoder uses the tanh GELU and LayerNorm ε 1e-12 (the builder's defaults).

    Args:
        keras_hub_backbone: the keras-hub model (random or pre-trained weights).
        our_encoder: a model from :func:`tfmodels.models.bert.build_bert_encoder`; modified in place.

    Raises:
        ValueError: on a different number of layers or any weight of a different shape, naming it;
            every shape is checked before the first weight is assigned, so ``our_encoder`` is then
            unchanged.

    Example:
        >>> import keras_hub  # doctest: +SKIP
        >>> from tfmodels.models.bert import PAPER_VOCABULARY_SIZE, PRESETS, build_bert_encoder  # doctest: +SKIP
        >>> hub = keras_hub.models.BertBackbone.from_preset("bert_base_en_uncased")  # doctest: +SKIP
        >>> ours = build_bert_encoder(PAPER_VOCABULARY_SIZE, **PRESETS["paper"])  # doctest: +SKIP
        >>> copy_keras_hub_bert_weights(hub, ours)  # doctest: +SKIP
    """
    _assign(_encoder_pairs(keras_hub_backbone, our_encoder))


def copy_keras_hub_bert_masked_lm_weights(keras_hub_masked_lm, our_pretrainer: BertPretrainer) -> None:
    """Copies a ``keras_hub.models.BertMaskedLM`` (backbone + MLM head) into a :class:`BertPretrainer`.

    The encoder is copied as by :func:`copy_keras_hub_bert_weights`; the MLM head's Dense, LayerNorm
    and output bias follow (its output matrix is the tied token embedding on both sides).
    keras-hub has no NSP head, so ``nsp_head`` is left as it is. With the builder's defaults
    (exact GELU and LayerNorm ε 1e-5 in the head, as keras-hub) ``mlm_logits`` equal keras-hub's
    output.

    Args:
        keras_hub_masked_lm: the keras-hub task model.
        our_pretrainer: a model from :func:`tfmodels.models.bert.build_bert_pretraining`; modified
            in place.

    Raises:
        ValueError: as :func:`copy_keras_hub_bert_weights`, or when keras-hub's head has an untied
            output matrix (ours is always tied).
    """
    source = keras_hub_masked_lm.masked_lm_head
    if source.token_embedding is None or not getattr(source.token_embedding, "tie_weights", True):
        raise ValueError("keras-hub's masked-LM head has its own output kernel; ours is tied to the token embedding")
    target = our_pretrainer.get_layer("mlm_head")
    pairs = _encoder_pairs(keras_hub_masked_lm.backbone, our_pretrainer.encoder)
    pairs += _layer_pairs("mlm_head/dense", source._intermediate_dense, target.dense)
    pairs += _layer_pairs("mlm_head/layer_norm", source._intermediate_layer_norm, target.layer_norm)
    _assign(pairs + _pairs("mlm_head/output_bias", [source._bias], [target.output_bias]))
