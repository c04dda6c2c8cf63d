"""LeNet-5 (notes-001 §10, seed L468-469; the notes give only the heading and a figure).

Layer sizes follow d2l's LeNet, which the notes follow elsewhere (paper default for what the
notes leave out): conv(6, 5x5, same) → avg-pool 2 → conv(16, 5x5) → avg-pool 2 → Dense 120 →
Dense 84 → Dense 10, sigmoid activations (the notes, L471: AlexNet "uses ReLU instead of
sigmoid"). On 28x28 input: 28 → 28 → 14 → 10 → 5, 16·5·5 = 400; 61,706 parameters.
"""

from __future__ import annotations

import keras


def build_lenet5(
    input_shape=(28, 28, 1),
    num_classes: int = 10,
    activation: str = "sigmoid",
    rescale: tuple[float, float] | None = None,
) -> keras.Model:
    """Builds LeNet-5.

    Args:
        input_shape: one image, channels-last.
        num_classes: number of logits.
        activation: ``sigmoid`` as in LeNet/d2l; ``relu`` trains faster.
        rescale: ``(scale, offset)`` pixel normalisation applied first.

    Example:
        >>> build_lenet5().count_params()
        61706
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    if rescale is not None:
        x = keras.layers.Rescaling(rescale[0], offset=rescale[1], name="normalize")(x)
    x = keras.layers.Conv2D(6, 5, padding="same", activation=activation, name="c1")(x)
    x = keras.layers.AveragePooling2D(2, name="s2")(x)
    x = keras.layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = keras.layers.AveragePooling2D(2, name="s4")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation=activation, name="f5")(x)
    x = keras.layers.Dense(84, activation=activation, name="f6")(x)
    logits = keras.layers.Dense(num_classes, name="output", dtype="float32")(x)
    return keras.Model(inputs, logits, name="lenet5")
