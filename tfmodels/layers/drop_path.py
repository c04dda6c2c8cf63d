"""Stochastic depth ("drop path") on a residual branch (Huang et al. 2016), as Swin and ViT train it.

Specs: notes-001.md §27 gives no regulariser; the Swin paper trains Swin-T with stochastic depth
0.2, the rate rising linearly from 0 at the first block to 0.2 at the last (Liu et al. 2021,
§4.1 and appendix A2.1; paper default). Per sample, the branch is dropped with probability p and
otherwise scaled by 1/(1 − p), so its expectation is unchanged; at inference it is the identity.
Same computation as keras-hub's Swin ``DropPath``.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class DropPath(keras.layers.Layer):
    """Zeroes a residual branch for a random subset of samples while training, else scales it.

    Args:
        rate: probability p of dropping the branch of one sample.
        seed: seed of the layer's own random stream (None: unseeded).

    Call args:
        x: the branch output ``[B, ...]``.
        training: drop only when True.

    Returns:
        ``x · keep / (1 − p)`` with ``keep ~ Bernoulli(1 − p)`` per sample while training, else ``x``.

    Example:
        >>> import numpy as np
        >>> layer = DropPath(0.5, seed=0)
        >>> out = layer(np.ones((8, 3), "float32"), training=True).numpy()
        >>> sorted(set(out.ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
        True
        >>> bool((layer(np.ones((8, 3), "float32")).numpy() == 1).all())  # inference: identity
        True
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep_prob = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        keep = ops.floor(keep_prob + keras.random.uniform(shape, dtype=x.dtype, seed=self.seed_generator))
        return x / keep_prob * keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
