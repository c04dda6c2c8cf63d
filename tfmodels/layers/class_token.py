"""The learned class token of ViT (and BERT's [CLS] idea): one vector prepended to a token sequence.

Specs: notes-001.md §24 (seed 001 L623-625: a special CLS token is added as the first token; after
all layers its output is the image representation fed to the linear classifier); Dosovitskiy et
al. 2021, eq. 1 (``z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos``).

The prepended vector is ``x_class + E_pos[0]``: the class token and its own position embedding,
kept as the paper's two learned vectors (only their sum reaches the encoder). Folding them into
one would give the same function with ``D`` fewer parameters, but the published count (ViT-B/16:
86,567,656 with the 1000-class head) and keras-hub's ``ViTBackbone`` (a ``class_token`` weight and
a ``(1 + N) x D`` position table) hold both, so a converter copies each weight as it is. The
patches' position embeddings ``E_pos[1:]`` live in
:class:`~tfmodels.layers.grid_position_embedding.GridPositionEmbedding`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class ClassToken(keras.layers.Layer):
    """Prepends one learned ``D``-vector to every sequence: ``[B, N, D] -> [B, 1 + N, D]``.

    The vector is ``token + position_embedding`` (ViT eq. 1's ``x_class`` and ``E_pos[0]``).

    Args:
        initializer: initializer of ``token`` (``x_class``); zeros, as in the paper's code
            (google-research/vision_transformer; paper default).
        position_initializer: initializer of ``position_embedding`` (``E_pos[0]``); ``None`` is a
            normal distribution with stddev 0.02, as the rest of the position table (keras-hub,
            timm; paper default).

    Call args:
        inputs: ``[B, N, D]`` token sequence; ``B`` and ``N`` may be dynamic.

    Returns:
        ``[B, 1 + N, D]``: the token at position 0, then ``inputs``.

    Example:
        >>> import numpy as np
        >>> layer = ClassToken(initializer="ones", position_initializer="zeros")
        >>> out = layer(np.zeros((2, 3, 4), "float32"))
        >>> out.shape, out[:, 0].numpy().tolist()
        (TensorShape([2, 4, 4]), [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    """

    def __init__(self, initializer="zeros", position_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)
        self.position_initializer = keras.initializers.get(
            position_initializer or keras.initializers.RandomNormal(stddev=0.02)
        )

    def build(self, inputs_shape):
        width = inputs_shape[-1]
        self.token = self.add_weight(name="token", shape=(width,), initializer=self.initializer)
        self.position_embedding = self.add_weight(
            name="position_embedding", shape=(width,), initializer=self.position_initializer
        )

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        token = ops.cast(ops.reshape(self.token + self.position_embedding, (1, 1, -1)), inputs.dtype)
        return ops.concatenate([ops.tile(token, (batch, 1, 1)), inputs], axis=1)

    def compute_output_shape(self, inputs_shape):
        length = None if inputs_shape[1] is None else inputs_shape[1] + 1
        return (inputs_shape[0], length, inputs_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "initializer": keras.initializers.serialize(self.initializer),
            "position_initializer": keras.initializers.serialize(self.position_initializer),
        }
