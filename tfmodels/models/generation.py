"""Text generation inside the graph: greedy decoding and seeded sampling from a causal language model.

Spec: notes-002-part2.md §22 (seed 002 L2578–2582: generate text by repeatedly sampling
``x_t ~ p(x_t | x_1, …, x_{t−1})``), §32 [REF d2l] (``predict(prefix, num_preds)``: warm up on the
prefix, then feed the prediction back) and §43 (L3464–3526: greedy search takes the most
probable token at every step).

:func:`generate` works with **any** causal language model given as a Keras model (or callable)
from ids ``[B, T]`` to logits ``[B, T, V]`` — the RNN / GRU / LSTM models of
:mod:`tfmodels.models.rnn_lm` and, later, a GPT. It **re-runs the model on the growing sequence**
at every step instead of carrying a recurrent state, because

* it needs nothing from the model beyond its call: no per-cell step function, no state inputs
  and outputs (which differ between RNN, LSTM and a Transformer's key/value cache);
* a batch of prefixes of different lengths is one right-padded buffer: a causal model's output at
  position t ignores everything after t, so padding never changes a row's next-token logits.

The cost: generating N tokens after a prefix of P tokens runs the model N times on at most
``max(P) + N`` positions, O(N·(P + N)) recurrent steps instead of the O(P + N) of a carried
state. For the small language models of this zoo on CPU this is milliseconds to a second per
request (measured in ``tests/models/test_generation.py``'s module docstring);
``num_tokens`` is bounded by the serving recipe.

Decoding: temperature 0 is greedy (``argmax``); a temperature T > 0 samples from
``softmax(logits / T)`` with ``tf.random.stateless_categorical`` seeded by ``(seed, step)``, so
the same request (same prefixes, batch, temperature and seed) always gives the same text, and
T → 0 approaches greedy decoding. Everything is core TensorFlow (``While``, ``StatelessMultinomial``,
``TensorScatterUpdate``, ...), so the loop runs inside a SavedModel on stock TF-Serving.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def next_token(logits: tf.Tensor, temperature: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One decoding step: ``[B, V]`` logits → ``[B]`` int32 token ids.

    Args:
        logits: next-token logits, one row per sequence.
        temperature: ``[B]`` float32, ≥ 0; 0 picks the argmax (greedy), T > 0 samples from
            ``softmax(logits / T)``.
        seed: ``[2]`` int64, the stateless seed of this step's draws.

    Example:
        >>> next_token(tf.constant([[0.0, 2.0, 1.0]]), tf.constant([0.0]), tf.constant([0, 0], tf.int64)).numpy()
        array([1], dtype=int32)
    """
    logits = tf.cast(logits, tf.float32)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    t = temperature[:, None]
    # Shifting by the maximum keeps logits / T finite-or-(−inf) for tiny T (the maximum stays 0),
    # so a temperature near 0 samples the argmax instead of overflowing to NaN.
    scaled = (logits - tf.reduce_max(logits, axis=-1, keepdims=True)) / tf.where(t > 0, t, tf.ones_like(t))
    sampled = tf.random.stateless_categorical(scaled, 1, seed, dtype=tf.int32)[:, 0]
    return tf.where(temperature > 0, sampled, greedy)


def generate(lm, prefix_ids, prefix_lengths, num_tokens, temperature=0.0, seed=0) -> tf.Tensor:
    """Continues each prefix by ``num_tokens`` tokens, in the graph (``tf.while_loop``).

    Args:
        lm: a causal language model: a Keras model (called with ``training=False``) or a
            callable from int32 ids ``[B, T]`` to logits ``[B, T, V]``.
        prefix_ids: ``[B, P]`` int ids, each row's prefix at its start, padded on the right with
            anything (padding is never read).
        prefix_lengths: ``[B]`` int, tokens of each prefix, 1..P. A language model needs at
            least one token to condition on: start empty prefixes with a start token (the
            recipes use ``<bos>``).
        num_tokens: int scalar ≥ 0, the tokens to generate per row.
        temperature: float scalar or ``[B]``, ≥ 0 (see :func:`next_token`).
        seed: int scalar; the draws of step i use the stateless seed ``(seed, i)``.

    Returns:
        ``[B, num_tokens]`` int32: the generated ids (the prefixes not included).

    Raises:
        tf.errors.InvalidArgumentError: a length outside 1..P, a negative ``num_tokens`` or a
            negative or non-finite temperature (each with a message that says which).

    Example:
        >>> from tfmodels.models.rnn_lm import build_rnn_lm
        >>> lm = build_rnn_lm(10, "gru", hidden_units=8)
        >>> generate(lm, [[2, 5, 0], [2, 0, 0]], [2, 1], num_tokens=4).shape
        TensorShape([2, 4])
    """
    ids = tf.cast(tf.convert_to_tensor(prefix_ids), tf.int32)
    lengths = tf.cast(tf.convert_to_tensor(prefix_lengths), tf.int32)
    num_tokens = tf.cast(tf.convert_to_tensor(num_tokens), tf.int32)
    batch = tf.shape(ids)[0]
    temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
    seed = tf.cast(seed, tf.int64)
    checks = [
        tf.debugging.assert_positive(lengths, message="every prefix needs at least one token (start it with <bos>)"),
        tf.debugging.assert_less_equal(lengths, tf.shape(ids)[1], message="a prefix length exceeds the prefix ids"),
        tf.debugging.assert_non_negative(num_tokens, message="num_tokens must be >= 0"),
        tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(temperature) & (temperature >= 0)),
            ["temperature must be a finite number >= 0, got", temperature],
        ),
    ]
    with tf.control_dependencies(checks):
        ids, lengths, num_tokens, temperature = (tf.identity(t) for t in (ids, lengths, num_tokens, temperature))
    buffer = tf.pad(ids, [[0, 0], [0, num_tokens]])
    rows = tf.range(batch)
    longest = tf.reduce_max(lengths)
    call = (lambda x: lm(x, training=False)) if isinstance(lm, keras.layers.Layer) else lm

    def step(i, buffer):
        logits = call(buffer[:, : longest + i])  # columns past every row's end are not needed
        last = tf.gather(logits, lengths + i - 1, axis=1, batch_dims=1)  # [B, V]: each row's newest position
        token = next_token(last, temperature, tf.stack([seed, tf.cast(i, tf.int64)]))
        return i + 1, tf.tensor_scatter_nd_update(buffer, tf.stack([rows, lengths + i], axis=1), token)

    _, buffer = tf.while_loop(lambda i, _: i < num_tokens, step, [tf.constant(0), buffer])
    return tf.gather(buffer, lengths[:, None] + tf.range(num_tokens), axis=1, batch_dims=1)
