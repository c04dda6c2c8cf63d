"""Swin's patch merging: 2×2 neighbouring tokens → one token with twice the channels.

Specs: notes-001.md §27 (seed 001 L743-754: "Patch Merging at the end of each stage: reduce
spatial size, increase channels"). The layer is the paper's (Liu et al. 2021, §3.1; paper
default): concatenate the features of each group of 2×2 neighbouring patches (4C), LayerNorm,
then a linear layer without bias down to 2C — a 2× down-sampling of the map, like a stride-2
stage of a CNN. The concatenation order is the paper code's (and keras-hub's): (even row, even
column), (odd, even), (even, odd), (odd, odd), which fixes the layout of the 4C → 2C weights.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class PatchMerging(keras.layers.Layer):
    """``[B, H, W, C]`` → ``[B, H/2, W/2, 2C]``: concat 2×2 neighbours → LayerNorm(4C) → Dense(2C, no bias).

    Args:
        layer_norm_epsilon: LayerNorm ε (1e-5, as in the paper's code).

    Call args:
        x: ``[B, H, W, C]``, H and W even.

    Returns:
        ``[B, H/2, W/2, 2C]``.

    Example:
        >>> import numpy as np
        >>> merge = PatchMerging()
        >>> merge(np.random.rand(2, 8, 8, 16).astype("float32")).shape
        TensorShape([2, 4, 4, 32])
        >>> merge.count_params()  # LayerNorm(64): 128, Dense 64 → 32 without bias: 2048
        2176
    """

    def __init__(self, layer_norm_epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if height % 2 or width % 2:
            raise ValueError(f"PatchMerging: needs an even map, got {height}x{width}")
        merged_shape = (*input_shape[:-1], 4 * channels)
        self.norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm")
        self.norm.build(merged_shape)
        self.reduction = keras.layers.Dense(2 * channels, use_bias=False, dtype=self.dtype_policy, name="reduction")
        self.reduction.build(merged_shape)

    def call(self, x):
        neighbours = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        return self.reduction(self.norm(ops.concatenate(neighbours, axis=-1)))

    def get_config(self):
        return {**super().get_config(), "layer_norm_epsilon": self.layer_norm_epsilon}
