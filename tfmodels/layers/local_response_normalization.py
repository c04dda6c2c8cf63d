"""Local response normalisation across channels (AlexNet, GoogLeNet), as a registered Keras layer."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfmodels")
class LocalResponseNormalization(keras.layers.Layer):
    """AlexNet's LRN across channels: ``b_i = a_i / (k + α Σ_{|j-i|≤r} a_j²)^β`` (no weights).

    The paper's constants are k=2, n=2r+1=5, α=1e-4, β=0.75 (notes-003-004 B1); TensorFlow's
    ``tf.nn.local_response_normalization`` sums the n squares without dividing α by n, as the paper.

    Args:
        depth_radius: r, half the channel window.
        bias: k.
        alpha: α.
        beta: β.

    Example:
        >>> import numpy as np
        >>> x = np.ones((1, 1, 1, 5), "float32")
        >>> LocalResponseNormalization()(x).numpy().round(6)[0, 0, 0, 2]  # 1 / (2 + 5e-4) ** 0.75
        np.float32(0.594492)
    """

    def __init__(self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
