"""The DDPM time embedding: sinusoids of the integer step, then a two-layer MLP (Ho et al. 2020).

Spec: notes-003-004.md F1 (seed 004 L1: the U-Net takes "the image and a time embedding"; the
layout is the paper's, paper default). The sinusoids are the Transformer's (notes E6) in the form
of the DDPM code (``diffusion_tf/nn.py: get_timestep_embedding``): with ``half = dim // 2``,

    ω_i = exp(−log(10000) · i / (half − 1)),   i = 0 … half−1
    emb(t) = [sin(t·ω_0) … sin(t·ω_{half−1}), cos(t·ω_0) … cos(t·ω_{half−1})]

(sines then cosines, concatenated, frequencies from 1 down to 1/10000 exactly). The zoo's
:mod:`~tfmodels.layers.sinusoidal_position_encoding` cannot serve here: it interleaves sin/cos
columns, uses ``10000^(2j/d)`` (lowest frequency 10000^(−(d−2)/d), not 1/10000), adds the table
to its input and holds a fixed number of rows, where DDPM embeds a batch of arbitrary integers.

The MLP is the paper's: Dense(hidden) → swish → Dense(hidden), ``hidden = 4 · base channels``;
every residual block then projects the result (after another swish) to its own channels.
"""

from __future__ import annotations

import math

import keras
from keras import ops


def timestep_sinusoids(timesteps, dim: int):
    """``[B, dim]`` sinusoidal embedding of integer steps, sines then cosines (module docstring).

    Args:
        timesteps: ``[B]`` integer (or float) steps.
        dim: an even embedding width ≥ 4.

    Returns:
        float32 ``[B, dim]``.

    Example:
        >>> timestep_sinusoids(keras.ops.convert_to_tensor([0, 1]), 4).numpy().astype(float).round(4).tolist()
        [[0.0, 0.0, 1.0, 1.0], [0.8415, 0.0001, 0.5403, 1.0]]
    """
    if dim % 2 or dim < 4:
        raise ValueError(f"the embedding width must be even and >= 4, got {dim}")
    half = dim // 2
    frequencies = ops.exp(ops.arange(half, dtype="float32") * (-math.log(10000.0) / (half - 1)))
    angles = ops.cast(timesteps, "float32")[:, None] * frequencies[None, :]
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


@keras.saving.register_keras_serializable(package="tfmodels")
class TimestepEmbedding(keras.layers.Layer):
    """``t [B]`` (int) → ``Dense(hidden)(swish(Dense(hidden)(sinusoids(t, dim))))`` ``[B, hidden]``.

    Args:
        dim: width of the sinusoids (the U-Net's base channels in the paper, 128 on CIFAR-10).
        hidden_dim: width of both Dense layers (``4 · dim`` in the paper, 512).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> layer = TimestepEmbedding(8, 32)
        >>> tuple(layer(keras.ops.convert_to_tensor([0, 5, 999])).shape)
        (3, 32)
        >>> layer.count_params()   # (8·32 + 32) + (32·32 + 32)
        1344
    """

    def __init__(self, dim: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.hidden_dim = int(hidden_dim)
        self.dense0 = keras.layers.Dense(self.hidden_dim, name="dense0")
        self.dense1 = keras.layers.Dense(self.hidden_dim, name="dense1")

    def build(self, input_shape):
        self.dense0.build((None, self.dim))
        self.dense1.build((None, self.hidden_dim))
        self.built = True

    def call(self, timesteps):
        embedding = ops.cast(timestep_sinusoids(timesteps, self.dim), self.compute_dtype)
        return self.dense1(ops.silu(self.dense0(embedding)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden_dim": self.hidden_dim}
