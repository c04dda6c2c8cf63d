"""Additive (Bahdanau) attention with the notes' masked softmax.

Specs: notes-002-part2.md §45 (seed 002 L3614–3634: score → softmax → weighted sum of the
values; padding masked so that it gets zero weight) and §46 (L3636–3659: the decoder's previous
hidden state is the query, the encoder's outputs are keys and values). The scoring function is
[REF d2l] §45's additive attention, ``a(q, k) = w_vᵀ tanh(W_q q + W_k k)`` with
``W_q ∈ R^{h×q}``, ``W_k ∈ R^{h×k}``, ``w_v ∈ R^h`` (no biases) and dropout on the weights.

Masked softmax ([REF d2l] §45): positions beyond a sequence's valid length get the score
``−1e6`` before the softmax, so their weight is ``exp(−1e6 − max) = 0`` in float32 — exactly zero
— while a row whose positions are *all* masked gets uniform weights (every score −1e6) instead of
the NaN of a ``−inf`` mask. d2l writes the mask value into the scores; the same is done here.
"""

from __future__ import annotations

import keras
import tensorflow as tf

MASK_VALUE = -1e6  # [REF d2l] §45 masked_softmax


def masked_softmax(scores: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """Softmax over the last axis with masked positions set to ``−1e6`` first (§45).

    Args:
        scores: ``[..., n_k]`` attention scores.
        mask: boolean, broadcastable to ``scores`` (True = a real position), or ``None`` for a
            plain softmax. d2l's ``valid_lens`` is ``tf.sequence_mask(valid_lens, n_k)``.

    Example:
        >>> w = masked_softmax(tf.zeros([1, 4]), tf.sequence_mask([2], 4))
        >>> w.numpy().tolist()
        [[0.5, 0.5, 0.0, 0.0]]
    """
    if mask is not None:
        scores = tf.where(tf.cast(mask, tf.bool), scores, tf.cast(MASK_VALUE, scores.dtype))
    return tf.nn.softmax(scores, axis=-1)


@keras.saving.register_keras_serializable(package="tfmodels")
class AdditiveAttention(keras.layers.Layer):
    """Bahdanau's additive attention pooling: ``softmax(w_vᵀ tanh(W_q q + W_k k)) · v`` (§45–§46).

    Args:
        units: ``h``, the width of the hidden layer of the scoring MLP.
        dropout: dropout on the attention weights (training only; [REF d2l] §45).

    Call arguments:
        query: ``[B, n_q, d_q]``.
        keys: ``[B, n_k, d_k]``.
        values: ``[B, n_k, d_v]``.
        mask: ``[B, n_k]`` boolean (True = attend) or ``None``.
        training: applies the dropout.

    Returns:
        ``(output [B, n_q, d_v], weights [B, n_q, n_k])``; each weight row sums to 1 and is 0 on
        masked keys.

    Example:
        >>> attention = AdditiveAttention(8)
        >>> out, w = attention(tf.ones([2, 1, 4]), tf.ones([2, 5, 3]), tf.ones([2, 5, 6]), tf.sequence_mask([2, 5], 5))
        >>> out.shape, w.shape
        (TensorShape([2, 1, 6]), TensorShape([2, 1, 5]))
    """

    def __init__(self, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout = dropout
        self.query_dense = keras.layers.Dense(units, use_bias=False, name="query")
        self.key_dense = keras.layers.Dense(units, use_bias=False, name="key")
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="score")
        self.weight_dropout = keras.layers.Dropout(dropout)

    def build(self, query_shape, keys_shape=None, values_shape=None, mask_shape=None):  # noqa: ARG002 (Keras passes every call input's shape)
        self.query_dense.build(query_shape)
        self.key_dense.build(keys_shape)
        self.score_dense.build((*keys_shape[:-1], self.units))
        super().build(query_shape)

    def scores(self, query: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
        """The unnormalised scores ``w_vᵀ tanh(W_q q_i + W_k k_j)``: ``[B, n_q, n_k]``."""
        features = tf.tanh(self.query_dense(query)[:, :, None, :] + self.key_dense(keys)[:, None, :, :])
        return tf.squeeze(self.score_dense(features), -1)

    def call(self, query, keys, values, mask=None, training=False):
        weights = masked_softmax(self.scores(query, keys), None if mask is None else mask[:, None, :])
        return tf.matmul(self.weight_dropout(weights, training=training), values), weights

    def compute_output_shape(self, query_shape, keys_shape=None, values_shape=None, mask_shape=None):
        return (*query_shape[:-1], values_shape[-1]), (*query_shape[:-1], keys_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}
