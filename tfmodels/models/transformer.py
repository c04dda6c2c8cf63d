"""The encoder–decoder Transformer for translation (``transformer_mt``).

Specs: notes-002-part2.md §48 (sin/cos positional encoding added to the embeddings), §49
(encoder = n identical layers of multi-head self-attention and a position-wise FFN, each with Add
& Norm; multi-head attention = h scaled dot-product attentions on projected q, k, v, concatenated
and projected), §50 (masked — causal — self-attention in the decoder, L3755–3767), §51 (FFN),
§52 (post-LN ``LayerNorm(X + Sublayer(X))``), §53 (decoder block: masked self-attention, then
cross-attention whose queries are the decoder's and keys/values the encoder's output, then the
FFN; a final Dense gives the next-token logits); notes-001.md §8 (the Transformer as the modern
seq2seq). [REF d2l] details (paper default): embeddings scaled by ``√d_model`` before the
positional encoding, dropout after it, ReLU FFN, LayerNorm epsilon 1e-5 (PyTorch's).

* Encoder: :class:`~tfmodels.layers.transformer_encoder.TransformerEncoderBlock` (the post-LN block
  BERT uses) with ReLU and epsilon 1e-5; source padding is masked.
* Decoder: :class:`TransformerDecoderBlock` — causal self-attention (Keras ``use_causal_mask``),
  cross-attention over the encoder output with source padding masked, FFN, each followed by Add &
  Norm. Target padding needs no mask: padding comes after a row's real tokens, and the causal
  mask already hides later positions.
* Decoding (:func:`decoder_step`): every step re-runs the decoder on the whole prefix buffer and
  reads the logits at the current position (no key/value cache: O(T²) work per row, trivial at
  ``num_steps`` = 10, and the state that beam search reorders is just the prefix). Beam search,
  greedy search and temperature sampling are :mod:`tfmodels.models.beam_search`'s.

Parameters (:func:`parameter_count`): per encoder layer ``4(d² + d)`` (attention) ``+ 2 d·d_ff + d_ff + d``
(FFN) ``+ 4d`` (two LayerNorms); per decoder layer one more attention and LayerNorm; embeddings
``V·d``; the output layer ``d·V + V``. Transformer-base (Vaswani et al. 2017, paper default:
d 512, 8 heads, d_ff 2048, 6 + 6 layers) with one shared 37,000-token vocabulary and the
embedding tied to both inputs and the output (the paper's setting) has 63.1M parameters — the
paper's table says 65M. This builder keeps separate source and target embeddings and an untied
output layer (the zoo's tasks have two vocabularies), so at that size it would hold 101M.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfmodels.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock

LAYER_NORM_EPSILON = 1e-5  # PyTorch's default, as d2l's nn.LayerNorm


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerDecoderBlock(keras.layers.Layer):
    """One post-LN decoder layer (§50, §53): causal self-attention, cross-attention, FFN, each + Add & Norm.

    Args:
        num_heads: attention heads (``d_model`` must be a multiple).
        intermediate_dim: the FFN's hidden width ``d_ff``.
        dropout: on attention probabilities and on each sub-layer's output (paper default 0.1).

    Call arguments:
        inputs: ``[B, T, d]`` decoder states.
        memory: ``[B, S, d]`` the encoder's output.
        memory_mask: ``[B, S]`` boolean, True on real source tokens.

    Example:
        >>> block = TransformerDecoderBlock(2, 16)
        >>> block(tf.zeros([2, 3, 8]), tf.ones([2, 5, 8]), tf.sequence_mask([5, 2], 5)).shape
        TensorShape([2, 3, 8])
    """

    def __init__(self, num_heads: int, intermediate_dim: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.intermediate_dim, self.dropout = num_heads, intermediate_dim, dropout

    def build(self, inputs_shape, memory_shape=None, memory_mask_shape=None):
        d = inputs_shape[-1]
        if d % self.num_heads:
            raise ValueError(f"d_model {d} is not a multiple of num_heads {self.num_heads}")
        head = d // self.num_heads
        self.self_attention = keras.layers.MultiHeadAttention(self.num_heads, head, dropout=self.dropout, name="self_attention")
        self.cross_attention = keras.layers.MultiHeadAttention(self.num_heads, head, dropout=self.dropout, name="cross_attention")
        self.self_attention.build(inputs_shape, inputs_shape)
        self.cross_attention.build(inputs_shape, memory_shape)
        self.norms = [keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"norm_{i}") for i in range(3)]
        for norm in self.norms:
            norm.build(inputs_shape)
        self.ffn_hidden = keras.layers.Dense(self.intermediate_dim, activation="relu", name="ffn_hidden")
        self.ffn_output = keras.layers.Dense(d, name="ffn_output")
        self.ffn_hidden.build(inputs_shape)
        self.ffn_output.build((*inputs_shape[:-1], self.intermediate_dim))
        self.drop = keras.layers.Dropout(self.dropout)
        super().build(inputs_shape)

    def call(self, inputs, memory, memory_mask, training=False):
        x = inputs
        attended = self.self_attention(x, x, use_causal_mask=True, training=training)
        x = self.norms[0](x + self.drop(attended, training=training))
        crossed = self.cross_attention(x, memory, attention_mask=tf.cast(memory_mask, tf.bool)[:, None, :], training=training)
        x = self.norms[1](x + self.drop(crossed, training=training))
        fed = self.ffn_output(self.ffn_hidden(x))
        return self.norms[2](x + self.drop(fed, training=training))

    def compute_output_shape(self, inputs_shape, memory_shape=None, memory_mask_shape=None):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout}


class _Stack(keras.layers.Layer):
    """Token embedding × √d + sinusoidal positions + dropout, then ``num_layers`` blocks (shared by both sides)."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, ffn_dim: int, num_layers: int,
                 dropout: float = 0.1, max_length: int = 1000, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.d_model, self.num_heads, self.ffn_dim = vocab_size, d_model, num_heads, ffn_dim
        self.num_layers, self.dropout, self.max_length = num_layers, dropout, max_length
        self.embedding = keras.layers.Embedding(vocab_size, d_model, name="embedding")
        self.positions = SinusoidalPositionEncoding(max_length, name="positions")
        self.embedding_dropout = keras.layers.Dropout(dropout)

    def embed(self, ids, training):
        x = self.embedding(ids) * math.sqrt(self.d_model)  # [REF d2l] §53: scale before adding P
        return self.embedding_dropout(self.positions(x), training=training)

    def _build_embedding(self, ids_shape):
        self.embedding.build(ids_shape)
        self.positions.build((*ids_shape, self.d_model))
        return (*ids_shape, self.d_model)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "d_model": self.d_model, "num_heads": self.num_heads,
                "ffn_dim": self.ffn_dim, "num_layers": self.num_layers, "dropout": self.dropout, "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerSourceEncoder(_Stack):
    """Source ids ``[B, S]`` → encoder output ``[B, S, d]`` (§49); padding (id 0) is never attended to.

    Args: see :func:`build_transformer`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.blocks = [
            TransformerEncoderBlock(self.num_heads, self.ffn_dim, self.dropout, activation="relu",
                                    layer_norm_epsilon=LAYER_NORM_EPSILON, name=f"block_{i}")
            for i in range(self.num_layers)
        ]

    def build(self, source_ids_shape):
        shape = self._build_embedding(source_ids_shape)
        for block in self.blocks:
            block.build(shape)
        super().build(source_ids_shape)

    def call(self, source_ids, training=False):
        x, mask = self.embed(source_ids, training), source_ids != 0
        for block in self.blocks:
            x = block(x, padding_mask=mask, training=training)
        return x

    def compute_output_shape(self, source_ids_shape):
        return (*source_ids_shape, self.d_model)


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerTargetDecoder(_Stack):
    """Decoder input ids ``[B, T]``, encoder output and source mask → next-token logits ``[B, T, V]`` (§53).

    Args: see :func:`build_transformer`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.blocks = [TransformerDecoderBlock(self.num_heads, self.ffn_dim, self.dropout, name=f"block_{i}")
                       for i in range(self.num_layers)]
        self.logits = keras.layers.Dense(self.vocab_size, name="logits", dtype="float32")

    def build(self, decoder_input_ids_shape, memory_shape=None, source_mask_shape=None):
        shape = self._build_embedding(decoder_input_ids_shape)
        for block in self.blocks:
            block.build(shape, memory_shape, source_mask_shape)
        self.logits.build(shape)
        super().build(decoder_input_ids_shape)

    def call(self, decoder_input_ids, memory, source_mask, training=False):
        x = self.embed(decoder_input_ids, training)
        for block in self.blocks:
            x = block(x, memory, source_mask, training=training)
        return self.logits(x)

    def compute_output_shape(self, decoder_input_ids_shape, memory_shape=None, source_mask_shape=None):
        return (*decoder_input_ids_shape, self.vocab_size)


def build_transformer(
    source_vocab_size: int,
    target_vocab_size: int,
    d_model: int = 32,
    num_heads: int = 4,
    ffn_dim: int = 64,
    num_layers: int = 2,
    dropout: float = 0.1,
    max_length: int = 1000,
    name: str = "transformer_mt",
) -> keras.Model:
    """The teacher-forced Transformer: ``{"source_ids", "decoder_input_ids"}`` → logits ``[B, T, V]``.

    Defaults are d2l's small translator ([REF d2l] §53: 32 hidden, 4 heads, FFN 64, 2 + 2 layers,
    dropout 0.1); Transformer-base is 512 / 8 / 2048 / 6 (paper default). The layers named
    ``encoder`` and ``decoder`` are what :func:`decoder_step` decodes with.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes (id 0 = ``<pad>``).
        d_model: model width.
        num_heads: attention heads.
        ffn_dim: the FFN's hidden width.
        num_layers: blocks on each side.
        dropout: the rate everywhere (embeddings, attention probabilities, sub-layer outputs).
        max_length: the longest sequence the positional encoding covers.
        name: the model name.

    Example:
        >>> model = build_transformer(20, 12)
        >>> model({"source_ids": tf.ones([2, 5], tf.int32), "decoder_input_ids": tf.ones([2, 4], tf.int32)}).shape
        TensorShape([2, 4, 12])
    """
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    decoder_input_ids = keras.Input((None,), dtype="int32", name="decoder_input_ids")
    shared = (d_model, num_heads, ffn_dim, num_layers, dropout, max_length)
    memory = TransformerSourceEncoder(source_vocab_size, *shared, name="encoder")(source_ids)
    logits = TransformerTargetDecoder(target_vocab_size, *shared, name="decoder")(
        decoder_input_ids, memory, keras.ops.not_equal(source_ids, 0)
    )
    return keras.Model({"source_ids": source_ids, "decoder_input_ids": decoder_input_ids}, logits, name=name)


def parameter_count(source_vocab_size: int, target_vocab_size: int, d_model: int, ffn_dim: int, num_layers: int,
                    tied: bool = False) -> int:
    """Closed-form parameter count (see the module docstring); ``tied`` = one shared vocabulary, embedding and output matrix.

    Example (Transformer-base, one 37,000-token vocabulary, tied as in the paper):
        >>> parameter_count(37_000, 37_000, 512, 2048, 6, tied=True)
        63119496
    """
    attention = 4 * (d_model * d_model + d_model)
    ffn = 2 * d_model * ffn_dim + ffn_dim + d_model
    norm = 2 * d_model
    encoder = num_layers * (attention + ffn + 2 * norm)
    decoder = num_layers * (2 * attention + ffn + 3 * norm)
    if tied:
        if source_vocab_size != target_vocab_size:
            raise ValueError("tied embeddings need one shared vocabulary")
        return encoder + decoder + source_vocab_size * d_model + target_vocab_size  # the output keeps its bias
    return encoder + decoder + (source_vocab_size + target_vocab_size) * d_model + d_model * target_vocab_size + target_vocab_size


def decoder_step(model: keras.Model, source_ids: tf.Tensor, max_length: int, copies: int = 1):
    """``(step_fn, initial_state)`` for the decoding loops: each row repeated ``copies`` times.

    The state is the prefix buffer ``[N, max_length]`` and each row's position; a step writes the
    new token at the position and returns the decoder's logits there.
    """
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    memory = tf.repeat(encoder(source_ids, training=False), copies, axis=0)
    mask = tf.repeat(source_ids != 0, copies, axis=0)
    rows = tf.shape(memory)[0]

    def step(tokens, state):
        prefix = state["prefix"] + tf.one_hot(state["position"], max_length, dtype=tf.int32) * tokens[:, None]
        logits = decoder(prefix, memory, mask, training=False)
        return tf.gather(logits, state["position"], axis=1, batch_dims=1), {"prefix": prefix, "position": state["position"] + 1}

    state = {"prefix": tf.zeros([rows, max_length], tf.int32), "position": tf.zeros([rows], tf.int32)}
    return step, state
