"""Minibatches of a long token sequence for language models (notes-002-part2 §25, seed lines 2643–2669, 2687).

The corpus is cut into subsequences of ``num_steps`` tokens; the labels ``Y`` are the inputs ``X``
shifted by one token. The cut starts at a **random offset**, drawn anew every epoch, for both
coverage and randomness (L2653–2655). Two strategies, as ``tf.data`` transformations
(``dataset.apply(...)``) of a dataset of token ids:

* :func:`random_sampling` (L2659–2663): non-overlapping subsequences at offset + k·num_steps, in
  a random order; two adjacent minibatches are not adjacent in the corpus. Offset in
  ``[0, num_steps − 1]`` ([REF d2l] ``seq_data_iter_random``).
* :func:`sequential_partitioning` (L2665–2667): the corpus after the offset is split into
  ``batch_size`` contiguous rows, read ``num_steps`` columns at a time, so row r of batch b + 1
  continues row r of batch b (an RNN can carry its state across batches). Offset in
  ``[0, num_steps]`` ([REF d2l] ``seq_data_iter_sequential``).

Both yield ``(X, Y)`` int tensors of shape ``[batch_size, num_steps]`` and drop the tokens that do
not fill a whole batch, so the number of batches depends on the offset (d2l's counts):
``((L − offset − 1) // num_steps) // batch_size`` for random sampling and
``((L − offset − 1) // batch_size) // num_steps`` for sequential partitioning, L = corpus length.

Randomness is seeded and stateless. With ``epoch=None`` the offset and order come from
``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: every iteration of the
returned dataset (Keras ``fit`` starts one per epoch; ``repeat`` one per repetition) is a new
epoch, and the sequence of epochs is the same for the same seed. With ``epoch`` given (an int or
a scalar tensor, e.g. inside ``Dataset.range(epochs).flat_map``), the epoch depends on
``(seed, epoch)`` alone, so a run resumed at epoch k sees the batches the uninterrupted run saw.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

Transform = Callable[[tf.data.Dataset], tf.data.Dataset]


def _whole_corpus(tokens: tf.data.Dataset) -> tf.data.Dataset:
    """One element: all token ids of the dataset as a 1-D tensor (1-D elements are concatenated)."""
    if tokens.element_spec.shape.rank == 1:
        tokens = tokens.unbatch()
    if tokens.element_spec.shape.rank != 0 or not tokens.element_spec.dtype.is_integer:
        raise ValueError(f"expected a dataset of integer token ids, got {tokens.element_spec}")
    return tokens.batch(np.iinfo(np.int64).max)


def _epoch_seeds(seed: int, epoch) -> tf.data.Dataset:
    """One element: the stateless seed ``[2] int64`` of an epoch."""
    if epoch is None:
        return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(1)
    return tf.data.Dataset.from_tensors(tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)]))


def _per_epoch(tokens: tf.data.Dataset, seed: int, epoch, make_epoch) -> tf.data.Dataset:
    epochs = tf.data.Dataset.zip(_whole_corpus(tokens), _epoch_seeds(seed, epoch))
    return epochs.flat_map(make_epoch)


def _check(batch_size: int, num_steps: int) -> None:
    if batch_size < 1 or num_steps < 1:
        raise ValueError(f"batch_size and num_steps must be positive, got {batch_size} and {num_steps}")


def random_sampling(batch_size: int, num_steps: int, seed: int, epoch=None) -> Transform:
    """Random sampling (§25): shuffled non-overlapping subsequences after a random offset.

    Args:
        batch_size: subsequences per minibatch.
        num_steps: tokens per subsequence (time steps).
        seed: the seed of the offsets and orders.
        epoch: ``None`` draws a new epoch at every iteration; an int or scalar tensor fixes the
            epoch to a function of ``(seed, epoch)`` (see the module docstring).

    Returns:
        A transformation: dataset of token ids (scalars, or 1-D chunks that are concatenated) →
        dataset of ``(X, Y)``, each ``[batch_size, num_steps]``, with ``Y = X + 1 position``.

    Example:
        >>> corpus = tf.data.Dataset.range(35)
        >>> batches = list(corpus.apply(random_sampling(2, 5, seed=0)).as_numpy_iterator())
        >>> len(batches), all(((y - x) == 1).all() for x, y in batches)
        (3, True)
    """
    _check(batch_size, num_steps)

    def one_epoch(corpus, seed2):
        offset_seed, order_seed = tf.unstack(tf.random.experimental.stateless_split(seed2, 2))
        offset = tf.random.stateless_uniform([], offset_seed, 0, num_steps, dtype=tf.int64)
        corpus = corpus[offset:]
        num_subseqs = tf.maximum(tf.size(corpus, tf.int64) - 1, 0) // num_steps
        num_batches = num_subseqs // batch_size
        order = tf.argsort(tf.random.stateless_uniform([num_subseqs], order_seed))
        starts = tf.gather(tf.range(num_subseqs) * num_steps, order)[: num_batches * batch_size]
        windows = tf.reshape(starts, [-1, batch_size, 1]) + tf.range(num_steps, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((tf.gather(corpus, windows), tf.gather(corpus, windows + 1)))

    return lambda tokens: _per_epoch(tokens, seed, epoch, one_epoch)


def sequential_partitioning(batch_size: int, num_steps: int, seed: int, epoch=None) -> Transform:
    """Sequential partitioning (§25): adjacent minibatches continue each other row by row.

    Args:
        batch_size: rows (parallel streams) per minibatch.
        num_steps: tokens per row of a minibatch (time steps).
        seed: the seed of the offsets.
        epoch: ``None`` draws a new offset at every iteration; an int or scalar tensor fixes it
            to a function of ``(seed, epoch)`` (see the module docstring).

    Returns:
        A transformation: dataset of token ids → dataset of ``(X, Y)``, each
        ``[batch_size, num_steps]``; row r of batch b + 1 starts where row r of batch b ended.

    Example:
        >>> corpus = tf.data.Dataset.range(35)
        >>> (x0, _), (x1, _) = list(corpus.apply(sequential_partitioning(2, 5, seed=0)).as_numpy_iterator())[:2]
        >>> bool((x1[:, 0] == x0[:, -1] + 1).all())
        True
    """
    _check(batch_size, num_steps)

    def one_epoch(corpus, seed2):
        offset = tf.random.stateless_uniform([], seed2, 0, num_steps + 1, dtype=tf.int64)
        num_tokens = tf.maximum(tf.size(corpus, tf.int64) - offset - 1, 0) // batch_size * batch_size
        rows_x = tf.reshape(corpus[offset : offset + num_tokens], [batch_size, -1])
        rows_y = tf.reshape(corpus[offset + 1 : offset + 1 + num_tokens], [batch_size, -1])
        num_batches = tf.shape(rows_x, tf.int64)[1] // num_steps

        def batches(rows):  # [batch_size, L] -> [num_batches, batch_size, num_steps]
            cut = tf.reshape(rows[:, : num_batches * num_steps], [batch_size, -1, num_steps])
            return tf.transpose(cut, [1, 0, 2])

        return tf.data.Dataset.from_tensor_slices((batches(rows_x), batches(rows_y)))

    return lambda tokens: _per_epoch(tokens, seed, epoch, one_epoch)
