"""The decoder-only Transformer language model (GPT) of notes-001 §1, its parameter count and temperature softmax.

Specs: notes-001.md §1 (seed 000/001 "KeyPoint" L1–24): a model that reads a text and predicts
the next token (L5); an **embedding matrix** turns tokens into vectors, **attention and MLP
blocks are stacked** (GPT-3: 96 times), an **un-embedding matrix** turns the last vectors into a
probability for every token (L6), through a **softmax with temperature T** (L7: large T
flattens, small T favours the largest value, T = 0 puts all weight on the maximum); GPT-3's
figures (L19–24): d = 12288, 96 layers, 96 heads, an MLP up-projection of 49152 × 12288, MLP
parameters ≈ 116 B ≈ 2/3 of the 175 B total. The block is :class:`tfmodels.layers.gpt_block.GptBlock`.

Layout (top to bottom, as GPT-2/3 — paper default where the notes are silent: positions,
normalisation, dropout, weight tying)::

    ids [B, T] → token embedding (V × d) + learned position embedding (max_positions × d) → Dropout
               → num_layers × GptBlock (pre-LN causal self-attention + 4d GELU MLP, residuals)
               → LayerNorm → un-embedding → logits [B, T, V]

* Positions: the notes' Transformer chapters use sinusoids (notes-002-part2 §48); GPT-2/3 learn
  one vector per position (:class:`tfmodels.layers.position_embedding.PositionEmbedding`), so a
  model reads at most ``max_positions`` tokens (GPT-3: 2048). Longer generation keeps the newest
  ``max_positions`` tokens of each row as its context (:func:`context_window`).
* Un-embedding: **tied** to the token embedding by default (GPT-2/3: the logits are ``h · Eᵀ``,
  no bias), so the "embedding + un-embedding" share of the notes' 1/3 is one ``V × d`` matrix;
  ``tie_embeddings=False`` adds a separate ``d × V`` matrix.

Parameter count (:func:`gpt_parameter_count`): ``V·d + P·d + L·(12d² + 13d) + 2d [+ d·V]``. At
GPT-3's settings (:data:`GPT3_175B`) this is 174,604,259,328 with tied embeddings (175,221,817,344
untied), of which the MLPs hold 96 · (8d² + 5d) = 115,970,015,232 = 66.4 %: the notes' "116 B,
two thirds of 175 B".
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tfmodels.layers.gpt_block import INITIALIZER_STDDEV, GptBlock
from tfmodels.layers.position_embedding import PositionEmbedding

# notes-001 §1 L19–24 (96 layers, 96 heads, d = 12288) and the GPT-3 paper (Brown et al. 2020,
# Table 2.1: n_ctx = 2048; the GPT-2 BPE vocabulary of 50257 tokens).
GPT3_175B = {"vocab_size": 50257, "num_layers": 96, "num_heads": 96, "hidden_dim": 12288, "max_positions": 2048}


@keras.saving.register_keras_serializable(package="tfmodels")
class TiedEmbedding(keras.layers.Embedding):
    """A token embedding that also un-embeds: ``ids → E[ids]`` and, with ``reverse=True``, ``h → h · Eᵀ``.

    GPT-2/3 (paper default) read the next-token logits off the transposed token embedding; one
    layer called at two places of the functional graph keeps the tie through ``.keras`` files.

    Args:
        input_dim: the vocabulary size V.
        output_dim: the model width d.
        **kwargs: passed to ``keras.layers.Embedding``.

    Example:
        >>> import numpy as np
        >>> embedding = TiedEmbedding(10, 4)
        >>> vectors = embedding(np.array([[1, 2]]))
        >>> embedding(vectors, reverse=True).shape
        TensorShape([1, 2, 10])
    """

    def call(self, inputs, reverse: bool = False):
        if reverse:
            return ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, self.compute_dtype)))
        return super().call(inputs)

    def compute_output_shape(self, input_shape, reverse: bool = False):
        if reverse:
            return (*input_shape[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, reverse: bool = False):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape, reverse), dtype=self.compute_dtype)


def build_gpt_lm(
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    max_positions: int,
    dropout: float = 0.1,
    tie_embeddings: bool = True,
    name: str = "gpt_lm",
) -> keras.Model:
    """A GPT language model: token ids → next-token logits at every position.

    Args:
        vocab_size: V, the number of token ids.
        num_layers: GPT blocks stacked (notes-001 §1: GPT-3 stacks 96).
        num_heads: attention heads per block (GPT-3: 96); ``hidden_dim`` must be a multiple.
        hidden_dim: d, the width of the embeddings and of the residual stream (GPT-3: 12288).
        max_positions: the longest input, the rows of the learned position table (GPT-3: 2048).
        dropout: rate on the embeddings, the attention probabilities and both sub-layer outputs
            of every block (GPT-2/3: 0.1, paper default).
        tie_embeddings: logits through the transposed token embedding (GPT-2/3, paper default);
            ``False`` adds an untied ``Dense(V)`` without bias.
        name: the model name.

    Returns:
        A ``keras.Model`` from int ids ``[B, T]`` (1 ≤ T ≤ ``max_positions``) to float logits
        ``[B, T, V]``; the logits at position t depend on ids ``0..t`` only.

    Example:
        >>> model = build_gpt_lm(vocab_size=31, num_layers=2, num_heads=4, hidden_dim=32, max_positions=16)
        >>> model.count_params() == gpt_parameter_count(31, 2, 4, 32, 16)
        True
    """
    if min(vocab_size - 1, num_layers, num_heads, hidden_dim, max_positions) < 1:
        raise ValueError("need vocab_size >= 2 and num_layers, num_heads, hidden_dim, max_positions >= 1")
    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim {hidden_dim} is not a multiple of num_heads {num_heads}")
    init = keras.initializers.RandomNormal(stddev=INITIALIZER_STDDEV)
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    token_embedding = TiedEmbedding(vocab_size, hidden_dim, embeddings_initializer=init, name="token_embedding")
    tokens = token_embedding(ids)
    positions = PositionEmbedding(max_positions, initializer=keras.initializers.RandomNormal(stddev=0.01), name="position_embedding")(tokens)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(keras.layers.Add(name="embeddings")([tokens, positions]))
    for layer in range(1, num_layers + 1):
        x = GptBlock(num_heads, dropout=dropout, num_layers=num_layers, name=f"block_{layer}")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_layer_norm")(x)
    if tie_embeddings:
        logits = token_embedding(x, reverse=True)
    else:
        logits = keras.layers.Dense(vocab_size, use_bias=False, kernel_initializer=init, name="unembedding", dtype="float32")(x)
    return keras.Model(ids, logits, name=name)


def gpt_parameter_breakdown(
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    max_positions: int,
    tie_embeddings: bool = True,
) -> dict[str, int]:
    """The closed-form parameter count of :func:`build_gpt_lm`, by part (no model is built).

    ``embedding`` V·d, ``positions`` P·d, ``attention`` L·(4d² + 4d), ``mlp`` L·(8d² + 5d),
    ``layer_norms`` L·4d + 2d, ``unembedding`` d·V untied or 0 tied, and ``total``.

    Args:
        vocab_size, num_layers, num_heads, hidden_dim, max_positions, tie_embeddings: as
            :func:`build_gpt_lm` (``num_heads`` is only checked: it splits d, it adds nothing).

    Example:
        >>> parts = gpt_parameter_breakdown(**GPT3_175B)
        >>> parts["total"], parts["mlp"]
        (174604259328, 115970015232)
    """
    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim {hidden_dim} is not a multiple of num_heads {num_heads}")
    d = hidden_dim
    parts = {
        "embedding": vocab_size * d,
        "positions": max_positions * d,
        "attention": num_layers * (4 * d * d + 4 * d),
        "mlp": num_layers * (d * 4 * d + 4 * d + 4 * d * d + d),
        "layer_norms": num_layers * 4 * d + 2 * d,
        "unembedding": 0 if tie_embeddings else d * vocab_size,
    }
    return {**parts, "total": sum(parts.values())}


def gpt_parameter_count(
    vocab_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    max_positions: int,
    tie_embeddings: bool = True,
) -> int:
    """``V·d + P·d + L·(12d² + 13d) + 2d [+ d·V]``: the total of :func:`gpt_parameter_breakdown`.

    Example:
        >>> gpt_parameter_count(**GPT3_175B, tie_embeddings=False)
        175221817344
    """
    return gpt_parameter_breakdown(vocab_size, num_layers, num_heads, hidden_dim, max_positions, tie_embeddings)["total"]


def temperature_softmax(logits, temperature):
    """The notes' softmax with temperature: ``p_i = exp(x_i / T) / Σ_j exp(x_j / T)`` over the last axis.

    notes-001 §1 L7: a large T spreads the weight towards the small values, a small T lets the
    largest value dominate, and **T = 0 puts all the weight on the maximum** — computed here as
    the limit T → 0⁺ (ties share the weight equally), not as a division by zero.

    Args:
        logits: float tensor ``[..., V]``.
        temperature: float scalar ≥ 0.

    Example:
        >>> temperature_softmax([1.0, 3.0, 2.0], 0.0).numpy().tolist()
        [0.0, 1.0, 0.0]
    """
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)  # max is 0: no overflow for small T
    at_max = tf.cast(shifted == 0, tf.float32)
    limit = at_max / tf.reduce_sum(at_max, axis=-1, keepdims=True)
    return tf.where(temperature > 0, tf.nn.softmax(shifted / tf.where(temperature > 0, temperature, 1.0)), limit)


def context_window(lm, prefix_lengths, max_positions: int):
    """Wraps a language model for :func:`tfmodels.models.generation.generate` so each row reads its newest ``max_positions`` tokens.

    ``generate`` calls the model on the growing buffer ``[B, longest + i]`` at step i and reads
    row r's logits at position ``lengths[r] + i − 1``. A GPT with learned positions cannot read
    more than ``max_positions`` tokens, so once a row is longer, the wrapper runs the model on
    that row's last ``max_positions`` tokens (GPT-2/nanoGPT crop the context the same way) and
    puts the logits of its newest token where ``generate`` reads them; other positions of the
    returned ``[B, T, V]`` are zeros and never read. Up to ``max_positions`` tokens it is the
    plain model call. Cost per step: one model call on at most ``max_positions`` tokens.

    Args:
        lm: the language model (called with ``training=False``).
        prefix_lengths: ``[B]`` int, the prefix lengths given to ``generate``.
        max_positions: the model's longest input.

    Returns:
        A callable ``ids [B, T] → logits [B, T, V]``.

    Example:
        >>> from tfmodels.models.generation import generate
        >>> lm = build_gpt_lm(10, 1, 2, 8, max_positions=4)
        >>> generate(context_window(lm, [2], 4), [[2, 5]], [2], num_tokens=6).shape
        TensorShape([1, 6])
    """
    lengths = tf.cast(tf.convert_to_tensor(prefix_lengths), tf.int32)
    longest = tf.reduce_max(lengths)

    def call(ids):
        length = tf.shape(ids)[1]

        def cropped():
            newest = lengths + (length - longest) - 1  # [B]: the position generate reads in each row
            start = tf.maximum(newest - max_positions + 1, 0)
            windows = tf.gather(ids, start[:, None] + tf.range(max_positions), axis=1, batch_dims=1)
            logits = lm(windows, training=False)
            last = tf.gather(logits, newest - start, axis=1, batch_dims=1)  # [B, V]
            rows = tf.range(tf.shape(ids)[0])
            return tf.scatter_nd(tf.stack([rows, newest], 1), last, [tf.shape(ids)[0], length, tf.shape(last)[-1]])

        return tf.cond(length <= max_positions, lambda: lm(ids, training=False), cropped)

    return call
