"""DeepLab v1, v2, v3 and v3+: semantic segmentation with atrous convolution and ASPP.

Specs: notes-001.md §7 (seed 001 L273-369), notes-003-004.md D4 (seed 003 L279-295) and A9
(atrous convolution, seed 003 L83-99). The notes give the ideas; the layouts below are the
papers' (paper default):

* **v1** (Chen et al., ICLR 2015, DeepLab-LargeFOV): VGG-16 with pool4 and pool5 as 3x3 stride-1
  max-pools, conv5 at rate 2, fc6 a 3x3 conv at rate 12 with 1024 channels, fc7 1x1 (1024), fc8 to
  the classes (ReLU and dropout 0.5 after fc6 and fc7); output stride 8, logits up-sampled x8
  bilinearly. 20,505,429 parameters at 21 classes, the paper's "20.5M" (its Table 2).
  pool1-pool3 stay vgg.py's 2x2/2 (the Caffe model's are 3x3/2 with padding 1: no weights).
  The fully-connected CRF post-processing of v1/v2 is out of scope.
* **v2** (TPAMI 2017): ASPP with four parallel 3x3 branches at rates 6/12/18/24 that each predict
  the class scores, summed; ResNet-101 at output stride 8 (paper default), or VGG-16 with ASPP-L
  branches (fc6 3x3 atrous 1024 → fc7 1024 → fc8).
* **v3** (arXiv 1706.05587): ResNet whose last stage(s) trade stride for dilation (output stride
  16, or 8 with every rate doubled), multi-grid (1, 2, 4) in the last stage, ASPP = 1x1 + three 3x3
  atrous (6/12/18 at OS 16, 12/24/36 at OS 8) + image pooling, 256 channels with BN + ReLU,
  concatenated → 1x1 (256) → 1x1 to the classes → bilinear up-sampling.
* **v3+** (ECCV 2018): the v3 encoder plus a decoder: the stride-4 features → 1x1 to 48 channels,
  concatenated with the x(OS/4)-up-sampled ASPP output → two 3x3 convs (256) → classes → x4.
  The paper's modified Xception with separable convs is not built; its ResNet-101 variant is.

The atrous backbones are this zoo's ResNet (``resnet.py``, keras.applications' ResNet v1: the
stride on the first 1x1 conv, as DeepLab's Caffe ResNet-101) and VGG (``vgg.py``), rebuilt by
:func:`atrous_features`: every stride that would take the map past the output stride becomes 1
and every later conv is dilated by the stride it lost, so the features are the original
network's, computed densely (the "atrous algorithm"). The first layer standardises raw RGB pixels
(0..255) as those backbones do (keras.applications' "caffe" mode).

Models map ``images [B, H, W, 3]`` (float32, 0..255) to logits ``[B, H, W, num_classes]`` (float32)
for H and W multiples of :data:`INPUT_MULTIPLE` (32, which covers every output stride; multiples of
the output stride are enough).

keras-hub's ``DeepLabV3Backbone`` differs from the v3/v3+ papers in three places; ``head_style=
"keras_hub"`` follows it so that its weights load (``tfmodels/models/deeplab_keras_hub.py``):
(1) after the concatenation it has one 1x1 conv (256, BN, ReLU) where the v3+ paper has two 3x3
convs, and v3 without a decoder gets that 1x1 conv too; (2) its classifier has no bias; (3) it has
no atrous backbone: ASPP runs on the encoder's stride-32 (or 16) map, i.e. ``output_stride=32``
here. It also up-samples the 256-channel features before the 1x1 classifier, where the papers (and
this module) up-sample the logits: the two orders give the same output (a 1x1 conv and bilinear
resizing are both linear and commute; the resize weights sum to 1, so the bias commutes too), the
logits' order costs ``num_classes / 256`` of the memory. Bilinear resizing is Keras' (half-pixel
centres), where the official TF DeepLab used ``align_corners=True``; head BN layers use Keras'
defaults (ε 1e-3), as keras-hub.

Suggested presets (keyword values for recipe configs; "digit scenes" are 128x128, 11 classes):

* tiny (64x64, seconds):
  v1 ``conv_arch=((1, 4), (1, 8), (1, 8), (1, 8), (1, 8)), fc_channels=16, fc6_rate=2``;
  v2 ``block="basic", stage_blocks=(1, 1, 1, 1), width=4, aspp_rates=(1, 2, 3, 4)``;
  v3 / v3+ ``block="basic", stage_blocks=(1, 1, 1, 1), width=4, output_stride=8, multi_grid=None,
  aspp_rates=(1, 2, 3), aspp_channels=8`` (+ ``low_level_channels=4, decoder_channels=8`` for v3+).
* default (128x128, ~10 min on 2 cores):
  v1 ``conv_arch=((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)), fc_channels=256, fc6_rate=4``;
  v2 ``block="basic", stage_blocks=(1, 1, 1, 1), width=16, aspp_rates=(1, 2, 3, 4)``;
  v3 / v3+ ``block="basic", stage_blocks=(1, 1, 1, 1), width=16, output_stride=8, multi_grid=None,
  aspp_rates=(2, 4, 6), aspp_channels=64`` (+ ``low_level_channels=16, decoder_channels=64``).
* paper: every builder's defaults (VGG-16 / ResNet-101, rates and widths of the papers).
"""

from __future__ import annotations

import re
from typing import Sequence

import keras
from keras import tree

from tfmodels.layers.aspp import AtrousSpatialPyramidPooling
from tfmodels.models.resnet import basic_block, bottleneck_block, build_resnet
from tfmodels.models.vgg import VGG16_ARCH, build_vgg

OUTPUT_STRIDES = (8, 16, 32)
INPUT_MULTIPLE = 32
RESNET101_BLOCKS = (3, 4, 23, 3)
BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}
HEAD_STYLES = ("paper", "keras_hub")
LOW_LEVEL_STRIDE = 4  # v3+: the decoder's low-level features (ResNet conv2_x)


def _check_output_stride(output_stride: int) -> None:
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")


class _AtrousRebuild:
    """``clone_model`` call function: rebuilds each layer with strides past ``output_stride`` turned into dilation.

    Tracks the stride every tensor has in the *original* network. A layer whose stride would take
    the map past ``output_stride`` gets stride 1 (a max-pool becomes DeepLab v1's 3x3/1 pool); a
    conv reading a map of original stride ``s > output_stride`` gets dilation ``s / output_stride``
    (times its multi-grid unit rate in the last stage). Weights are copied from the original layer.
    """

    def __init__(self, output_stride: int, multi_grid: Sequence[int] | None, grid_prefix: str | None):
        self.output_stride = output_stride
        self.multi_grid = tuple(multi_grid) if multi_grid else None
        self.grid_pattern = re.compile(rf"^{re.escape(grid_prefix)}(\d+)_") if grid_prefix else None
        self.stride_of: dict[int, int] = {}  # id(tensor) -> stride in the original network
        self.outputs_of: dict[str, object] = {}  # original layer name -> rebuilt output

    def _unit_rate(self, name: str) -> int:
        match = self.grid_pattern.match(name) if self.multi_grid and self.grid_pattern else None
        if not match:
            return 1
        block = int(match.group(1))
        if block > len(self.multi_grid):
            raise ValueError(f"multi_grid {self.multi_grid} has no unit rate for block {block} ({name})")
        return self.multi_grid[block - 1]

    def _config(self, layer, in_stride: int) -> dict:
        config = layer.get_config()
        strides = getattr(layer, "strides", (1, 1))
        if strides[0] > 1 and in_stride * strides[0] > self.output_stride:
            config["strides"] = (1, 1)
            if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
                config.update(pool_size=(3, 3), padding="same")  # DeepLab v1's pool4 / pool5
        if isinstance(layer, keras.layers.Conv2D) and max(layer.kernel_size) > 1:
            rate = max(1, in_stride // self.output_stride) * self._unit_rate(layer.name)
            config["dilation_rate"] = (rate, rate)
        if config != layer.get_config() and isinstance(layer, keras.layers.Conv2D) and layer.padding != "same" and max(layer.kernel_size) > 1:
            raise ValueError(f"cannot make {layer.name} atrous: its padding is {layer.padding!r}, the map would shrink")
        return config

    def __call__(self, layer, *args, **kwargs):
        in_stride = self.stride_of.get(id(tree.flatten(args)[0]), 1)
        rebuilt = layer.__class__.from_config(self._config(layer, in_stride))
        outputs = rebuilt(*args, **kwargs)
        if layer.weights:
            rebuilt.set_weights(layer.get_weights())
        out_stride = in_stride * getattr(layer, "strides", (1, 1))[0]
        for tensor in tree.flatten(outputs):
            self.stride_of[id(tensor)] = out_stride
        self.outputs_of.setdefault(layer.name, outputs)
        return outputs


def atrous_features(
    features: keras.Model,
    inputs,
    output_stride: int,
    multi_grid: Sequence[int] | None = None,
    grid_prefix: str | None = None,
) -> dict:
    """Rebuilds a feature extractor on ``inputs`` at ``output_stride``, atrous past it (paper default).

    The DeepLab recipe for keeping resolution (notes-003-004.md D4, A9): remove the strides beyond
    ``output_stride`` and dilate every later conv by the stride removed, which leaves the receptive
    fields and the parameters as they were and computes the original features densely. Weights are
    copied from ``features``.

    Args:
        features: a functional model from one image input to a dict of feature maps; one of them,
            ``"high_level"``, must reach at least ``output_stride``.
        inputs: the tensor to rebuild it on (``keras.Input`` or a tensor derived from one).
        output_stride: 8, 16 or 32: input size / size of the ``"high_level"`` map.
        multi_grid: DeepLab v3's unit rates for the blocks of the last stage (``(1, 2, 4)``),
            multiplying the blocks' rates; ``None`` for 1.
        grid_prefix: the layer-name prefix of those blocks, followed by the block number
            (``"conv5_block"`` for a four-stage ResNet of ``resnet.py``).

    Returns:
        ``{name: tensor}`` with the same keys as ``features``' outputs, connected to ``inputs``.

    Example:
        >>> net = build_resnet(basic_block, (1, 1, 1, 1), input_shape=(None, None, 3), include_top=False, width=4)
        >>> images = keras.Input((None, None, 3))
        >>> out = atrous_features(keras.Model(net.input, {"high_level": net.output}), images, 8)
        >>> keras.Model(images, out["high_level"]).predict(keras.ops.zeros((1, 64, 64, 3)), verbose=0).shape
        (1, 8, 8, 32)
    """
    _check_output_stride(output_stride)
    rebuild = _AtrousRebuild(output_stride, multi_grid, grid_prefix)
    keras.models.clone_model(features, input_tensors=inputs, clone_function=lambda layer: layer, call_function=rebuild)
    # clone_model's own model is not used: on a derived tensor it re-creates its inputs
    outputs = {key: rebuild.outputs_of[tensor._keras_history.operation.name] for key, tensor in features.output.items()}
    reached = rebuild.stride_of[id(outputs["high_level"])]
    if reached < output_stride:
        raise ValueError(f"the encoder reaches stride {reached} only, less than output_stride={output_stride}")
    return outputs


def resnet_features(block: str = "bottleneck", stage_blocks: Sequence[int] = RESNET101_BLOCKS, width: int = 64) -> keras.Model:
    """A ResNet of ``resnet.py`` without pooling and FC: ``{"low_level": conv2_x (stride 4), "high_level": last stage}``.

    Bottleneck ResNets have conv biases as keras.applications' (ResNet-50/101 layer for layer),
    basic-block ones none, as ``resnet.py``'s named builders.

    Args:
        block: ``"bottleneck"`` (ResNet-50/101/152) or ``"basic"`` (ResNet-18/34).
        stage_blocks: blocks per stage, ``(3, 4, 23, 3)`` for ResNet-101.
        width: first-stage channels (64 in the paper).

    Example:
        >>> resnet_features("basic", (1, 1), 8).output["high_level"].shape
        (None, None, None, 16)
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {block!r}")
    net = build_resnet(
        BLOCKS[block], tuple(stage_blocks), input_shape=(None, None, 3), include_top=False,
        width=width, use_bias=block == "bottleneck", name="resnet",
    )
    low_level = net.get_layer(f"conv2_block{stage_blocks[0]}_out").output
    return keras.Model(net.input, {"low_level": low_level, "high_level": net.output}, name="resnet_features")


def _resnet_encoder(images, output_stride, block, stage_blocks, width, multi_grid) -> dict:
    last_stage = f"conv{len(stage_blocks) + 1}_block"
    return atrous_features(resnet_features(block, stage_blocks, width), images, output_stride, multi_grid, last_stage)


def _vgg_encoder(images, output_stride: int, conv_arch) -> dict:
    net = build_vgg(tuple(conv_arch), input_shape=(None, None, 3), include_top=False, name="vgg")
    return atrous_features(keras.Model(net.input, {"high_level": net.output}), images, output_stride)


def _upsample_logits(logits, factor: int, name: str = "logits"):
    """Bilinear up-sampling of the class scores (float32: the model's last layer)."""
    return keras.layers.UpSampling2D(factor, interpolation="bilinear", dtype="float32", name=name)(logits)


def _conv_bn_relu(x, filters: int, kernel_size: int, name: str):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _classify(x, num_classes: int, head_style: str, convs: int, kernel_size: int, channels: int, factor: int):
    """Head convs (paper: ``convs`` × k×k; keras-hub: one 1x1), the 1x1 classifier and the up-sampling."""
    if head_style not in HEAD_STYLES:
        raise ValueError(f"head_style must be one of {HEAD_STYLES}, got {head_style!r}")
    if head_style == "keras_hub":
        convs, kernel_size = 1, 1
    for index in range(1, convs + 1):
        x = _conv_bn_relu(x, channels, kernel_size, name=f"head{index}")
    logits = keras.layers.Conv2D(num_classes, 1, use_bias=head_style == "paper", dtype="float32", name="classifier")(x)
    return _upsample_logits(logits, factor)


def _images():
    return keras.Input((None, None, 3), name="images")


def build_deeplab_v1(
    num_classes: int,
    *,
    conv_arch: Sequence[tuple[int, int]] = VGG16_ARCH,
    fc_channels: int = 1024,
    fc6_rate: int = 12,
    dropout: float = 0.5,
    name: str = "deeplab_v1",
) -> keras.Model:
    """DeepLab-LargeFOV (v1): atrous VGG-16 at output stride 8, fc6 3x3 at rate 12, x8 bilinear up-sampling.

    Paper default (Chen et al. 2015; notes-003-004.md D4 [ref]); the CRF is not included.

    Args:
        num_classes: classes, background included (21 for PASCAL VOC).
        conv_arch: VGG blocks ``(num_convs, channels)``; five blocks (VGG-16's by default).
        fc_channels: fc6 and fc7 channels (1024).
        fc6_rate: fc6's dilation rate (12: the large field of view).
        dropout: after fc6 and fc7 (0.5).
        name: model name.

    Returns:
        ``images [B, H, W, 3]`` (0..255) → logits ``[B, H, W, num_classes]``, H and W multiples of 8.

    Example:
        >>> build_deeplab_v1(21).count_params()  # the paper's 20.5M
        20505429
    """
    images = _images()
    features = _vgg_encoder(images, 8, conv_arch)["high_level"]
    head = AtrousSpatialPyramidPooling(
        num_classes, rates=(fc6_rate,), fusion="sum", include_1x1=False, image_pooling=False,
        hidden_filters=fc_channels, dropout=dropout, name="large_fov",
    )
    return keras.Model(images, _upsample_logits(head(features), 8), name=name)


def build_deeplab_v2(
    num_classes: int,
    *,
    backbone: str = "resnet",
    output_stride: int = 8,
    block: str = "bottleneck",
    stage_blocks: Sequence[int] = RESNET101_BLOCKS,
    width: int = 64,
    conv_arch: Sequence[tuple[int, int]] = VGG16_ARCH,
    aspp_rates: Sequence[int] = (6, 12, 18, 24),
    aspp_hidden: int = 1024,
    dropout: float = 0.5,
    name: str = "deeplab_v2",
) -> keras.Model:
    """DeepLab v2: ASPP whose branches (rates 6/12/18/24) each predict the classes, summed; x8 up-sampling.

    Paper default (Chen et al., TPAMI 2017): ResNet-101 at output stride 8, each branch one 3x3
    atrous conv to the classes; with ``backbone="vgg"`` the ASPP-L variant on VGG-16 (branches
    fc6 3x3 atrous ``aspp_hidden`` → fc7 → fc8).

    Args:
        num_classes: classes, background included.
        backbone: ``"resnet"`` (paper's ResNet-101) or ``"vgg"`` (ASPP-L).
        output_stride: 8 (paper), 16 or 32.
        block, stage_blocks, width: the ResNet (:func:`resnet_features`).
        conv_arch: the VGG's blocks (VGG-16).
        aspp_rates: the branches' rates.
        aspp_hidden: fc6/fc7 channels of the VGG branches (1024).
        dropout: after fc6 and fc7 of the VGG branches.
        name: model name.

    Returns:
        ``images`` → logits ``[B, H, W, num_classes]``, H and W multiples of ``output_stride``.

    Example:
        >>> net = build_deeplab_v2(3, block="basic", stage_blocks=(1, 1, 1, 1), width=4, aspp_rates=(1, 2))
        >>> net(keras.ops.zeros((1, 64, 64, 3))).shape
        TensorShape([1, 64, 64, 3])
    """
    images = _images()
    if backbone == "resnet":
        features = _resnet_encoder(images, output_stride, block, stage_blocks, width, None)["high_level"]
        hidden = None
    elif backbone == "vgg":
        features, hidden = _vgg_encoder(images, output_stride, conv_arch)["high_level"], aspp_hidden
    else:
        raise ValueError(f"backbone must be 'resnet' or 'vgg', got {backbone!r}")
    aspp = AtrousSpatialPyramidPooling(
        num_classes, rates=aspp_rates, fusion="sum", include_1x1=False, image_pooling=False,
        hidden_filters=hidden, dropout=dropout, name="aspp",
    )
    return keras.Model(images, _upsample_logits(aspp(features), output_stride), name=name)


def _v3_encoder(images, output_stride, block, stage_blocks, width, multi_grid, aspp_rates, aspp_channels, dropout, encoder):
    """Encoder features (ours, or ``encoder`` rebuilt) and the v3 ASPP on the high-level map."""
    if encoder is None:
        features = _resnet_encoder(images, output_stride, block, stage_blocks, width, multi_grid)
    else:
        features = atrous_features(encoder, images, output_stride)
    rates = aspp_rates or tuple(rate * 16 // output_stride for rate in (6, 12, 18))
    aspp = AtrousSpatialPyramidPooling(aspp_channels, rates=rates, fusion="concat", dropout=dropout, name="aspp")
    return features, aspp(features["high_level"])


def build_deeplab_v3(
    num_classes: int,
    *,
    output_stride: int = 16,
    block: str = "bottleneck",
    stage_blocks: Sequence[int] = RESNET101_BLOCKS,
    width: int = 64,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aspp_rates: Sequence[int] | None = None,
    aspp_channels: int = 256,
    dropout: float = 0.1,
    head_style: str = "paper",
    encoder: keras.Model | None = None,
    name: str = "deeplab_v3",
) -> keras.Model:
    """DeepLab v3: atrous ResNet + ASPP with image pooling and BN, 1x1 classifier, bilinear up-sampling.

    Paper default (Chen et al. 2017, arXiv 1706.05587; notes-001.md §7): ResNet-101, output stride
    16, multi-grid (1, 2, 4), ASPP rates (6, 12, 18) (doubled at output stride 8), 256 channels.

    Args:
        num_classes: classes, background included.
        output_stride: 16 (paper), 8 or 32 (no atrous conv: keras-hub's DeepLabV3 on P5).
        block, stage_blocks, width: the ResNet (:func:`resnet_features`).
        multi_grid: unit rates of the last stage's blocks (one per block), or ``None``.
        aspp_rates: the atrous rates; ``None``: (6, 12, 18) × 16 / ``output_stride``.
        aspp_channels: ASPP width (256).
        dropout: after the ASPP projection (0.1 in the official code).
        head_style: ``"paper"`` or ``"keras_hub"`` (an extra 1x1 conv, no classifier bias; module
            docstring).
        encoder: instead of our ResNet, a functional model from raw images to
            ``{"high_level": map}`` (weights kept; see :mod:`tfmodels.models.deeplab_keras_hub`).
        name: model name.

    Returns:
        ``images`` → logits ``[B, H, W, num_classes]``, H and W multiples of ``output_stride``.

    Example:
        >>> net = build_deeplab_v3(3, block="basic", stage_blocks=(1, 1, 1, 1), width=4, output_stride=8,
        ...                        multi_grid=None, aspp_rates=(1, 2, 3), aspp_channels=8)
        >>> net(keras.ops.zeros((1, 64, 64, 3))).shape
        TensorShape([1, 64, 64, 3])
    """
    images = _images()
    _, x = _v3_encoder(images, output_stride, block, stage_blocks, width, multi_grid, aspp_rates, aspp_channels, dropout, encoder)
    logits = _classify(x, num_classes, head_style, convs=0, kernel_size=1, channels=aspp_channels, factor=output_stride)
    return keras.Model(images, logits, name=name)


def build_deeplab_v3_plus(
    num_classes: int,
    *,
    output_stride: int = 16,
    block: str = "bottleneck",
    stage_blocks: Sequence[int] = RESNET101_BLOCKS,
    width: int = 64,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aspp_rates: Sequence[int] | None = None,
    aspp_channels: int = 256,
    low_level_channels: int = 48,
    decoder_channels: int = 256,
    decoder_convs: int = 2,
    dropout: float = 0.1,
    head_style: str = "paper",
    encoder: keras.Model | None = None,
    name: str = "deeplab_v3_plus",
) -> keras.Model:
    """DeepLab v3+: the v3 encoder and a decoder that fuses the stride-4 features (paper default).

    Chen et al., ECCV 2018 (notes-001.md §7 "decoder fuses high-resolution low-level features",
    notes-003-004.md D4 [ref]): ASPP output up-sampled x(OS/4) bilinearly, concatenated with the
    stride-4 features reduced to 48 channels (1x1, BN, ReLU), two 3x3 convs of 256 (BN, ReLU), the
    1x1 classifier, x4 bilinear up-sampling. ResNet-101 stands in for the paper's Xception.

    Args:
        num_classes: classes, background included.
        output_stride: 16 (paper), 8 or 32 (keras-hub's DeepLabV3 on P5).
        block, stage_blocks, width: the ResNet (:func:`resnet_features`).
        multi_grid: unit rates of the last stage's blocks (v3's (1, 2, 4)), or ``None``.
        aspp_rates: ``None``: (6, 12, 18) × 16 / ``output_stride``.
        aspp_channels: ASPP width (256).
        low_level_channels: the low-level projection's channels (48).
        decoder_channels: the decoder convs' channels (256).
        decoder_convs: the number of 3x3 decoder convs (2).
        dropout: after the ASPP projection.
        head_style: ``"paper"`` or ``"keras_hub"`` (one 1x1 decoder conv, no classifier bias).
        encoder: instead of our ResNet, a functional model from raw images to ``{"low_level":
            stride-4 map, "high_level": map}`` (weights kept).
        name: model name.

    Returns:
        ``images`` → logits ``[B, H, W, num_classes]``, H and W multiples of ``output_stride``.

    Example:
        >>> net = build_deeplab_v3_plus(3, block="basic", stage_blocks=(1, 1, 1, 1), width=4, output_stride=8,
        ...                             multi_grid=None, aspp_rates=(1, 2, 3), aspp_channels=8,
        ...                             low_level_channels=4, decoder_channels=8)
        >>> net(keras.ops.zeros((1, 64, 64, 3))).shape
        TensorShape([1, 64, 64, 3])
    """
    images = _images()
    features, x = _v3_encoder(images, output_stride, block, stage_blocks, width, multi_grid, aspp_rates, aspp_channels, dropout, encoder)
    x = keras.layers.UpSampling2D(output_stride // LOW_LEVEL_STRIDE, interpolation="bilinear", name="decoder_upsample")(x)
    low_level = _conv_bn_relu(features["low_level"], low_level_channels, 1, name="decoder_low_level")
    x = keras.layers.Concatenate(name="decoder_concat")([x, low_level])
    logits = _classify(x, num_classes, head_style, decoder_convs, 3, decoder_channels, LOW_LEVEL_STRIDE)
    return keras.Model(images, logits, name=name)
