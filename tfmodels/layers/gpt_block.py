"""One decoder-only Transformer (GPT) block: causal multi-head self-attention and an MLP, each added back.

Specs: notes-001.md §1 (seed 000/001 "KeyPoint" L1–24): self-attention where every position
attends to the positions of its own sequence (L5); ``A = softmax(Q Kᵀ / √d_k)`` with the entries
where a later token would influence an earlier one set to −∞ before the softmax (L14–15, causal
masking); the values' weighted sum is **added to the original embedding** (L17–18); many heads
in parallel, each with its own ``W_q, W_k, W_v`` (L19; GPT-3: 96 heads); the MLP (L21–22): an
up-projection to **4 × d** plus a bias, GELU (or ReLU), a down-projection plus a bias back to
``d``, **added to the original vector**, at every position in parallel. notes-002-part2.md §47
(self-attention), §49 (multi-head attention: ``h`` heads of width ``d / h`` whose outputs are
concatenated and projected by ``W_o``), §50 (the causal mask: the output at position i pretends
the sequence ends at i), §51 (position-wise FFN).

The notes never mention a normalisation in the GPT walk-through (notes-001 §1 "NOT in notes:
LayerNorm"); their picture — every sub-layer *adds* its change to the embedding stream, which is
read by the next sub-layer and finally by the un-embedding — is the **pre-LN** residual stream
of GPT-2 and GPT-3 (paper default: Radford et al. 2019 §2.3, Brown et al. 2020 §2.1), where the
LayerNorm sits on each sub-layer's *input* and the stream itself stays un-normalised::

    x = x + Dropout(MultiHeadAttention(LN₁(x), causal))      # notes L17–19
    x = x + Dropout(W₂ · GELU(W₁ · LN₂(x) + b₁) + b₂)          # notes L21–22, W₁: d → 4d

(The BERT / original-Transformer block of :mod:`tfmodels.layers.transformer_encoder` is post-LN,
``LN(x + sublayer(x))``, notes-002-part2 §52; the notes' GPT description has no LN at all, so
"added to the original vector" is kept literally here and the LNs are GPT-2/3's.)

Paper defaults where the notes are silent (GPT-2/3): GELU in its tanh form
(:func:`tfmodels.layers.transformer_encoder.gelu_approximate`, GPT-2's ``gelu``), LayerNorm
ε = 1e-5, dropout 0.1 on the attention probabilities and on both sub-layer outputs, kernels drawn
from N(0, 0.02²) and the two projections that write into the residual stream (``W_o`` and ``W₂``)
from N(0, (0.02 / √(2·num_layers))²) (GPT-2 §2.3), zero biases.

Parameters of one block with width d (heads do not change the count, d = h · d/h):
attention ``4d² + 4d`` (Q, K, V and the output projection, each with a bias), MLP
``8d² + 5d`` (``d·4d + 4d + 4d·d + d``), two LayerNorms ``4d`` — ``12d² + 13d`` in all.
"""

from __future__ import annotations

import keras

from tfmodels.layers.transformer_encoder import gelu_approximate

INITIALIZER_STDDEV = 0.02  # GPT-2 / GPT-3 (paper default)


@keras.saving.register_keras_serializable(package="tfmodels")
class GptBlock(keras.layers.Layer):
    """A pre-LN causal self-attention + MLP block (GPT-2/3), ``[B, T, d] → [B, T, d]``.

    The output at position t depends on the inputs at positions ``0..t`` only (causal mask,
    notes-002-part2 §50): a next-token model built from these blocks never sees the token it
    predicts.

    Args:
        num_heads: attention heads h; the input width d must be a multiple of h (each head has
            ``d / h`` dimensions for its queries, keys and values, notes-002-part2 §49).
        intermediate_dim: hidden width of the MLP; ``None`` is ``4 · d`` (notes-001 §1 L21:
            GPT-3's 49152 = 4 × 12288).
        dropout: rate on the attention probabilities and on both sub-layer outputs before they
            are added to the stream (GPT-2/3: 0.1, paper default).
        activation: MLP non-linearity (notes L21: "ReLU or GELU"); default GPT-2's tanh GELU.
        layer_norm_epsilon: ε of both LayerNorms (GPT-2: 1e-5, paper default).
        num_layers: blocks in the whole model; scales the initial output projections by
            ``1 / √(2·num_layers)`` as GPT-2 does (1 = no scaling).

    Call args:
        inputs: ``[B, T, d]`` float tensor (the residual stream).
        training: dropout on or off.

    Example:
        >>> import numpy as np
        >>> block = GptBlock(num_heads=4)
        >>> block(np.zeros((2, 5, 32), "float32")).shape
        TensorShape([2, 5, 32])
        >>> block.count_params() == 12 * 32**2 + 13 * 32
        True
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int | None = None,
        dropout: float = 0.1,
        activation=gelu_approximate,
        layer_norm_epsilon: float = 1e-5,
        num_layers: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.num_layers = num_layers

    def _dense_kwargs(self, residual_output: bool = False) -> dict:
        stddev = INITIALIZER_STDDEV / (2 * self.num_layers) ** 0.5 if residual_output else INITIALIZER_STDDEV
        return {
            "kernel_initializer": keras.initializers.RandomNormal(stddev=stddev),
            "bias_initializer": "zeros",
            "dtype": self.dtype_policy,
        }

    def build(self, inputs_shape):
        width = inputs_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"GptBlock: the model width {width} is not a multiple of num_heads={self.num_heads}")
        hidden = self.intermediate_dim or 4 * width
        norm = {"epsilon": self.layer_norm_epsilon, "dtype": self.dtype_policy}
        self.attention_layer_norm = keras.layers.LayerNormalization(name="attention_layer_norm", **norm)
        self.attention_layer_norm.build(inputs_shape)
        self.self_attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=width // self.num_heads,
            dropout=self.dropout,
            name="self_attention",
            **self._dense_kwargs(),
        )
        self.self_attention.build(inputs_shape, inputs_shape)
        # Keras' MultiHeadAttention gives every projection the same initializer; only W_o
        # writes into the residual stream, so it gets GPT-2's scaled one.
        output_kernel = self.self_attention.output_dense.kernel
        output_kernel.assign(self._dense_kwargs(residual_output=True)["kernel_initializer"](output_kernel.shape))
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_output_dropout")
        self.mlp_layer_norm = keras.layers.LayerNormalization(name="mlp_layer_norm", **norm)
        self.mlp_layer_norm.build(inputs_shape)
        self.mlp_up = keras.layers.Dense(hidden, activation=self.activation, name="mlp_up_projection", **self._dense_kwargs())
        self.mlp_up.build(inputs_shape)
        self.mlp_down = keras.layers.Dense(width, name="mlp_down_projection", **self._dense_kwargs(residual_output=True))
        self.mlp_down.build((*inputs_shape[:-1], hidden))
        self.mlp_dropout = keras.layers.Dropout(self.dropout, name="mlp_output_dropout")

    def call(self, inputs, training=None):
        normed = self.attention_layer_norm(inputs)
        attended = self.self_attention(normed, normed, use_causal_mask=True, training=training)
        x = inputs + self.attention_dropout(attended, training=training)
        transformed = self.mlp_down(self.mlp_up(self.mlp_layer_norm(x)))
        return x + self.mlp_dropout(transformed, training=training)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "num_layers": self.num_layers,
        }
