"""DETR's Transformer: a post-LN encoder-decoder whose attention sees positions at every layer.

Spec: notes-001.md §28 (seed 001 L794-801): the encoder lets every feature-map pixel attend to
all others; the decoder turns N learned **object queries** into N object hypotheses in parallel,
with cross-attention over the encoder's output. The rest is the paper's (Carion et al. 2020,
§3.2 and appendix A.3; paper default), as the official code builds it:

* **2-D sine positional encoding** (:func:`sine_position_grid`): half of the channels encode the
  row, half the column, each with the sin/cos pairs of notes-002-part2.md §48 at positions
  normalised to (0, 2π].
* **Encoder layer**: ``q = k = x + pos``, ``v = x``; ``x = LN(x + Dropout(MHA(q, k, v)))``, then
  ``x = LN(x + Dropout(FFN(x)))`` with ``FFN = Dense(d) ∘ Dropout ∘ ReLU ∘ Dense(d_ff)``.
* **Decoder layer**: the same self-attention over the queries' states ``t`` with the query
  embedding as their position (``q = k = t + query``, no causal mask: the queries are a set),
  then cross-attention with ``q = t + query``, ``k = memory + pos``, ``v = memory``, then the FFN;
  each followed by Add & LayerNorm. The states start at zero, so the first layer's queries are
  the query embeddings alone.
* Every decoder layer's output passes through one shared final LayerNorm, so the class and box
  heads can read each layer (the auxiliary decoding losses).

Why not :class:`~tfmodels.layers.transformer_encoder.TransformerEncoderBlock` and
:class:`~tfmodels.models.transformer.TransformerDecoderBlock`: both attend with ``q = k = v =
x`` (the positions are added once, to the input embeddings), while DETR adds the positional
encoding to the queries and keys, not the values, inside every layer; the decoder block also
masks causally and has no positions for the memory's keys. One layer class here covers both
DETR sides (``cross_attention`` off in the encoder, on in the decoder).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

LAYER_NORM_EPSILON = 1e-5  # PyTorch's default, as the official code's nn.LayerNorm
TEMPERATURE = 10000.0  # paper default, as notes-002-part2.md §48


def sine_position_grid(height: int, width: int, depth: int, temperature: float = TEMPERATURE) -> np.ndarray:
    """DETR's 2-D sine positional encoding of an ``height x width`` map, flattened row-major.

    Row ``i`` (1-based) sits at ``y = i / height · 2π`` and column ``j`` at ``x = j / width · 2π``;
    each gets ``depth / 2`` channels ``[sin(p / T^(0/h)), cos(p / T^(0/h)), sin(p / T^(2/h)),
    cos(p / T^(2/h)), ...]`` with ``h = depth / 2``: §48's table at these positions (which is why
    :func:`~tfmodels.layers.sinusoidal_position_encoding.sinusoidal_table`, built on integer
    positions, is not reused). The row's channels come first, as in the official code.

    Args:
        height, width: the feature map's size.
        depth: channels (``d_model``), even.
        temperature: ``T``.

    Returns:
        float32 ``[height * width, depth]``.

    Example:
        >>> grid = sine_position_grid(2, 3, 4)
        >>> grid.shape, [round(float(v), 3) for v in grid[0]]  # row 1 of 2 at π, column 1 of 3 at 2π/3
        ((6, 4), [0.0, -1.0, 0.866, -0.5])
    """
    if depth % 2:
        raise ValueError(f"the sine positional encoding needs an even depth, got {depth}")
    half = depth // 2
    periods = temperature ** (2 * (np.arange(half) // 2) / half)

    def encode(count: int) -> np.ndarray:
        angles = (np.arange(1, count + 1) / count * 2 * math.pi)[:, None] / periods  # [count, half]
        return np.where(np.arange(half) % 2 == 0, np.sin(angles), np.cos(angles))

    rows = np.broadcast_to(encode(height)[:, None, :], (height, width, half))
    columns = np.broadcast_to(encode(width)[None, :, :], (height, width, half))
    return np.concatenate([rows, columns], axis=-1).reshape(height * width, depth).astype(np.float32)


@keras.saving.register_keras_serializable(package="tfmodels")
class DetrTransformerLayer(keras.layers.Layer):
    """One DETR encoder layer, or with ``cross_attention`` one decoder layer (module docstring).

    Args:
        num_heads: attention heads (``d_model`` must be a multiple).
        intermediate_dim: the FFN's hidden width ``d_ff``.
        dropout: on the attention probabilities, inside the FFN and on each sub-layer's output.
        cross_attention: a decoder layer (self-attention, cross-attention, FFN) when True.

    Call arguments:
        inputs: ``[B, L, d]`` states.
        position: ``[B or 1, L, d]`` added to the self-attention's queries and keys.
        memory: ``[B, S, d]`` the encoder's output (decoder layers only).
        memory_position: ``[B or 1, S, d]`` added to the cross-attention's keys.
        training: dropout on or off.

    Example:
        >>> layer = DetrTransformerLayer(2, 16, cross_attention=True)
        >>> layer(tf.zeros([2, 3, 8]), tf.ones([1, 3, 8]), tf.ones([2, 5, 8]), tf.zeros([1, 5, 8])).shape
        TensorShape([2, 3, 8])
    """

    def __init__(self, num_heads: int, intermediate_dim: int, dropout: float = 0.1, cross_attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.intermediate_dim = int(num_heads), int(intermediate_dim)
        self.dropout, self.cross_attention = float(dropout), bool(cross_attention)

    def build(self, inputs_shape, position_shape=None, memory_shape=None, memory_position_shape=None):
        d = inputs_shape[-1]
        if d % self.num_heads:
            raise ValueError(f"d_model {d} is not a multiple of num_heads {self.num_heads}")
        attentions = ["self_attention"] + (["cross_attention"] if self.cross_attention else [])
        self.attentions = []
        for name in attentions:
            attention = keras.layers.MultiHeadAttention(
                self.num_heads, d // self.num_heads, dropout=self.dropout, dtype=self.dtype_policy, name=name
            )
            attention.build(inputs_shape, memory_shape if name == "cross_attention" else inputs_shape)
            self.attentions.append(attention)
        self.norms = [
            keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name=f"norm_{i}")
            for i in range(len(attentions) + 1)
        ]
        for norm in self.norms:
            norm.build(inputs_shape)
        self.ffn_hidden = keras.layers.Dense(
            self.intermediate_dim, activation="relu", dtype=self.dtype_policy, name="ffn_hidden"
        )
        self.ffn_output = keras.layers.Dense(d, dtype=self.dtype_policy, name="ffn_output")
        self.ffn_hidden.build(inputs_shape)
        self.ffn_output.build((*inputs_shape[:-1], self.intermediate_dim))
        self.drop = keras.layers.Dropout(self.dropout)
        super().build(inputs_shape)

    def call(self, inputs, position, memory=None, memory_position=None, training=None):
        x = inputs
        with_position = x + position
        attended = self.attentions[0](with_position, x, key=with_position, training=training)
        x = self.norms[0](x + self.drop(attended, training=training))
        if self.cross_attention:
            crossed = self.attentions[1](x + position, memory, key=memory + memory_position, training=training)
            x = self.norms[1](x + self.drop(crossed, training=training))
        fed = self.ffn_output(self.drop(self.ffn_hidden(x), training=training))
        return self.norms[-1](x + self.drop(fed, training=training))

    def compute_output_shape(self, inputs_shape, *args):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout, "cross_attention": self.cross_attention}


@keras.saving.register_keras_serializable(package="tfmodels")
class DetrTransformer(keras.layers.Layer):
    """DETR's encoder-decoder: a feature map ``[B, h, w, d]`` -> every decoder layer's states ``[B, L, Q, d]``.

    Flattens the map to ``h·w`` tokens, encodes them with the 2-D sine positions, and decodes
    ``num_queries`` learned query embeddings (``N(0, 1)`` initialised, as PyTorch's
    ``nn.Embedding``) against them; each decoder layer's output goes through the shared final
    LayerNorm (module docstring). The map's size must be static: its positions are a constant.

    Args:
        num_heads: attention heads.
        intermediate_dim: the FFN's hidden width.
        encoder_layers, decoder_layers: layers on each side (paper 6 + 6).
        num_queries: object queries N (paper 100).
        dropout: the rate everywhere (paper 0.1).

    Example:
        >>> transformer = DetrTransformer(2, 32, encoder_layers=1, decoder_layers=2, num_queries=5)
        >>> transformer(tf.zeros([3, 4, 4, 16])).shape
        TensorShape([3, 2, 5, 16])
    """

    def __init__(self, num_heads: int, intermediate_dim: int, encoder_layers: int, decoder_layers: int,
                 num_queries: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.intermediate_dim, self.dropout = int(num_heads), int(intermediate_dim), float(dropout)
        self.encoder_layers, self.decoder_layers, self.num_queries = int(encoder_layers), int(decoder_layers), int(num_queries)
        if self.decoder_layers < 1:
            raise ValueError("DETR needs at least one decoder layer")

        def layers(count, side, cross):
            return [DetrTransformerLayer(self.num_heads, self.intermediate_dim, self.dropout, cross, dtype=self.dtype_policy,
                                         name=f"{side}_{i}") for i in range(count)]

        self.encoder = layers(self.encoder_layers, "encoder", False)
        self.decoder = layers(self.decoder_layers, "decoder", True)
        self.decoder_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="decoder_norm"
        )

    def build(self, features_shape):
        _, height, width, d = features_shape
        if height is None or width is None:
            raise ValueError("DetrTransformer needs a feature map of static height and width")
        self.position = tf.constant(sine_position_grid(height, width, d)[None])  # [1, h·w, d]
        self.query_embedding = self.add_weight(
            shape=(self.num_queries, d), initializer=keras.initializers.RandomNormal(stddev=1.0), name="query_embedding"
        )
        memory_shape, queries_shape = (None, height * width, d), (None, self.num_queries, d)
        for layer in self.encoder:
            layer.build(memory_shape)
        for layer in self.decoder:
            layer.build(queries_shape, None, memory_shape)
        self.decoder_norm.build(queries_shape)
        super().build(features_shape)

    def call(self, features, training=None):
        shape = tf.shape(features)
        memory = tf.reshape(features, [shape[0], shape[1] * shape[2], features.shape[-1]])
        position = tf.cast(self.position, memory.dtype)
        for layer in self.encoder:
            memory = layer(memory, position, training=training)
        queries = tf.cast(self.query_embedding, memory.dtype)[None]
        queries = tf.broadcast_to(queries, [shape[0], self.num_queries, features.shape[-1]])
        states, outputs = tf.zeros_like(queries), []
        for layer in self.decoder:
            states = layer(states, queries, memory, position, training=training)
            outputs.append(self.decoder_norm(states))
        return tf.stack(outputs, axis=1)

    def compute_output_shape(self, features_shape):
        return (features_shape[0], self.decoder_layers, self.num_queries, features_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim,
                "encoder_layers": self.encoder_layers, "decoder_layers": self.decoder_layers,
                "num_queries": self.num_queries, "dropout": self.dropout}
