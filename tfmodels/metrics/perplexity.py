"""Perplexity, the language-model metric: exp of the mean per-token cross-entropy.

Spec: notes-002-part2.md §33 (seed 002 L3029-3049): ``π = (1/n) Σ_t −log P(x_t | x_<t)`` and
perplexity ``exp(π)``; 1 for a perfect model, +∞ at worst, and the vocabulary size for uniform
predictions, the baseline every model must beat. Shared by BERT's masked-LM head and the RNN
language models.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class Perplexity(keras.metrics.Metric):
    """``exp(Σ w·CE / Σ w)`` over every token seen since the last reset.

    The mean is over tokens, weighted, across all batches (not a mean of per-batch
    perplexities): the state is the weighted cross-entropy sum and the weight sum.

    Args:
        from_logits: ``y_pred`` holds logits (True) or probabilities (False).
        mask_token_id: a label id (e.g. ``<pad>``) whose tokens get weight 0; ``None``: none.
        name: metric name.
        dtype: dtype of the state and the result.

    Update args:
        y_true: integer labels ``[...]``.
        y_pred: ``[..., V]`` logits or probabilities.
        sample_weight: optional weights broadcastable to ``y_true`` (BERT: ``mlm_weights``, 0 on
            padded prediction slots). In ``compile`` pass the metric in ``weighted_metrics`` so
            that Keras hands it the sample weights.

    Example:
        >>> import numpy as np
        >>> metric = Perplexity()
        >>> metric.update_state(np.array([[1, 2]]), np.zeros((1, 2, 28), "float32"))
        >>> round(float(metric.result()), 4)  # uniform over 28 tokens
        28.0
    """

    def __init__(self, from_logits: bool = True, mask_token_id: int | None = None, name: str = "perplexity", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = from_logits
        self.mask_token_id = mask_token_id
        self.cross_entropy_sum = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="cross_entropy_sum")
        self.weight_sum = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="weight_sum")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        # Half-precision logits (mixed precision) lose too much in the log-softmax.
        y_pred = ops.cast(y_pred, "float32")
        cross_entropy = ops.cast(
            keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits), self.dtype
        )
        weights = ops.ones_like(cross_entropy)
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
            # Weights may come as [B, P, 1] or per sequence [B] for [B, P] tokens.
            if len(sample_weight.shape) == len(cross_entropy.shape) + 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            while len(sample_weight.shape) < len(cross_entropy.shape):
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            weights = weights * sample_weight
        if self.mask_token_id is not None:
            weights = weights * ops.cast(ops.not_equal(y_true, self.mask_token_id), self.dtype)
        self.cross_entropy_sum.assign_add(ops.sum(cross_entropy * weights))
        self.weight_sum.assign_add(ops.sum(weights))

    def result(self):
        # 1.0 (exp 0) before any weighted token has been seen.
        return ops.exp(ops.divide_no_nan(self.cross_entropy_sum, self.weight_sum))

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "mask_token_id": self.mask_token_id}
