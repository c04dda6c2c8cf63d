"""BERT (Devlin et al. 2019): a Transformer encoder pre-trained by masked-token and next-sentence prediction.

Specs: notes-002-part2.md §54 (seed 002 L3838-3875: self-supervision, masked tokens predicted
through a linear map + softmax and cross-entropy, [CLS] output for next-sentence prediction,
fine-tuning with a new classifier on [CLS]; the "2." numbering of the first objective at L3850 is a
slip) and notes-001.md §25 (seed 001 L633-673: sentence pairs, segment embeddings, learned
position embeddings, 15% masking with 80/10/10, NSP 50/50 — the masking lives in the text
pipeline); the encoder blocks are notes-002-part2.md §49-§52
(:class:`tfmodels.layers.transformer_encoder.TransformerEncoderBlock`).

Everything the notes leave open is the paper's / google-research/bert's choice (paper default),
laid out as keras-hub's ``BertBackbone`` and ``BertMaskedLM`` so that their weights copy over
(:mod:`tfmodels.models.bert_keras_hub`) and give the same outputs:

- embeddings: token + learned position + segment, summed → LayerNorm (ε 1e-12) → dropout;
- ``num_layers`` post-LN encoder blocks, GELU (tanh approximation, as google-research/bert's
  ``modeling.gelu`` and keras-hub), ε 1e-12, dropout 0.1 on attention probabilities and sub-layers;
- pooler: ``tanh(Dense(H))`` on the [CLS] (first) position;
- masked-LM head: gather the encoder output at ``mask_positions`` → Dense(H) → GELU →
  LayerNorm → logits through the *transposed token embedding* (tied, no separate V×H matrix)
  + an output bias of size V. keras-hub's ``BertMaskedLM`` uses the exact (erf) GELU and
  LayerNorm ε 1e-5 here, and so do the defaults below (google-research/bert: tanh GELU, 1e-12);
- next-sentence head: Dense(2) on the pooled output (logits; which class means "B follows A" is
  the pipeline's choice);
- weights: truncated normal, stddev 0.02 (BERT's ``initializer_range``); biases zero.

Where the notes' d2l reference differs (ReLU in the MLM head, an untied Dense(V) output), BERT's
choice is kept, as keras-hub does.

Compiling a pre-training model (standard Keras losses, keyed by output name; labels
``{"mlm_logits": mlm_labels [B,P], "nsp_logits": nsp_label [B]}``, sample weights
``{"mlm_logits": mlm_weights [B,P], "nsp_logits": ones [B]}`` with ``mlm_weights`` 0 for padded
prediction slots — Keras wants a weight entry for every output once one has weights)::

    from tfmodels.metrics.perplexity import Perplexity

    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        loss={
            # mean over the real masked tokens, as BERT (sum(w·CE) / sum(w))
            "mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "nsp_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        # weighted_metrics, not metrics: only they see the sample weights
        weighted_metrics={"mlm_logits": [Perplexity(), keras.metrics.SparseCategoricalAccuracy()]},
        metrics={"nsp_logits": [keras.metrics.SparseCategoricalAccuracy()]},
    )
    model.fit(dataset)  # elements: (x, y, sample_weight), each a dict keyed as above

The total loss is MLM + NSP (unit weights, paper default). ``model.encoder`` (also
``model.get_layer("bert_encoder")``) is the encoder, ready to be reused by a classifier.
"""

from __future__ import annotations

import keras
from keras import ops

from tfmodels.layers.position_embedding import PositionEmbedding
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock, gelu_approximate

LAYER_NORM_EPSILON = 1e-12  # google-research/bert and keras-hub BertBackbone
MLM_LAYER_NORM_EPSILON = 1e-5  # keras-hub BertMaskedLM's head (MaskedLMHead's default)
INITIALIZER_RANGE = 0.02  # stddev of BERT's truncated-normal initializer (paper default)
PAPER_VOCABULARY_SIZE = 30522  # BERT-base uncased WordPiece vocabulary (paper default)

# Architecture presets: builder kwargs without the vocabulary size, which comes from the tokenizer
# (PAPER_VOCABULARY_SIZE for the published BERT-base), e.g.
# ``build_bert_pretraining(vocabulary_size=tokenizer.vocabulary_size(), **PRESETS["tiny"])``.
PRESETS = {
    # the tests' size (notes-002-part2 §54's tiny CPU config: 2 layers, hidden 32, 2 heads).
    "tiny": {"num_layers": 2, "hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64, "max_sequence_length": 64},
    # A run that learns on 2 CPU cores: one Adam step at batch 32, length 128, 20 predictions,
    # V 8192 measured 1.25 s on a loaded 2-core machine (H=256, A=4, FFN 1024: 2.7 s), i.e. about
    # 30 s per epoch of 100k tokens. Turc et al. 2019's small-BERT grid: A = H/64, FFN = 4H.
    "default": {"num_layers": 4, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512, "max_sequence_length": 128},
    # BERT-base (paper default): L=12, H=768, A=12, FFN 3072, 512 positions, 2 segments.
    "paper": {"num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072, "max_sequence_length": 512},
}


def _initializer():
    # A new instance per layer: one unseeded initializer called twice repeats its values.
    return keras.initializers.TruncatedNormal(stddev=INITIALIZER_RANGE)


def build_bert_encoder(
    vocabulary_size: int,
    num_layers: int,
    hidden_dim: int,
    num_heads: int,
    intermediate_dim: int,
    max_sequence_length: int,
    num_segments: int = 2,
    dropout: float = 0.1,
    activation=gelu_approximate,
    layer_norm_epsilon: float = LAYER_NORM_EPSILON,
    name: str = "bert_encoder",
) -> keras.Model:
    """Builds the BERT encoder (keras-hub ``BertBackbone``'s layout and inputs/outputs).

    Inputs (a dict; int32, ``[B, L]`` with any ``L ≤ max_sequence_length``):
        ``token_ids``: token ids, ``[CLS] A [SEP] B [SEP]`` then padding.
        ``segment_ids``: 0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``, anything in range on padding.
        ``padding_mask``: 1 for real tokens, 0 for padding (padding is never attended to).

    Outputs (a dict; float32):
        ``sequence_output``: ``[B, L, H]``, the last block's output at every position.
        ``pooled_output``: ``[B, H]``, ``tanh(Dense(H))`` of the [CLS] (position 0) output.

    Args:
        vocabulary_size: V, rows of the token embedding.
        num_layers: encoder blocks L (12 in BERT-base).
        hidden_dim: model width H (768).
        num_heads: attention heads A (12); must divide ``hidden_dim``.
        intermediate_dim: FFN width (3072 = 4H).
        max_sequence_length: rows of the learned position embedding (512).
        num_segments: rows of the segment embedding (2: sentences A and B).
        dropout: rate on the embeddings, the attention probabilities and every sub-layer (0.1).
        activation: FFN activation; the default tanh-approximated GELU matches google-research/bert
            and keras-hub; ``"gelu"`` is the exact (erf) form.
        layer_norm_epsilon: epsilon of every LayerNorm (1e-12).
        name: model name (a pre-training model finds its encoder by it).

    Example:
        >>> import numpy as np
        >>> encoder = build_bert_encoder(100, num_layers=2, hidden_dim=32, num_heads=2,
        ...                              intermediate_dim=64, max_sequence_length=16)
        >>> ids = np.array([[2, 5, 6, 3, 0]], "int32")
        >>> out = encoder({"token_ids": ids, "segment_ids": np.zeros_like(ids),
        ...                "padding_mask": (ids > 0).astype("int32")})
        >>> out["sequence_output"].shape, out["pooled_output"].shape
        (TensorShape([1, 5, 32]), TensorShape([1, 32]))
    """
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")

    tokens = keras.layers.Embedding(
        vocabulary_size, hidden_dim, embeddings_initializer=_initializer(), name="token_embedding"
    )(token_ids)
    positions = PositionEmbedding(max_sequence_length, initializer=_initializer(), name="position_embedding")(tokens)
    segments = keras.layers.Embedding(
        num_segments, hidden_dim, embeddings_initializer=_initializer(), name="segment_embedding"
    )(segment_ids)
    x = keras.layers.Add(name="embeddings_add")([tokens, positions, segments])
    x = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="embeddings_layer_norm")(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    for i in range(num_layers):
        x = TransformerEncoderBlock(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=_initializer(),
            name=f"transformer_layer_{i}",
        )(x, padding_mask=padding_mask)
    pooled = keras.layers.Dense(hidden_dim, activation="tanh", kernel_initializer=_initializer(), name="pooled_dense")(
        x[:, 0, :]  # [CLS]
    )
    return keras.Model(
        inputs={"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
        outputs={"sequence_output": x, "pooled_output": pooled},
        name=name,
    )


def bert_encoder_params(
    vocabulary_size: int,
    num_layers: int,
    hidden_dim: int,
    intermediate_dim: int,
    max_sequence_length: int,
    num_segments: int = 2,
    **_unused,
) -> int:
    """Closed-form parameter count of :func:`build_bert_encoder` (pooler included).

    ``(V + P + S)·H + 2H`` (embeddings and their LayerNorm) ``+ L·(4(H² + H) + 2(H·F) + F + H + 4H)``
    (attention Q, K, V, O; FFN; two LayerNorms) ``+ H² + H`` (pooler). Extra keyword arguments (the
    rest of a preset: ``num_heads``, ``dropout``, ...) do not change the count and are ignored.

    Args:
        vocabulary_size: V.
        num_layers: L.
        hidden_dim: H.
        intermediate_dim: F.
        max_sequence_length: P.
        num_segments: S.

    Example:
        >>> bert_encoder_params(PAPER_VOCABULARY_SIZE, **PRESETS["paper"])  # BERT-base
        109482240
    """
    h, f = hidden_dim, intermediate_dim
    embeddings = (vocabulary_size + max_sequence_length + num_segments) * h + 2 * h
    block = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    return embeddings + num_layers * block + h * h + h


def bert_pretraining_params(vocabulary_size: int, hidden_dim: int, **encoder_kwargs) -> int:
    """Closed-form parameter count of :func:`build_bert_pretraining`.

    The encoder's count plus the MLM head (Dense H×H + H, LayerNorm 2H, output bias V; the output
    matrix is the tied token embedding, so it adds nothing) and the NSP head (2H + 2).

    Args:
        vocabulary_size: V.
        hidden_dim: H.
        **encoder_kwargs: the other arguments of :func:`bert_encoder_params`.
    """
    encoder = bert_encoder_params(vocabulary_size=vocabulary_size, hidden_dim=hidden_dim, **encoder_kwargs)
    mlm_head = hidden_dim * hidden_dim + hidden_dim + 2 * hidden_dim + vocabulary_size
    return encoder + mlm_head + 2 * hidden_dim + 2


@keras.saving.register_keras_serializable(package="tfmodels")
class BertMaskedLMHead(keras.layers.Layer):
    """BERT's masked-LM head with the output projection tied to the token embedding.

    ``logits = LayerNorm(act(Dense_H(gather(x, mask_positions)))) · Eᵀ + b`` where E is the
    encoder's token-embedding matrix ``[V, H]`` (the same variable, so training the head trains the
    embedding) and b a bias of size V (notes-002-part2.md §54: "a linear transform then softmax";
    the tying, Dense and LayerNorm are paper defaults).

    Args:
        token_embedding: the encoder's ``keras.layers.Embedding`` (``[V, H]``).
        activation: activation after the Dense (keras-hub: exact ``"gelu"``).
        layer_norm_epsilon: epsilon of the LayerNorm (keras-hub: 1e-5).
        kernel_initializer: initializer of the Dense kernel.

    Call args:
        sequence_output: ``[B, L, H]`` encoder output.
        mask_positions: ``[B, P]`` int32 positions to predict (padded slots may repeat any
            position; give them sample weight 0 in the loss).

    Returns:
        ``[B, P, V]`` logits.

    A serialised head (``get_config``) carries a copy of the embedding's config; built that way it
    owns a new, untied embedding. :class:`BertPretrainer` rebuilds its head from the encoder, so the
    tie survives ``.keras`` files.
    """

    def __init__(self, token_embedding, activation="gelu", layer_norm_epsilon=MLM_LAYER_NORM_EPSILON, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _initializer())
        hidden_dim = token_embedding.output_dim
        self.dense = keras.layers.Dense(
            hidden_dim, activation=self.activation, kernel_initializer=self.kernel_initializer, name="dense"
        )
        self.layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="layer_norm")

    def build(self, sequence_output_shape, mask_positions_shape=None):
        hidden_dim = self.token_embedding.output_dim
        self.dense.build((None, None, hidden_dim))
        self.layer_norm.build((None, None, hidden_dim))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.token_embedding.input_dim,), initializer="zeros")

    def call(self, sequence_output, mask_positions):
        gathered = ops.take_along_axis(sequence_output, ops.expand_dims(ops.cast(mask_positions, "int32"), -1), axis=1)
        # The logits are computed in float32 under any policy (Keras' mixed-precision rule for a last layer).
        x = ops.cast(self.layer_norm(self.dense(gathered)), "float32")
        embeddings = ops.cast(self.token_embedding.embeddings, "float32")
        return ops.matmul(x, ops.transpose(embeddings)) + ops.cast(self.output_bias, "float32")

    def compute_output_shape(self, sequence_output_shape, mask_positions_shape):
        return (*mask_positions_shape, self.token_embedding.input_dim)

    def compute_output_spec(self, sequence_output, mask_positions):
        shape = self.compute_output_shape(sequence_output.shape, mask_positions.shape)
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "token_embedding": keras.layers.serialize(self.token_embedding),
            "activation": keras.activations.serialize(self.activation),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }

    @classmethod
    def from_config(cls, config):
        config = {**config, "token_embedding": keras.layers.deserialize(config["token_embedding"])}
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfmodels")
class BertPretrainer(keras.Model):
    """An encoder with the masked-LM and next-sentence heads (a functional model).

    Inputs (a dict, int32): the encoder's ``token_ids``, ``segment_ids``, ``padding_mask``
    (``[B, L]``) and ``mask_positions`` (``[B, P]``, the positions whose original tokens are
    predicted).

    Outputs (a dict, float32): ``mlm_logits`` ``[B, P, V]`` and ``nsp_logits`` ``[B, 2]``.

    Args:
        encoder: a model from :func:`build_bert_encoder` (its weights are shared, not copied).
        mlm_activation: activation of the MLM head's Dense (keras-hub: exact ``"gelu"``).
        mlm_layer_norm_epsilon: epsilon of the MLM head's LayerNorm (keras-hub: 1e-5).
        name: model name.

    Attributes:
        encoder: the encoder (also ``model.get_layer(encoder.name)``), e.g. for a classifier that
            starts from pre-trained weights: ``classifier_encoder.set_weights(model.encoder.get_weights())``.
    """

    def __init__(self, encoder: keras.Model, mlm_activation="gelu", mlm_layer_norm_epsilon=MLM_LAYER_NORM_EPSILON, **kwargs):
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in encoder.input}
        inputs["mask_positions"] = keras.Input((None,), dtype="int32", name="mask_positions")
        encoded = encoder({name: inputs[name] for name in encoder.input})
        head = BertMaskedLMHead(
            encoder.get_layer("token_embedding"),
            activation=mlm_activation,
            layer_norm_epsilon=mlm_layer_norm_epsilon,
            name="mlm_head",
        )
        mlm_logits = head(encoded["sequence_output"], inputs["mask_positions"])
        nsp_logits = keras.layers.Dense(2, kernel_initializer=_initializer(), name="nsp_head", dtype="float32")(encoded["pooled_output"])
        super().__init__(inputs=inputs, outputs={"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}, **kwargs)
        self._encoder_name = encoder.name
        self.mlm_activation = keras.activations.get(mlm_activation)
        self.mlm_layer_norm_epsilon = mlm_layer_norm_epsilon

    @property
    def encoder(self) -> keras.Model:
        return self.get_layer(self._encoder_name)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "mlm_activation": keras.activations.serialize(self.mlm_activation),
            "mlm_layer_norm_epsilon": self.mlm_layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"), custom_objects=custom_objects)
        return cls(encoder=encoder, **config)


def build_bert_pretraining(
    vocabulary_size: int,
    num_layers: int,
    hidden_dim: int,
    num_heads: int,
    intermediate_dim: int,
    max_sequence_length: int,
    num_segments: int = 2,
    dropout: float = 0.1,
    activation=gelu_approximate,
    layer_norm_epsilon: float = LAYER_NORM_EPSILON,
    mlm_activation="gelu",
    mlm_layer_norm_epsilon: float = MLM_LAYER_NORM_EPSILON,
    name: str = "bert_pretraining",
) -> BertPretrainer:
    """Builds a fresh encoder (named ``"bert_encoder"``) with the MLM and NSP heads.

    Args:
        vocabulary_size, num_layers, hidden_dim, num_heads, intermediate_dim, max_sequence_length,
        num_segments, dropout, activation, layer_norm_epsilon: as :func:`build_bert_encoder`.
        mlm_activation: activation of the MLM head's Dense.
        mlm_layer_norm_epsilon: epsilon of the MLM head's LayerNorm.
        name: model name.

    Example:
        >>> import numpy as np
        >>> model = build_bert_pretraining(100, **PRESETS["tiny"])
        >>> ids = np.array([[2, 4, 7, 3, 9, 3, 0, 0]], "int32")
        >>> out = model({"token_ids": ids, "segment_ids": np.array([[0, 0, 0, 0, 1, 1, 0, 0]], "int32"),
        ...              "padding_mask": (ids > 0).astype("int32"), "mask_positions": np.array([[1, 4, 0]], "int32")})
        >>> out["mlm_logits"].shape, out["nsp_logits"].shape
        (TensorShape([1, 3, 100]), TensorShape([1, 2]))
    """
    encoder = build_bert_encoder(
        vocabulary_size,
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        max_sequence_length=max_sequence_length,
        num_segments=num_segments,
        dropout=dropout,
        activation=activation,
        layer_norm_epsilon=layer_norm_epsilon,
    )
    return BertPretrainer(encoder, mlm_activation=mlm_activation, mlm_layer_norm_epsilon=mlm_layer_norm_epsilon, name=name)
