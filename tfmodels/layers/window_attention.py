"""Window partitioning and window multi-head self-attention with a relative position bias (Swin).

Specs: notes-001.md §27 (seed 001 L722-773: "window-based self-attention: partition into
non-overlapping windows, self-attention within each window"; the tests "window_partition ∘
window_reverse = identity" and "W-MSA output at a token depends only on tokens in its window").
The notes give no window size, bias or scaling; these are the paper's (Liu et al. 2021, Swin
Transformer, §3.2 and eq. 4; paper default):

    Attention(Q, K, V) = SoftMax(Q Kᵀ / √d + B) V,   B = B̂[index(i, j)],  B̂ ∈ R^{(2M−1)² × heads}

for the M² tokens of one M×M window, d the head width; the relative offset of tokens i and j,
``(Δh, Δw) ∈ [−M+1, M−1]²``, indexes the learned table ``B̂`` at
``(Δh + M − 1)·(2M − 1) + (Δw + M − 1)``. Q, K, V come from one dense layer with bias, the heads
are joined by a dense projection; the table starts truncated-normal with std 0.02 (the paper's
code; keras-hub's ``WindowAttention`` has the same weights, see ``swin_keras_hub.py``).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def window_partition(x, window_size: int):
    """Cuts ``[B, H, W, C]`` maps into non-overlapping ``M×M`` windows, row-major over the grid.

    Args:
        x: a ``[B, H, W, C]`` tensor; H and W (static) must be multiples of ``window_size``.
        window_size: the window side M.

    Returns:
        ``[B · (H/M) · (W/M), M, M, C]``: the windows of image 0 in row-major order, then image 1's.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
        >>> window_partition(x, 2)[1, :, :, 0].numpy()
        array([[2., 3.],
               [6., 7.]], dtype=float32)
    """
    _, height, width, channels = x.shape
    if height % window_size or width % window_size:
        raise ValueError(f"window_partition: a {height}x{width} map is not a grid of {window_size}x{window_size} windows")
    x = ops.reshape(x, (-1, height // window_size, window_size, width // window_size, window_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, window_size, window_size, channels))


def window_reverse(windows, window_size: int, height: int, width: int):
    """Puts the windows of :func:`window_partition` back into ``[B, H, W, C]`` maps (its inverse).

    Args:
        windows: ``[B · (H/M) · (W/M), M, M, C]`` (or ``[B · nW, M², C]``) in window_partition's order.
        window_size: the window side M.
        height: the map height H, a multiple of M.
        width: the map width W, a multiple of M.

    Returns:
        ``[B, H, W, C]``.

    Example:
        >>> import numpy as np
        >>> x = np.random.rand(2, 4, 6, 3).astype("float32")
        >>> bool(np.array_equal(window_reverse(window_partition(x, 2), 2, 4, 6), x))
        True
    """
    channels = windows.shape[-1]
    x = ops.reshape(windows, (-1, height // window_size, width // window_size, window_size, window_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def relative_position_index(window_size: int) -> np.ndarray:
    """``[M², M²]`` row of the bias table for each (query, key) pair of a window (paper §3.2).

    Args:
        window_size: the window side M.

    Returns:
        int32 ``(Δh + M − 1)·(2M − 1) + (Δw + M − 1)``, Δ = query position − key position.

    Example:
        >>> relative_position_index(2)
        array([[4, 3, 1, 0],
               [5, 4, 2, 1],
               [7, 6, 4, 3],
               [8, 7, 5, 4]], dtype=int32)
    """
    rows, cols = np.divmod(np.arange(window_size * window_size), window_size)
    delta_h = rows[:, None] - rows[None, :] + window_size - 1
    delta_w = cols[:, None] - cols[None, :] + window_size - 1
    return (delta_h * (2 * window_size - 1) + delta_w).astype("int32")


@keras.saving.register_keras_serializable(package="tfmodels")
class WindowAttention(keras.layers.Layer):
    """Multi-head self-attention inside each window, with the learned relative position bias.

    Paper default (Swin §3.2): a ``(2M−1)² × num_heads`` bias table, scaling ``1/√head_dim``,
    Q/K/V from one dense layer with bias, a dense output projection.

    Args:
        num_heads: attention heads; the channel count must be a multiple of it.
        window_size: the window side M (the inputs hold M² tokens per window).
        qkv_bias: bias on the Q/K/V projection (paper default True).
        attention_dropout: dropout on the attention probabilities.
        dropout: dropout on the output projection.

    Call args:
        windows: ``[B · nW, M², C]`` tokens, window after window, as from :func:`window_partition`
            (reshaped); windows of one image are consecutive.
        attention_mask: optional ``[nW, M², M²]`` for the nW windows of one image, repeated over
            the batch. Boolean: True where query i may attend to key j. Float: added to the
            logits (the paper's code uses 0 / −100).
        training: dropout on or off.

    Returns:
        ``[B · nW, M², C]``.

    Example:
        >>> import numpy as np
        >>> attention = WindowAttention(num_heads=2, window_size=4)
        >>> attention(np.random.rand(3, 16, 8).astype("float32")).shape
        TensorShape([3, 16, 8])
        >>> tuple(attention.relative_position_bias_table.shape)  # (2·4 − 1)² × 2
        (49, 2)
    """

    def __init__(
        self,
        num_heads: int,
        window_size: int,
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv_bias = qkv_bias
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self._bias_index = relative_position_index(window_size)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(f"WindowAttention: {channels} channels are not a multiple of num_heads={self.num_heads}")
        self.head_dim = channels // self.num_heads
        self.qkv = keras.layers.Dense(3 * channels, use_bias=self.qkv_bias, dtype=self.dtype_policy, name="qkv")
        self.qkv.build(input_shape)
        self.proj = keras.layers.Dense(channels, dtype=self.dtype_policy, name="proj")
        self.proj.build(input_shape)
        self.relative_position_bias_table = self.add_weight(
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        self.attention_dropout_layer = keras.layers.Dropout(self.attention_dropout)
        self.dropout_layer = keras.layers.Dropout(self.dropout)

    def relative_position_bias(self):
        """The ``[heads, M², M²]`` bias B added to every window's logits."""
        bias = ops.take(self.relative_position_bias_table, self._bias_index, axis=0)
        return ops.transpose(bias, (2, 0, 1))

    def _masked(self, logits, attention_mask):
        """Applies the per-window mask to ``[B·nW, heads, N, N]`` logits (mask repeated over B)."""
        tokens = logits.shape[-1]
        num_windows = attention_mask.shape[0]
        logits = ops.reshape(logits, (-1, num_windows, self.num_heads, tokens, tokens))
        mask = attention_mask[None, :, None]
        if mask.dtype == "bool":
            logits = ops.where(mask, logits, -1e9)
        else:
            logits = logits + ops.cast(mask, logits.dtype)
        return ops.reshape(logits, (-1, self.num_heads, tokens, tokens))

    def call(self, windows, attention_mask=None, training=None):
        tokens, channels = windows.shape[1], windows.shape[2]
        qkv = ops.reshape(self.qkv(windows), (-1, tokens, 3, self.num_heads, self.head_dim))
        query, key, value = ops.unstack(ops.transpose(qkv, (2, 0, 3, 1, 4)), 3, axis=0)
        logits = ops.matmul(query * ops.cast(self.head_dim**-0.5, query.dtype), ops.transpose(key, (0, 1, 3, 2)))
        # bias, mask and softmax in float32 whatever the compute dtype (design handbook: softmax stays float32)
        logits = ops.cast(logits, "float32") + ops.cast(self.relative_position_bias(), "float32")
        if attention_mask is not None:
            logits = self._masked(logits, ops.convert_to_tensor(attention_mask))
        probabilities = ops.softmax(logits, axis=-1)
        probabilities = self.attention_dropout_layer(ops.cast(probabilities, value.dtype), training=training)
        heads = ops.transpose(ops.matmul(probabilities, value), (0, 2, 1, 3))
        output = self.proj(ops.reshape(heads, (-1, tokens, channels)))
        return self.dropout_layer(output, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "qkv_bias": self.qkv_bias,
            "attention_dropout": self.attention_dropout,
            "dropout": self.dropout,
        }
