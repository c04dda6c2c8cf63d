"""Sinusoidal positional encoding (notes-002-part2 §48, seed 002 L3687–3722).

``P[i, 2j] = sin(i / 10000^(2j/d))`` and ``P[i, 2j+1] = cos(i / 10000^(2j/d))`` [IMG L3699/L3705]:
even columns sine, odd columns cosine, a different period per column pair. The layer adds ``P``
to its input (``X + P``, L3693) — d2l's ``PositionalEncoding`` (dropout is left to the caller).
For a fixed offset δ, the pair ``(P[i+δ, 2j], P[i+δ, 2j+1])`` is a rotation of ``(P[i, 2j],
P[i, 2j+1])`` by ``δ·ω_j`` whatever ``i`` is (L3722): relative positions are linear maps.

The table holds ``max_length`` rows and is sliced to the input's length, so any length up to
``max_length`` works in one exported graph.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def sinusoidal_table(length: int, depth: int) -> np.ndarray:
    """The ``[length, depth]`` matrix ``P`` of §48 (float32).

    Example:
        >>> sinusoidal_table(2, 4).round(4).tolist()
        [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 1.0]]
    """
    positions = np.arange(length, dtype=np.float64)[:, None]
    frequencies = 1.0 / np.power(10000.0, np.arange(0, depth, 2, dtype=np.float64) / depth)  # ω_j = 1 / 10000^(2j/d)
    table = np.zeros((length, depth))
    table[:, 0::2] = np.sin(positions * frequencies)
    table[:, 1::2] = np.cos(positions * frequencies[: depth // 2])
    return table.astype(np.float32)


@keras.saving.register_keras_serializable(package="tfmodels")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Adds the sin/cos positional encoding to ``[B, L, d]`` inputs (§48): ``X + P[:L]``.

    Args:
        max_length: the longest sequence the layer accepts ([REF d2l] 1000).

    Example:
        >>> layer = SinusoidalPositionEncoding(max_length=50)
        >>> layer(tf.zeros([1, 3, 4]))[0, 0].numpy().tolist()
        [0.0, 1.0, 0.0, 1.0]
    """

    def __init__(self, max_length: int = 1000, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, inputs_shape):
        self.table = tf.constant(sinusoidal_table(self.max_length, inputs_shape[-1]))
        super().build(inputs_shape)

    def call(self, inputs):
        length = tf.shape(inputs)[1]
        check = tf.debugging.assert_less_equal(length, self.max_length, message=f"sequences longer than max_length={self.max_length}")
        with tf.control_dependencies([check]):
            return inputs + tf.cast(self.table[:length], inputs.dtype)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}
