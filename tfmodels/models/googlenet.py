"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions").

Spec: notes-003-004.md B3 (seed S3:L128-144) and notes-001.md §14 (seed 001 L482-488): a stem
like AlexNet's, nine Inception blocks (3a, 3b, 4a-4e, 5a, 5b) of four parallel 'same'-padded paths
concatenated on channels, max-pooling between the stages, global average pooling before the
classifier, and two auxiliary classifiers branched off 4a and 4d (loss weight 0.3, dropped at
inference). The per-block widths, the stem, the local response normalisation, the head's dropout
and the auxiliary heads' layers are the paper's Table 1 and Section 5 (paper default).

No batch normalisation (that came with Inception v2): every convolution has a bias and a ReLU.

Parameters at 224x224x3, 1000 classes (closed form, see the tests): 6,998,552 without the
auxiliary heads, 13,378,280 with them (each head: 1x1 conv C->128, FC 2048->1024, FC 1024->1000;
3,188,840 on 4a's 512 channels and 3,190,888 on 4d's 528). The paper's "about 6.8M" is Table 1's
parameter column: weights only (no biases), in units of 1024; ours has 6,990,272 weights = 6,826K,
while Table 1's rows sum to 6,798K because a few of them disagree with the table's own widths
(e.g. 4c: 463K printed, 497.5K from its widths). torchvision's googlenet (6,624,904) differs by
design: batch-normalised convolutions without bias (2 parameters per channel instead of 1) and a
3x3 instead of a 5x5 kernel in the third path (a bug kept for its pre-trained weights); its aux
heads (13,004,888 - 6,624,904 = 6,379,984) are ours plus the 2x128 batch-norm parameters of their
1x1 convs.
"""

from __future__ import annotations

import keras

from tfmodels.layers.local_response_normalization import LocalResponseNormalization
from tfmodels.layers.preprocessing import IMAGENET_BGR_MEAN

# Table 1: #1x1, (#3x3 reduce, #3x3), (#5x5 reduce, #5x5), pool proj.
INCEPTION_WIDTHS = {
    "3a": (64, (96, 128), (16, 32), 32),
    "3b": (128, (128, 192), (32, 96), 64),
    "4a": (192, (96, 208), (16, 48), 64),
    "4b": (160, (112, 224), (24, 64), 64),
    "4c": (128, (128, 256), (24, 64), 64),
    "4d": (112, (144, 288), (32, 64), 64),
    "4e": (256, (160, 320), (32, 128), 128),
    "5a": (256, (160, 320), (32, 128), 128),
    "5b": (384, (192, 384), (48, 128), 128),
}
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}
# "RGB color channels with mean subtraction" (paper, Section 5): the ImageNet mean of Caffe's
# reference models (keras.applications' 'caffe' mode), here in RGB order.
IMAGENET_RGB_MEAN = IMAGENET_BGR_MEAN[::-1]
# The Caffe LRN of the reference model: x / (1 + alpha / size * sum of `size` squares) ** beta.
LRN_SIZE, LRN_ALPHA, LRN_BETA = 5, 1e-4, 0.75


def _local_response_normalization(name: str):
    return LocalResponseNormalization(
        depth_radius=LRN_SIZE // 2, bias=1.0, alpha=LRN_ALPHA / LRN_SIZE, beta=LRN_BETA, name=name
    )


def _conv(x, filters: int, kernel: int, name: str, strides: int = 1):
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)


def inception_block(x, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, name: str):
    """The Inception block: four parallel paths, concatenated on channels (H, W kept).

    Args:
        x: the input feature map.
        c1: path 1, a 1x1 conv.
        c2: path 2, ``(reduce, out)``: a 1x1 conv to ``reduce`` channels, then a 3x3 conv.
        c3: path 3, ``(reduce, out)``: a 1x1 conv to ``reduce`` channels, then a 5x5 conv.
        c4: path 4, a 3x3/1 max-pool, then a 1x1 conv ("pool proj").
        name: layer-name prefix, e.g. ``inception_3a``.

    Returns:
        The concatenation, ``c1 + c2[1] + c3[1] + c4`` channels.

    Example:
        >>> y = inception_block(keras.Input((28, 28, 192)), 64, (96, 128), (16, 32), 32, "inception_3a")
        >>> y.shape
        (None, 28, 28, 256)
    """
    path1 = _conv(x, c1, 1, f"{name}_1x1")
    path2 = _conv(_conv(x, c2[0], 1, f"{name}_3x3_reduce"), c2[1], 3, f"{name}_3x3")
    path3 = _conv(_conv(x, c3[0], 1, f"{name}_5x5_reduce"), c3[1], 5, f"{name}_5x5")
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    path4 = _conv(pooled, c4, 1, f"{name}_pool_proj")
    return keras.layers.Concatenate(name=name)([path1, path2, path3, path4])


def _auxiliary_classifier(x, num_classes: int, width, name: str):
    # 5x5/3 average pooling takes 4a's and 4d's 14x14 to 4x4; on inputs under 65x65 the map is
    # smaller than 5x5 and the window is clipped to it (1x1 output on the 2x2 map of a 32x32 image).
    window = min(5, x.shape[1], x.shape[2])
    x = keras.layers.AveragePooling2D(window, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, width(128), 1, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(width(1024), activation="relu", name=f"{name}_fc")(x)
    x = keras.layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return keras.layers.Dense(num_classes, name=name, dtype="float32")(x)


def build_googlenet(
    num_classes: int = 1000,
    input_shape=(224, 224, 3),
    include_top: bool = True,
    weights: str | None = None,
    aux_logits: bool = True,
    width_divisor: int = 1,
) -> keras.Model:
    """Builds GoogLeNet (Inception v1), the ILSVRC-2014 winner, without batch normalisation.

    Spec: notes-003-004.md B3 (S3:L128-144), notes-001.md §14 (seed 001 L482-488). Paper default:
    the Table 1 widths, the stem (7x7/2 conv 64, 3x3/2 max-pool, LRN, 1x1 conv 64, 3x3 conv 192,
    LRN, 3x3/2 max-pool), dropout 0.4 before the classifier, the auxiliary heads (5x5/3 average
    pool, 1x1 conv 128, FC 1024, dropout 0.7, FC classes) and the preprocessing: "RGB color
    channels with mean subtraction", here the ImageNet RGB mean (123.68, 116.779, 103.939), no
    scaling (layer ``preprocess``). The paper's 7x7 average pool is global average pooling, which
    is the same at 224x224 and lets other sizes through.

    Args:
        num_classes: number of logits.
        input_shape: one RGB image of raw pixels (float 0..255), channels-last. Under 65x65 the
            auxiliary heads' 5x5 pooling window is clipped to their (smaller) input map.
        include_top: with the classifier(s); without, the output is 5b's feature map (7x7x1024
            at 224x224) and there are no auxiliary heads.
        weights: ``None`` only; keras.applications has no GoogLeNet to copy weights from.
        aux_logits: with the two auxiliary classifiers (after 4a and 4d). The model then outputs
            a dict ``{"logits", "aux1", "aux2"}`` for training (loss weights 1, 0.3, 0.3); use
            :func:`inference_model` for evaluation and serving. Without, it outputs the logits.
        width_divisor: divides every channel and unit count (stem, blocks, auxiliary heads);
            ``8`` with 32x32 inputs is the tiny variant.

    Example:
        >>> model = build_googlenet(aux_logits=False)
        >>> model.count_params()
        6998552
        >>> tiny = build_googlenet(10, (32, 32, 3), width_divisor=8)
        >>> sorted(tiny.output)
        ['aux1', 'aux2', 'logits']
    """
    if weights is not None:
        raise ValueError(
            f"GoogLeNet has no pre-trained weights to load (weights={weights!r}); keras.applications has no GoogLeNet"
        )
    if width_divisor < 1:
        raise ValueError(f"width_divisor must be a positive integer, got {width_divisor}")

    def width(channels: int) -> int:
        return max(1, channels // width_divisor)

    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Normalization(mean=IMAGENET_RGB_MEAN, variance=(1.0, 1.0, 1.0), name="preprocess")(inputs)

    # Stem: 224 -> 112 -> 56 -> 28.
    x = _conv(x, width(64), 7, "conv1_7x7_s2", strides=2)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = _local_response_normalization("pool1_norm1")(x)
    x = _conv(x, width(64), 1, "conv2_3x3_reduce")
    x = _conv(x, width(192), 3, "conv2_3x3")
    x = _local_response_normalization("conv2_norm2")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)

    # Nine Inception blocks at 28, 14 and 7, with a 3x3/2 max-pool before stages 4 and 5.
    aux_outputs = {}
    for block, (c1, c2, c3, c4) in INCEPTION_WIDTHS.items():
        if block in ("4a", "5a"):
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{block[0]}_3x3_s2")(x)
        x = inception_block(
            x, width(c1), (width(c2[0]), width(c2[1])), (width(c3[0]), width(c3[1])), width(c4), f"inception_{block}"
        )
        if include_top and aux_logits and block in AUX_AFTER:
            aux_outputs[AUX_AFTER[block]] = _auxiliary_classifier(x, num_classes, width, AUX_AFTER[block])

    if not include_top:
        return keras.Model(inputs, x, name="googlenet")
    x = keras.layers.GlobalAveragePooling2D(name="pool5_gap")(x)
    x = keras.layers.Dropout(0.4, name="pool5_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    if not aux_logits:
        return keras.Model(inputs, logits, name="googlenet")
    return keras.Model(inputs, {"logits": logits, **aux_outputs}, name="googlenet")


def inference_model(model: keras.Model) -> keras.Model:
    """The main classifier of a GoogLeNet training model: same layers and weights, no aux heads.

    Args:
        model: a :func:`build_googlenet` model with a top (with or without auxiliary heads).

    Returns:
        A model from the same image input to the ``logits`` layer only; the auxiliary heads are
        not in its graph, so they are not in an export of it either.

    Example:
        >>> train_model = build_googlenet(10, (32, 32, 3), width_divisor=8)
        >>> serve_model = inference_model(train_model)
        >>> serve_model.get_layer("logits") is train_model.get_layer("logits")
        True
    """
    if "logits" not in [layer.name for layer in model.layers]:
        raise ValueError(f"{model.name} has no 'logits' layer (built with include_top=False?)")
    return keras.Model(model.input, model.get_layer("logits").output, name=f"{model.name}_inference")
