"""Stateless random streams for training-time transforms: one stream per random op, per batch.

A transform that the trainer maps over the training batches (``Recipe.train_transform``) draws
its randomness from ``stream_seed(batch_seed(seed, batch), name)``: a stateless seed that is a
function of the run seed, the batch's content and the op's stream name only. The trainer
reshuffles the (cached) training split with ``(seed, epoch)`` before batching, so the batches,
and with them the draws, change from epoch to epoch, and a run resumed after a kill sees exactly
the draws of an uninterrupted run: there is no generator state to lose. Ops with different stream
names draw independently. (A training split that is not shuffled repeats its batches, and so its
draws, every epoch.)
"""

from __future__ import annotations

import zlib

import tensorflow as tf


def batch_seed(seed: int, batch: tf.Tensor) -> tf.Tensor:
    """The ``[2]`` int64 stateless seed of ``batch`` in a run with training seed ``seed``.

    Args:
        seed: the run's training seed (``cfg.seed``).
        batch: a tensor of the batch (e.g. the images or the token ids); a fingerprint of its
            content (dtype, shape and order included) keys the draws.
    """
    fingerprint = tf.bitcast(tf.fingerprint(tf.reshape(batch, [1, -1]))[0], tf.int64)
    return tf.stack([tf.constant(seed, tf.int64), fingerprint])


def stream_seed(seed: tf.Tensor, stream: str) -> tf.Tensor:
    """The seed of the op named ``stream`` under a ``[2]`` seed (e.g. :func:`batch_seed`).

    The stream's id is the CRC-32 of its name (stable across processes, unlike Python's salted
    ``hash``), so ops with different names draw independently.

    Example:
        >>> batch = batch_seed(1, tf.zeros([2, 4, 4, 3]))
        >>> bool(tf.reduce_all(stream_seed(batch, "flip") == stream_seed(batch, "flip")))
        True
        >>> bool(tf.reduce_all(stream_seed(batch, "flip") == stream_seed(batch, "crop")))
        False
    """
    return tf.random.experimental.stateless_fold_in(seed, zlib.crc32(stream.encode()))
