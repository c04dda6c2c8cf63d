"""The Swin Transformer block: pre-LN (shifted-)window attention and MLP, on ``[B, H, W, C]`` maps.

Specs: notes-001.md §27 (seed 001 L722-773: W-MSA and SW-MSA alternating in consecutive blocks;
tests "even-numbered blocks use shift 0, odd ones shift M//2"). The block is the paper's
(Liu et al. 2021, §3.1 and eq. 3; paper default)::

    ẑ = (S)W-MSA(LN(z)) + z        # windows of M×M tokens; SW-MSA first rolls the map by −⌊M/2⌋
    z' = MLP(LN(ẑ)) + ẑ            # Dense(4C) → GELU → Dense(C)

with LayerNorm ε 1e-5 and the exact (erf) GELU of the paper's code, and stochastic depth on
both residual branches (:class:`~tfmodels.layers.drop_path.DropPath`). As in the paper's code,
a window at least as large as the map shrinks to the map (one window, no shift). Maps must be a
whole number of windows (the paper's classification setting: 56, 28, 14, 7 with M = 7).
"""

from __future__ import annotations

import keras
from keras import ops

from tfmodels.layers.drop_path import DropPath
from tfmodels.layers.shifted_window_mask import shifted_window_mask
from tfmodels.layers.window_attention import WindowAttention, window_partition, window_reverse


@keras.saving.register_keras_serializable(package="tfmodels")
class SwinTransformerBlock(keras.layers.Layer):
    """One Swin block: W-MSA (``shift_size=0``) or SW-MSA (``shift_size=M//2``), then the MLP.

    Args:
        num_heads: attention heads (C must be a multiple).
        window_size: requested window side M (paper default 7); shrinks to ``min(H, W)`` when that
            is not larger (then the shift is 0).
        shift_size: cyclic shift s: 0 for W-MSA, ``window_size // 2`` for SW-MSA.
        mlp_ratio: MLP hidden width over C (paper default 4).
        qkv_bias: bias on the Q/K/V projection (paper default True).
        dropout: dropout after the attention projection and in the MLP.
        attention_dropout: dropout on the attention probabilities.
        drop_path: stochastic-depth rate of both residual branches.
        layer_norm_epsilon: LayerNorm ε (1e-5, PyTorch's, as in the paper's code).
        seed: seed of the drop-path stream.

    Call args:
        x: ``[B, H, W, C]`` with static H and W.
        training: dropout and drop path on or off.

    Attributes (after build):
        effective_window_size, effective_shift_size: M and s after shrinking to the map.

    Returns:
        ``[B, H, W, C]``.

    Example:
        >>> import numpy as np
        >>> block = SwinTransformerBlock(num_heads=2, window_size=4, shift_size=2)
        >>> block(np.random.rand(1, 8, 8, 16).astype("float32")).shape
        TensorShape([1, 8, 8, 16])
    """

    def __init__(
        self,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 <= shift_size < window_size:
            raise ValueError(f"SwinTransformerBlock: shift_size must be in [0, {window_size}), got {shift_size}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = qkv_bias
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.drop_path = drop_path
        self.layer_norm_epsilon = layer_norm_epsilon
        self.seed = seed

    def _shrink_window(self, height: int, width: int) -> None:
        self.effective_window_size, self.effective_shift_size = self.window_size, self.shift_size
        if min(height, width) <= self.window_size:
            self.effective_window_size, self.effective_shift_size = min(height, width), 0
        if height % self.effective_window_size or width % self.effective_window_size:
            raise ValueError(
                f"SwinTransformerBlock: a {height}x{width} map is not a grid of "
                f"{self.effective_window_size}x{self.effective_window_size} windows"
            )

    def build(self, input_shape):
        _, height, width, channels = input_shape
        self._shrink_window(height, width)
        tokens_shape = (None, self.effective_window_size**2, channels)
        self.norm1 = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm1")
        self.norm1.build(input_shape)
        self.attn = WindowAttention(
            self.num_heads, self.effective_window_size, self.qkv_bias, self.attention_dropout, self.dropout,
            dtype=self.dtype_policy, name="attn",
        )
        self.attn.build(tokens_shape)
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm2")
        self.norm2.build(input_shape)
        hidden = int(channels * self.mlp_ratio)
        self.mlp_fc1 = keras.layers.Dense(hidden, activation="gelu", dtype=self.dtype_policy, name="mlp_fc1")
        self.mlp_fc1.build(input_shape)
        self.mlp_fc2 = keras.layers.Dense(channels, dtype=self.dtype_policy, name="mlp_fc2")
        self.mlp_fc2.build((*input_shape[:-1], hidden))
        self.mlp_dropout = keras.layers.Dropout(self.dropout)
        self.drop_path_layer = DropPath(self.drop_path, seed=self.seed, dtype=self.dtype_policy, name="drop_path")

    def _window_attention(self, x, training):
        """(S)W-MSA on a normalised ``[B, H, W, C]`` map."""
        _, height, width, channels = x.shape
        size, shift = self.effective_window_size, self.effective_shift_size
        mask = None
        if shift:
            x = ops.roll(x, shift=(-shift, -shift), axis=(1, 2))
            mask = shifted_window_mask(height, width, size, shift)
        windows = ops.reshape(window_partition(x, size), (-1, size * size, channels))
        windows = self.attn(windows, attention_mask=mask, training=training)
        x = window_reverse(windows, size, height, width)
        return ops.roll(x, shift=(shift, shift), axis=(1, 2)) if shift else x

    def _mlp(self, x, training):
        x = self.mlp_dropout(self.mlp_fc1(x), training=training)
        return self.mlp_dropout(self.mlp_fc2(x), training=training)

    def call(self, x, training=None):
        x = x + self.drop_path_layer(self._window_attention(self.norm1(x), training), training=training)
        return x + self.drop_path_layer(self._mlp(self.norm2(x), training), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "shift_size": self.shift_size,
            "mlp_ratio": self.mlp_ratio,
            "qkv_bias": self.qkv_bias,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "drop_path": self.drop_path,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "seed": self.seed,
        }
