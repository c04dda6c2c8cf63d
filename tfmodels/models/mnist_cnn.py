"""The notes' simple MNIST CNN (notes-002 S19, seed L1413-1442).

conv(1→10, 5x5) → max-pool 2 → ReLU → conv(10→20, 5x5) → max-pool 2 → ReLU → flatten (320)
→ Dense(10) logits. 28 → 24 → 12 → 8 → 4, 20·4·4 = 320; 8,490 parameters. The notes' comment
"(n,78)" for the flatten size is a typo for 320 (spec §D).
"""

from __future__ import annotations

import keras


def build_mnist_cnn(
    input_shape=(28, 28, 1), num_classes: int = 10, rescale: tuple[float, float] | None = None
) -> keras.Model:
    """Builds the 2-conv CNN with the notes' conv → pool → ReLU order.

    Args:
        input_shape: one image, channels-last.
        num_classes: number of logits.
        rescale: ``(scale, offset)`` pixel normalisation applied first.

    Example:
        >>> build_mnist_cnn().count_params()
        8490
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    if rescale is not None:
        x = keras.layers.Rescaling(rescale[0], offset=rescale[1], name="normalize")(x)
    for i, filters in enumerate((10, 20)):
        x = keras.layers.Conv2D(filters, 5, name=f"conv{i + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    # float32 logits under a mixed policy: the loss and softmax read them (Keras mixed-precision guide)
    logits = keras.layers.Dense(num_classes, name="fc", dtype="float32")(x)
    return keras.Model(inputs, logits, name="mnist_cnn")
