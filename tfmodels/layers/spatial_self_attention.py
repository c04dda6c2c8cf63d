"""Single-head self-attention over the pixels of a feature map, with a residual (DDPM U-Net).

Spec: notes-003-004.md F1 ("self-attention at 16×16"); the layout is the paper's code (Ho et al.
2020, ``diffusion_tf/models/unet.py: attn_block``; paper default). For ``x [B, H, W, C]``:

    h = GroupNorm(x)
    q, k, v = Dense_q(h), Dense_k(h), Dense_v(h)              1x1 projections, C → C
    w[b, i, j] = softmax_j(q_i · k_j / √C)                   i, j over the H·W pixels
    out = x + Dense_o(Σ_j w[b, i, j] v_j)                    Dense_o initialised ≈ 0

so every pixel sees every other one, at a cost quadratic in H·W (which is why the paper uses it only
at the 16×16 level). The softmax runs in float32 under mixed precision.
"""

from __future__ import annotations

import keras
from keras import ops

from tfmodels.layers.diffusion_residual_block import GROUP_NORM_GROUPS, group_norm, near_zero_initializer


@keras.saving.register_keras_serializable(package="tfmodels")
class SpatialSelfAttention(keras.layers.Layer):
    """``[B, H, W, C]`` → ``[B, H, W, C]``: ``x`` + single-head attention over its pixels.

    Args:
        groups: GroupNorm groups (32, paper default); must divide C.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> layer = SpatialSelfAttention(groups=4)
        >>> tuple(layer(keras.ops.ones((2, 3, 5, 8))).shape)
        (2, 3, 5, 8)
        >>> layer.count_params()   # GroupNorm 2·8 + four 8→8 projections with bias
        304
    """

    def __init__(self, groups: int = GROUP_NORM_GROUPS, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.norm = group_norm(self.groups, "norm")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.query = keras.layers.Dense(channels, name="query")
        self.key = keras.layers.Dense(channels, name="key")
        self.value = keras.layers.Dense(channels, name="value")
        self.output_projection = keras.layers.Dense(channels, kernel_initializer=near_zero_initializer(), name="output")
        self.norm.build(input_shape)
        for layer in (self.query, self.key, self.value, self.output_projection):
            layer.build(input_shape)
        self.built = True

    def call(self, x):
        shape = ops.shape(x)
        channels = x.shape[-1]
        h = self.norm(x)
        pixels = (shape[0], shape[1] * shape[2], channels)
        q, k, v = (ops.reshape(projection(h), pixels) for projection in (self.query, self.key, self.value))
        logits = ops.einsum("bic,bjc->bij", q, k) * (channels**-0.5)
        weights = ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), v.dtype)
        attended = ops.reshape(ops.einsum("bij,bjc->bic", weights, v), shape)
        return x + self.output_projection(attended)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
