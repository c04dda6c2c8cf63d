"""Fully connected networks (multi-layer perceptrons).

Spec: notes-002 S11-S13 (diabetes 8→6→4→1 and Titanic 6→3→1, sigmoid everywhere) and S17
(MNIST 784-512-256-128-64-10, ReLU, logits out; 575,050 parameters).
"""

from __future__ import annotations

from typing import Sequence

import keras


def build_mlp(
    input_shape: Sequence[int],
    hidden_units: Sequence[int],
    outputs: int,
    activation: str = "relu",
    output_activation: str | None = None,
    rescale: tuple[float, float] | None = None,
    name: str = "mlp",
) -> keras.Model:
    """Flatten → Dense(h) for each ``hidden_units`` → Dense(``outputs``).

    Args:
        input_shape: shape of one example (flattened first, like the notes' ``x.view(-1, 784)``).
        hidden_units: widths of the hidden layers.
        outputs: output width (1 for a sigmoid classifier, C for C-class logits).
        activation: hidden activation.
        output_activation: ``None`` for logits, ``"sigmoid"`` for a probability.
        rescale: ``(scale, offset)`` applied to the raw input first (pixel normalisation).

    Example:
        >>> build_mlp((28, 28, 1), (512, 256, 128, 64), 10).count_params()
        575050
    """
    inputs = keras.Input(tuple(input_shape), name="features")
    x = inputs
    if rescale is not None:
        x = keras.layers.Rescaling(rescale[0], offset=rescale[1], name="normalize")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i + 1}")(x)
    out = keras.layers.Dense(outputs, activation=output_activation, name="output", dtype="float32")(x)
    return keras.Model(inputs, out, name=name)
