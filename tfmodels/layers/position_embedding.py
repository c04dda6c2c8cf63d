"""Learned absolute position embeddings (BERT), as a registered Keras layer.

Keras core has no position-embedding layer (keras-hub's ``PositionEmbedding`` is a dev-only
dependency here), so this is the same computation with core ops only: one trainable vector per
position ``0..sequence_length-1``, sliced to the input's length. BERT learns its position
embeddings instead of the Transformer's fixed sinusoids (notes-001.md §25, seed 001 L643-649;
notes-002-part2.md §54).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class PositionEmbedding(keras.layers.Layer):
    """Returns the learned embeddings of positions ``0..L-1`` broadcast to the input's shape.

    The input is only read for its shape ``[B, L, H]`` (usually the token embeddings), so the
    output can be added to it. ``L`` may vary from call to call (a serving graph takes any length)
    but must not exceed ``sequence_length``; a longer input fails in the slice with a shape error.

    Args:
        sequence_length: the largest supported sequence length (BERT's ``max_position_embeddings``,
            512 in the paper).
        initializer: initializer of the ``[sequence_length, H]`` table; BERT uses a truncated normal
            with stddev 0.02 (paper default).

    Example:
        >>> import numpy as np
        >>> layer = PositionEmbedding(sequence_length=16)
        >>> layer(np.zeros((2, 5, 8), "float32")).shape
        TensorShape([2, 5, 8])
    """

    def __init__(self, sequence_length: int, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        shape = ops.shape(inputs)
        table = ops.slice(self.embeddings, (0, 0), (shape[-2], shape[-1]))
        return ops.broadcast_to(ops.cast(table, self.compute_dtype), shape)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "initializer": keras.initializers.serialize(self.initializer),
        }
