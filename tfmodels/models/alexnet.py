"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), with the paper's two-GPU grouped convolutions.

Spec: notes-003-004.md B1 (S3:L109-116) and notes-001.md §11 (seed 001 L471-472). The notes list
8 weight layers (5 conv, 2 hidden FC, 1 output FC, seed 001 L471), ReLU instead of sigmoid
(S3:L113), local response normalisation (S3:L114), dropout (S3:L115) and group convolution to fit
two GPUs (S3:L116). The layer sizes are the paper's (paper default):

    conv1 96@11×11/4 → ReLU → LRN → max-pool 3/2
    conv2 256@5×5 'same', 2 groups → ReLU → LRN → max-pool 3/2
    conv3 384@3×3 'same' (reads both GPUs' maps: 1 group)
    conv4 384@3×3 'same', 2 groups
    conv5 256@3×3 'same', 2 groups → max-pool 3/2 → 6×6×256
    FC 4096 → ReLU → dropout 0.5 → FC 4096 → ReLU → dropout 0.5 → FC num_classes (logits)

Input size: 227×227×3. The paper says 224, but with an 11×11/4 valid conv only 227 gives its
55×55 conv1 maps and the 6×6×256 = 9216 inputs of FC-6 (224 gives 54, …, 5×5). So at 227 and 1000
classes the grouped net has the published 60,965,224 parameters; ``groups=1`` (one GPU, as d2l)
has 62,378,344. (d2l's own variant pads conv1 by 1 at 224, reaching 5×5×256 = 6400 FC inputs and
50,844,008 parameters; it is not built here.)

Preprocessing (paper default, adapted): the paper subtracts the mean training image; the first
layer ("preprocess") subtracts the ImageNet mean pixel and divides by the ImageNet standard
deviation (keras.applications' 'torch' mode), so that raw 0..255 pixels train from scratch at
unit scale.
"""

from __future__ import annotations

import keras

from tfmodels.layers.local_response_normalization import LocalResponseNormalization
from tfmodels.layers.preprocessing import imagenet_standardization


def fully_connected_classifier(x, num_classes: int, fc_units: int, dropout: float, names):
    """Flatten → 2 × (Dense ``fc_units`` → ReLU → Dropout) → Dense ``num_classes`` logits.

    AlexNet's classifier, which VGG keeps; ``names`` are the three Dense layers' names.
    """
    x = keras.layers.Flatten(name="flatten")(x)
    for name in names[:2]:
        x = keras.layers.Dense(fc_units, activation="relu", name=name)(x)
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return keras.layers.Dense(num_classes, name=names[2], dtype="float32")(x)


def build_alexnet(
    num_classes: int = 1000,
    input_shape=(227, 227, 3),
    include_top: bool = True,
    weights: str | None = None,
    groups: int = 2,
    lrn: bool = True,
    width_divisor: int = 1,
    fc_units: int = 4096,
    dropout: float = 0.5,
    stem_kernel: int = 11,
    stem_stride: int = 4,
) -> keras.Model:
    """Builds AlexNet: 5 conv + 3 FC layers, ReLU, LRN, overlapping pools, dropout, 2 groups.

    Follows notes-003-004 B1 (S3:L109-116) and notes-001 §11 (seed 001 L471); layer sizes,
    input 227×227, LRN constants and mean/std preprocessing are paper default (module docstring).
    At 227×227×3 and 1000 classes: 60,965,224 parameters with ``groups=2``, 62,378,344 with
    ``groups=1``.

    Args:
        num_classes: number of logits.
        input_shape: one raw RGB image (0..255), channels-last. 227×227 for the paper's 6×6 maps.
        include_top: with ``False`` the model returns the 6×6×256 feature map after the last pool
            (before the FC layers).
        weights: ``None`` only; no reference implementation ships AlexNet weights for Keras.
        groups: 2 splits conv2, conv4 and conv5 into two channel groups as on the paper's two
            GPUs; 1 is the single-GPU (d2l) network.
        lrn: apply local response normalisation after conv1 and conv2 (``False`` as in d2l).
        width_divisor: divides every conv's channels (96, 256, 384, 384, 256).
        fc_units: width of the two hidden FC layers.
        dropout: dropout rate after each hidden FC layer.
        stem_kernel: conv1's kernel size (11).
        stem_stride: conv1's stride (4). Small images need a smaller stem: 32×32 inputs shrink to
            nothing after the third pool with 11/4; ``stem_kernel=3, stem_stride=1`` keeps 2×2.

    Tiny variant for 32×32 images: ``width_divisor=8, fc_units=128, stem_kernel=3, stem_stride=1``.

    Example:
        >>> build_alexnet().count_params()
        60965224
        >>> tiny = build_alexnet(10, (32, 32, 3), width_divisor=8, fc_units=128, stem_kernel=3, stem_stride=1)
        >>> tiny.output.shape
        (None, 10)
    """
    if weights is not None:
        raise ValueError(f"AlexNet has no pretrained weights here; weights must be None, got {weights!r}")

    def conv(filters, kernel, name, groups=1, strides=1, padding="same"):
        return keras.layers.Conv2D(
            filters // width_divisor, kernel, strides, padding, activation="relu", groups=groups, name=name
        )

    def pool(name):
        return keras.layers.MaxPooling2D(3, strides=2, name=name)  # overlapping: 3×3 windows, stride 2

    inputs = keras.Input(input_shape, name="pixels")
    x = imagenet_standardization()(inputs)
    x = conv(96, stem_kernel, "conv1", strides=stem_stride, padding="valid")(x)
    if lrn:
        x = LocalResponseNormalization(name="lrn1")(x)
    x = pool("pool1")(x)
    x = conv(256, 5, "conv2", groups=groups)(x)
    if lrn:
        x = LocalResponseNormalization(name="lrn2")(x)
    x = pool("pool2")(x)
    x = conv(384, 3, "conv3")(x)
    x = conv(384, 3, "conv4", groups=groups)(x)
    x = conv(256, 3, "conv5", groups=groups)(x)
    x = pool("pool5")(x)
    if include_top:
        x = fully_connected_classifier(x, num_classes, fc_units, dropout, names=("fc6", "fc7", "fc8"))
    return keras.Model(inputs, x, name="alexnet")
