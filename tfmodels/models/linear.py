"""Linear and logistic regression: ``y = x·w + b`` (optionally through a sigmoid).

Spec: notes-002 S1-S4, S7 (linear model, MSE, full-batch GD / SGD / mini-batch) and S10
(logistic regression, BCE); notes-001 §29 (normal equation) and §30 (vectorised GD).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def build_linear(
    num_features: int,
    activation: str | None = None,
    use_bias: bool = True,
    initial_weight: float | None = None,
    name: str = "linear",
) -> keras.Model:
    """A single ``Dense(1)`` on ``num_features`` inputs.

    Args:
        num_features: input width.
        activation: ``None`` for regression, ``"sigmoid"`` for logistic regression.
        use_bias: the notes' ``ŷ = x·w`` (S1-S4) has no bias; ``nn.Linear`` (S7) has one.
        initial_weight: a constant initial weight (the notes start at w=1 in S3/S4 and θ=0 in
            §30); ``None`` keeps Keras' Glorot-uniform default.

    Example:
        >>> model = build_linear(1, use_bias=False, initial_weight=1.0)
        >>> float(model(np.array([[4.0]]))[0, 0])
        4.0
    """
    init = "glorot_uniform" if initial_weight is None else keras.initializers.Constant(initial_weight)
    inputs = keras.Input((num_features,), name="features")
    outputs = keras.layers.Dense(1, activation=activation, use_bias=use_bias, kernel_initializer=init, name="dense", dtype="float32")(inputs)
    return keras.Model(inputs, outputs, name=name)


def normal_equation(x: np.ndarray, y: np.ndarray, use_bias: bool = True) -> tuple[np.ndarray, float]:
    """Closed-form least squares θ = (XᵀX)⁻¹Xᵀy (notes-001 §29), as (weights, bias).

    Solved with ``tf.linalg.lstsq`` (a QR/Cholesky least-squares solve rather than an explicit
    inverse), which also handles a rank-deficient X by its minimum-norm regularised solution.
    """
    x = np.asarray(x, np.float64)
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1) if use_bias else x
    theta = tf.linalg.lstsq(design, np.asarray(y, np.float64).reshape(-1, 1), fast=False).numpy()[:, 0]
    return (theta[:-1], float(theta[-1])) if use_bias else (theta, 0.0)
