"""SSD, the Single Shot MultiBox Detector: d2l's TinySSD and the paper's SSD300 on VGG16.

Spec: notes-002-part2.md §13 (seed 002 L2173-2185): anchors centred on every pixel of several
feature maps, a base network, and per scale a class predictor and an offset predictor, both
convolutions, applied directly to the anchors; lower (larger) maps predict small objects, upper
maps large ones. notes-001.md §22 (seed 001 L547-573): prediction layers are convolutions whose
channels hold ``A·(C+1)`` class scores and ``A·4`` offsets per location.

* :func:`build_tiny_ssd` is d2l's TinySSD (notes-002-part2.md §13 [REF d2l]): ``down_sample_blk``
  = [3×3 conv → BN → ReLU] ×2 → 2×2 max-pool; a base net of three blocks (16, 32, 64 channels),
  three blocks of 128 and a global max-pool give five feature maps (32², 16², 8², 4², 1² at
  256²); with d2l's sizes and ratios 4 anchors per pixel, 5,444 anchors at 256².
* :func:`build_ssd300` is SSD300 (Liu et al., 2016, "SSD: Single Shot MultiBox Detector", paper
  default): VGG-16's 13 convolutions (pool3 in ceil mode, pool5 3×3/1), fc6 as a 3×3 conv with
  dilation 6 and fc7 as a 1×1 conv (1024 channels each), conv4_3 L2-normalised with a learnt
  per-channel scale (initially 20), four extra stages (conv8-conv11); predictions on conv4_3,
  fc7, conv8_2, conv9_2, conv10_2, conv11_2 (38², 19², 10², 5², 3², 1²) with 4, 6, 6, 6, 4, 4
  default boxes per location: 8,732 boxes, and 26,285,486 parameters for VOC's 20 classes + 1.

Both networks take raw RGB pixels in 0..255 and return ``{"class_logits": [B, N, C+1],
"offsets": [B, N, 4]}``: column 0 of the class logits is background, offsets are d2l's
``[dx, dy, dw, dh]`` (σ 0.1 / 0.2). Rows are anchors in the order of
``pipelines.detection.anchors.multibox_anchors`` scale after scale: each predictor's
``[h, w, A·k]`` map flattened channels-last to ``[h·w·A, k]``, as d2l's ``flatten_pred``.
The anchors themselves are the recipe's (``models/`` does not depend on ``pipelines/``);
:func:`feature_map_sizes` tells it the maps' sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from tfmodels.layers.preprocessing import CaffePreprocessing
from tfmodels.models.vgg import VGG16_ARCH

# d2l TinySSD's anchors (notes-002-part2.md §13 [REF d2l]): two sizes per scale, three ratios.
TINY_SSD_SIZES = ((0.2, 0.272), (0.37, 0.447), (0.54, 0.619), (0.71, 0.79), (0.88, 0.961))
TINY_SSD_RATIOS = (1.0, 2.0, 0.5)

# SSD300's default boxes (paper default, the authors' VOC300 prototxt): min sizes 30..264 and max
# sizes 60..315 pixels of 300; each location has the min size at every ratio plus one square of
# size sqrt(min·max), which is d2l's "n + m - 1" rule with sizes (min, sqrt(min·max)).
_SSD300_MIN, _SSD300_MAX = (30, 60, 111, 162, 213, 264), (60, 111, 162, 213, 264, 315)
SSD300_SIZES = tuple((lo / 300, math.sqrt(lo * hi) / 300) for lo, hi in zip(_SSD300_MIN, _SSD300_MAX))
SSD300_RATIOS = ((1.0, 2.0, 0.5),) + ((1.0, 2.0, 0.5, 3.0, 1 / 3),) * 3 + ((1.0, 2.0, 0.5),) * 2
SSD300_PARAMETERS = 26_285_486  # the paper's Caffe SSD300 for VOC (21 outputs per box)


def anchors_per_pixel(sizes: Sequence[Sequence[float]], ratios: Sequence[Sequence[float]]) -> tuple[int, ...]:
    """Anchors per location of each scale, ``n + m - 1`` (notes-002-part2.md §3 [REF d2l]).

    Example:
        >>> anchors_per_pixel(TINY_SSD_SIZES, [TINY_SSD_RATIOS] * 5)
        (4, 4, 4, 4, 4)
    """
    return tuple(len(s) + len(r) - 1 for s, r in zip(sizes, ratios, strict=True))


def multibox_head(features: Sequence, anchors: Sequence[int], num_classes: int) -> dict:
    """Per scale a 3×3 class predictor (``A·(C+1)``) and offset predictor (``A·4``), concatenated.

    Args:
        features: the feature maps, largest first.
        anchors: anchors per location of each map.
        num_classes: object classes C (the class logits add background as column 0).

    Returns:
        ``{"class_logits": [B, N, C+1], "offsets": [B, N, 4]}``, float32 (mixed precision ends here).
    """
    class_maps, offset_maps = [], []
    for k, (feature, a) in enumerate(zip(features, anchors, strict=True)):
        scores = keras.layers.Conv2D(a * (num_classes + 1), 3, padding="same", name=f"class_predictor_{k}")(feature)
        offsets = keras.layers.Conv2D(a * 4, 3, padding="same", name=f"offset_predictor_{k}")(feature)
        class_maps.append(keras.layers.Reshape((-1, num_classes + 1), name=f"flatten_classes_{k}")(scores))
        offset_maps.append(keras.layers.Reshape((-1, 4), name=f"flatten_offsets_{k}")(offsets))
    concat = lambda maps, name: keras.layers.Concatenate(axis=1, name=name, dtype="float32")(maps)  # noqa: E731
    return {"class_logits": concat(class_maps, "class_logits"), "offsets": concat(offset_maps, "offsets")}


def feature_map_sizes(network: keras.Model) -> list[tuple[int, int]]:
    """``(h, w)`` of each scale's feature map of a network built here, largest first."""
    sizes, k = [], 0
    while any(layer.name == f"class_predictor_{k}" for layer in network.layers):
        shape = network.get_layer(f"class_predictor_{k}").output.shape
        sizes.append((int(shape[1]), int(shape[2])))
        k += 1
    return sizes


def down_sample_block(x, channels: int, name: str):
    """d2l's ``down_sample_blk``: [3×3 conv (pad 1) → BN → ReLU] ×2, then a 2×2 max-pool.

    BN keeps PyTorch's running-average momentum (0.1 there, 0.9 in Keras terms), d2l's: with Keras'
    0.99 the running statistics lag far behind a short CPU training run.
    """
    for i in (1, 2):
        x = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def build_tiny_ssd(
    num_classes: int,
    image_size: int = 256,
    anchors: Sequence[int] = (4, 4, 4, 4, 4),
    base_channels: Sequence[int] = (16, 32, 64),
    stage_channels: Sequence[int] = (128, 128, 128),
    name: str = "tiny_ssd",
) -> keras.Model:
    """d2l's TinySSD (notes-002-part2.md §13 [REF d2l]).

    Stages: the base net (``down_sample_block`` per ``base_channels``), one block per
    ``stage_channels``, then a global max-pool to 1×1; every stage's output is a feature map, so
    there are ``len(stage_channels) + 2`` scales.

    Args:
        num_classes: object classes C.
        image_size: side of the square input.
        anchors: anchors per location of each scale (``len(stage_channels) + 2`` entries).
        base_channels: channels of the base net's blocks (d2l: 16, 32, 64).
        stage_channels: channels of the later blocks (d2l: 128 ×3).
        name: model name.

    Returns:
        A functional model, pixels ``[B, S, S, 3]`` in 0..255 -> ``class_logits`` / ``offsets``
        (module docstring). The pixels are scaled to [0, 1] first.

    Example:
        >>> net = build_tiny_ssd(num_classes=1)
        >>> net.output["class_logits"].shape, feature_map_sizes(net)[0]
        ((None, 5444, 2), (32, 32))
    """
    images = keras.Input((image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(1 / 255, name="scale")(images)
    for i, channels in enumerate(base_channels):
        x = down_sample_block(x, channels, f"base{i + 1}")
    features = [x]
    for i, channels in enumerate(stage_channels):
        x = down_sample_block(x, channels, f"stage{i + 1}")
        features.append(x)
    features.append(keras.layers.GlobalMaxPooling2D(keepdims=True, name="global_max_pool")(x))
    return keras.Model(images, multibox_head(features, anchors, num_classes), name=name)


@keras.saving.register_keras_serializable(package="tfmodels")
class L2Normalization(keras.layers.Layer):
    """Channel-wise L2 normalisation with a learnt per-channel scale (ParseNet; SSD's conv4_3).

    SSD (Liu et al., 2016, §3.1, paper default) normalises conv4_3, whose activations are larger
    than the later layers', and scales each channel by a weight initialised to 20.

    Args:
        scale: initial value of the per-channel scale.
        epsilon: added to the norm.
    """

    def __init__(self, scale: float = 20.0, epsilon: float = 1e-10, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.epsilon = float(scale), float(epsilon)

    def build(self, input_shape):
        init = keras.initializers.Constant(self.scale)
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer=init, name="gamma")

    def call(self, x):
        norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(x), axis=-1, keepdims=True)) + self.epsilon
        return x / norm * keras.ops.cast(self.gamma, x.dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "epsilon": self.epsilon}


def _conv(x, channels: int, kernel: int, name: str, **kwargs):
    return keras.layers.Conv2D(channels, kernel, activation="relu", name=name, **kwargs)(x)


def _vgg16_features(x) -> tuple:
    """VGG-16's convolutions in keras.applications' names; returns (conv4_3, pool5 output).

    pool1-pool4 are 2×2/2 with 'same' padding, i.e. Caffe's ceil mode (75 -> 38 at pool3);
    pool5 is 3×3/1 (SSD's change, so fc6 sees 19×19).
    """
    conv4_3 = None
    for block, (num_convs, channels) in enumerate(VGG16_ARCH, start=1):
        for i in range(1, num_convs + 1):
            x = _conv(x, channels, 3, f"block{block}_conv{i}", padding="same")
        if block == 4:
            conv4_3 = x
        if block < 5:
            x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"block{block}_pool")(x)
    return conv4_3, keras.layers.MaxPooling2D(3, strides=1, padding="same", name="block5_pool")(x)


def build_ssd300(num_classes: int = 20, image_size: int = 300, name: str = "ssd300") -> keras.Model:
    """SSD300 on VGG-16 (Liu et al., 2016, paper default; notes-001.md §22 names VGG16 as a backbone).

    Args:
        num_classes: object classes C (VOC: 20; the class logits add background).
        image_size: side of the square input (the paper's 300).
        name: model name.

    Returns:
        A functional model, pixels ``[B, S, S, 3]`` in 0..255 (RGB; VGG's 'caffe' preprocessing
        inside) -> ``class_logits`` ``[B, 8732, C+1]`` / ``offsets`` ``[B, 8732, 4]`` at 300².

    Example:
        >>> build_ssd300().count_params() == SSD300_PARAMETERS  # doctest: +SKIP
        True
    """
    images = keras.Input((image_size, image_size, 3), name="images")
    conv4_3, x = _vgg16_features(CaffePreprocessing(name="preprocess")(images))
    fc7 = _conv(_conv(x, 1024, 3, "fc6", padding="same", dilation_rate=6), 1024, 1, "fc7")
    features = [L2Normalization(name="conv4_3_norm")(conv4_3), fc7]
    x = fc7
    # conv8, conv9: 1×1 reduce, 3×3/2 (pad 1); conv10, conv11: 1×1 reduce, 3×3/1 (no padding).
    for stage, (reduce, channels, stride) in enumerate(((256, 512, 2), (128, 256, 2), (128, 256, 1), (128, 256, 1)), start=8):
        x = _conv(x, reduce, 1, f"conv{stage}_1")
        padding = "same" if stride == 2 else "valid"
        x = _conv(x, channels, 3, f"conv{stage}_2", strides=stride, padding=padding)
        features.append(x)
    anchors = anchors_per_pixel(SSD300_SIZES, SSD300_RATIOS)
    return keras.Model(images, multibox_head(features, anchors, num_classes), name=name)
