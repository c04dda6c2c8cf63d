"""A network run on every region separately: R-CNN's one CNN forward pass per proposal.

notes-002-part2.md §7 and §9 (seed 002 L2103, L2127-2129): R-CNN runs the CNN on each warped
proposal on its own, with no computation shared between overlapping proposals, which is what
makes it slow and what Fast R-CNN removes. :class:`PerRegion` does exactly that, batched: the
``N`` regions of ``B`` images become one batch of ``B·N`` inputs of the wrapped network, so its
cost grows with the number of regions. (``keras.layers.TimeDistributed`` would call the network
``N`` times, once per region index, unrolled in the graph.)
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfmodels")
class PerRegion(keras.layers.Wrapper):
    """Runs ``layer`` on each of ``N`` regions of ``B`` images: ``[B, N, ...] -> [B, N, ...]``.

    Args:
        layer: a Keras layer or model on single regions, ``[R, ...] -> [R, ...]`` (R-CNN: the
            CNN on a warped crop, ``[R, h, w, 3] -> features [R, D]``).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Example:
        >>> cnn = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
        >>> PerRegion(cnn)(tf.zeros([2, 5, 8, 8, 3])).shape
        TensorShape([2, 5, 4])
    """

    def call(self, regions, training=None):
        shape = tf.shape(regions)
        rows = self.layer(tf.reshape(regions, tf.concat([[-1], shape[2:]], axis=0)), training=training)
        return tf.reshape(rows, [shape[0], shape[1], *rows.shape[1:]])

    def compute_output_shape(self, input_shape):
        per_region = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *per_region[1:])
