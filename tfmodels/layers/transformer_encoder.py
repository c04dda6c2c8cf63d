"""The post-LN Transformer encoder block (Vaswani et al. 2017; BERT), as a registered Keras layer.

Specs: notes-002-part2.md §49 (encoder = n identical layers: multi-head self-attention, then a
position-wise FFN, each followed by "Add & Norm"; seed 002 L3735-3753 — the notes' "层级池化"
"layer pooling" at L3735 is a slip for layer *normalization*), §51 (position-wise FFN = the same
two dense layers at every position, L3769-3782), §52 (``LayerNorm(X + Dropout(Sublayer(X)))``,
normalising over the feature axis only, L3784-3802); notes-001.md §25 (BERT = a stack of these).

One block::

    a = MultiHeadAttention(x, x, mask)        # softmax over keys; padded keys get weight 0
    x = LayerNorm(x + Dropout(a))             # Add & Norm
    f = Dense(d_model)(act(Dense(d_ff)(x)))   # position-wise FFN
    x = LayerNorm(x + Dropout(f))             # Add & Norm

The defaults are BERT's (paper default): GELU, dropout 0.1 on the attention probabilities and on
both sub-layer outputs, LayerNorm epsilon 1e-12. The Transformer translator of the notes (§53,
d2l) uses ``activation="relu"`` and PyTorch's LayerNorm epsilon ``1e-5``; pass those there.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
def gelu_approximate(x):
    """GELU with the tanh approximation ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))``.

    google-research/bert's ``modeling.gelu`` and keras-hub's ``BertBackbone`` use this form; the
    exact form ``x Φ(x)`` (``"gelu"``, erf) differs from it by at most about 5e-4 (Hendrycks &
    Gimpel 2016). Registered, so a layer configured with it round-trips through ``.keras`` files.

    Args:
        x: a tensor.
    """
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="tfmodels")
class TransformerEncoderBlock(keras.layers.Layer):
    """One post-LN Transformer encoder layer: self-attention and FFN, each with Add & LayerNorm.

    Input and output are ``[B, L, d_model]``; ``d_model`` (the input's last axis) must be a
    multiple of ``num_heads`` and each head has ``d_model / num_heads`` dimensions for its
    queries, keys and values (notes-002-part2.md §49, ``p_q = p_k = p_v = p_o / h``).

    Args:
        num_heads: attention heads h.
        intermediate_dim: hidden width of the position-wise FFN (``d_ff``; 4·d_model in BERT).
        dropout: rate after each sub-layer, before the residual sum (and on the embeddings in BERT).
        attention_dropout: rate on the attention probabilities; ``None`` means ``dropout``, as in
            BERT (``attention_probs_dropout_prob = hidden_dropout_prob = 0.1``).
        activation: FFN activation, any Keras activation identifier. Default ``"gelu"``, the exact
            erf form; :func:`gelu_approximate` is the tanh form of google-research/bert and
            keras-hub; the original Transformer uses ``"relu"``.
        layer_norm_epsilon: epsilon of both LayerNorms (BERT 1e-12).
        kernel_initializer: initializer of every dense kernel (BERT: truncated normal, stddev 0.02).
        bias_initializer: initializer of every dense bias.
        normalize_first: ``True`` puts each LayerNorm *before* its sub-layer (pre-LN:
            ``x + Dropout(Sublayer(LayerNorm(x)))``), the form of ViT (Dosovitskiy et al. 2021,
            eq. 2-3; notes-001.md §24) and GPT-2; ``False`` (default) is the notes' post-LN
            "Add & Norm" above.

    Call args:
        inputs: ``[B, L, d_model]`` float tensor.
        padding_mask: optional ``[B, L]``, 1 (or True) for real tokens, 0 for padding; padded
            positions are never attended to. Outputs *at* padded positions are computed but carry
            no meaning.
        attention_mask: optional ``[B, L, L]``, 1 where query i may attend to key j (combined
            with ``padding_mask`` by logical and), e.g. a causal mask.
        training: dropout on or off.

    Example:
        >>> import numpy as np
        >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64)
        >>> x = np.random.rand(2, 5, 32).astype("float32")
        >>> block(x, padding_mask=np.array([[1, 1, 1, 0, 0], [1] * 5])).shape
        TensorShape([2, 5, 32])
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        attention_dropout: float | None = None,
        activation="gelu",
        layer_norm_epsilon: float = 1e-12,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.normalize_first = bool(normalize_first)

    def _dense_kwargs(self):
        # A fresh initializer per sub-layer: Keras gives identical values when one unseeded
        # initializer instance is called twice.
        return {
            "kernel_initializer": self.kernel_initializer.__class__.from_config(self.kernel_initializer.get_config()),
            "bias_initializer": self.bias_initializer.__class__.from_config(self.bias_initializer.get_config()),
            "dtype": self.dtype_policy,
        }

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"TransformerEncoderBlock: the model width {hidden_dim} is not a multiple of num_heads={self.num_heads}"
            )
        self.self_attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.attention_dropout,
            name="self_attention",
            **self._dense_kwargs(),
        )
        self.self_attention.build(inputs_shape, inputs_shape)
        self.self_attention_dropout = keras.layers.Dropout(self.dropout, name="self_attention_dropout")
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="self_attention_layer_norm"
        )
        self.self_attention_layer_norm.build(inputs_shape)
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, name="feedforward_intermediate_dense", **self._dense_kwargs()
        )
        self.feedforward_intermediate_dense.build(inputs_shape)
        self.feedforward_output_dense = keras.layers.Dense(
            hidden_dim, name="feedforward_output_dense", **self._dense_kwargs()
        )
        self.feedforward_output_dense.build((*inputs_shape[:-1], self.intermediate_dim))
        self.feedforward_dropout = keras.layers.Dropout(self.dropout, name="feedforward_dropout")
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="feedforward_layer_norm"
        )
        self.feedforward_layer_norm.build(inputs_shape)

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None):
        mask = None
        if padding_mask is not None:
            # [B, L] over keys -> [B, 1, L], broadcast over the queries.
            mask = ops.expand_dims(ops.cast(padding_mask, "bool"), axis=1)
        if attention_mask is not None:
            attention_mask = ops.cast(attention_mask, "bool")
            mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)
        if self.normalize_first:
            normed = self.self_attention_layer_norm(inputs)
            attended = self.self_attention(normed, normed, attention_mask=mask, training=training)
            x = inputs + self.self_attention_dropout(attended, training=training)
            transformed = self._feedforward(self.feedforward_layer_norm(x))
            return x + self.feedforward_dropout(transformed, training=training)
        attended = self.self_attention(inputs, inputs, attention_mask=mask, training=training)
        x = self.self_attention_layer_norm(inputs + self.self_attention_dropout(attended, training=training))
        transformed = self._feedforward(x)
        return self.feedforward_layer_norm(x + self.feedforward_dropout(transformed, training=training))

    def _feedforward(self, x):
        return self.feedforward_output_dense(self.feedforward_intermediate_dense(x))

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": keras.activations.serialize(self.activation),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "normalize_first": self.normalize_first,
        }
