"""DeepLab v1-v3+ (notes-001.md §7, notes-003-004.md D4/A9): shapes, atrous conversion, counts, keras-hub parity."""

import doctest

import keras
import keras_hub
import numpy as np
import pytest

from tfmodels.models import deeplab, deeplab_keras_hub
from tfmodels.models.deeplab import (
    atrous_features,
    build_deeplab_v1,
    build_deeplab_v2,
    build_deeplab_v3,
    build_deeplab_v3_plus,
    resnet_features,
)
from tfmodels.models.deeplab_keras_hub import deeplab_from_keras_hub

TINY_RESNET = dict(block="basic", stage_blocks=(1, 1, 1, 1), width=4)
TINY_V3 = dict(**TINY_RESNET, output_stride=8, multi_grid=None, aspp_rates=(1, 2, 3), aspp_channels=8)
TINY_BUILDERS = {
    "deeplab_v1": lambda: build_deeplab_v1(3, conv_arch=((1, 4), (1, 8), (1, 8), (1, 8), (1, 8)), fc_channels=16, fc6_rate=2),
    "deeplab_v2": lambda: build_deeplab_v2(3, **TINY_RESNET, aspp_rates=(1, 2, 3, 4)),
    "deeplab_v3": lambda: build_deeplab_v3(3, **TINY_V3),
    "deeplab_v3_plus": lambda: build_deeplab_v3_plus(3, **TINY_V3, low_level_channels=4, decoder_channels=8),
}


def _images(rng, batch=2, height=64, width=64):
    return rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")


def test_docstring_examples():
    result = doctest.testmod(deeplab)
    assert result.attempted >= 12 and result.failed == 0


@pytest.mark.parametrize("name", TINY_BUILDERS)
def test_logits_at_input_resolution(name):
    """§7: logits (B, H, W, classes) at the input resolution, float32, for non-square multiples of 32."""
    model = TINY_BUILDERS[name]()
    assert model.name == name and model.input.name == "images"
    out = model(_images(np.random.default_rng(0), height=64, width=96))
    assert tuple(out.shape) == (2, 64, 96, 3) and out.dtype == "float32"


def test_v2_asppl_on_vgg():
    """v2's VGG-16 variant: four ASPP-L branches (fc6 atrous -> fc7 -> fc8) summed, output stride 8."""
    model = build_deeplab_v2(3, backbone="vgg", conv_arch=((1, 4), (1, 4), (1, 4), (1, 4), (1, 8)), aspp_hidden=6, aspp_rates=(1, 2, 3, 4))
    assert tuple(model(_images(np.random.default_rng(7), 1)).shape) == (1, 64, 64, 3)
    assert model.get_layer("aspp").count_params() == 4 * ((9 * 8 * 6 + 6) + (6 * 6 + 6) + (6 * 3 + 3))
    assert model.get_layer("block5_conv1").dilation_rate == (2, 2)


@pytest.mark.parametrize("name", ["deeplab_v1", "deeplab_v3_plus"])
def test_keras_round_trip(name, keras_round_trip):
    model = TINY_BUILDERS[name]()
    images = _images(np.random.default_rng(1))
    np.testing.assert_allclose(keras_round_trip(model).predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.slow  # the first training step alone compiles for ~25 s on a loaded 2-core machine
@pytest.mark.parametrize("name", ["deeplab_v1", "deeplab_v3_plus"])
def test_tiny_model_fits_one_batch(name, train_on_one_batch):
    """One batch of 16x16-block label maps (each block's class is its brightness tercile) is learnt."""
    rng = np.random.default_rng(2)
    blocks = rng.uniform(0, 255, (4, 4, 4, 1)).astype("float32")
    images = np.repeat(np.repeat(np.repeat(blocks, 16, axis=1), 16, axis=2), 3, axis=3)
    labels = np.digitize(images[..., 0], [85, 170]).astype("int32")
    # the loss in training mode: 40 steps leave BN's moving statistics (momentum 0.99) far behind
    initial, final = train_on_one_batch(TINY_BUILDERS[name](), images, labels, 1e-2, 40, training=True)
    assert final < 0.5 * initial


@pytest.mark.parametrize("output_stride", [16, 8])
def test_atrous_features_are_the_original_features_computed_densely(output_stride):
    """D4/A9: trading stride for dilation keeps the parameters and the features, at a higher resolution.

    With the stride on the first 1x1 conv of a bottleneck (DeepLab's Caffe ResNet, keras.applications)
    the atrous network's map, sampled every ``32 / output_stride`` pixels, *is* the stride-32 map.
    """
    features = resnet_features("bottleneck", (1, 1, 1, 1), width=4)
    rng = np.random.default_rng(3)
    for layer in features.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
    images = keras.Input((None, None, 3))
    atrous = keras.Model(images, atrous_features(features, images, output_stride))
    x = _images(rng, height=64, width=96)
    original, dense = features(x)["high_level"].numpy(), atrous(x)["high_level"].numpy()
    step = 32 // output_stride
    assert original.shape == (2, 2, 3, 128) and dense.shape == (2, 2 * step, 3 * step, 128)
    np.testing.assert_allclose(dense[:, ::step, ::step], original, rtol=1e-4, atol=1e-4)
    assert atrous.count_params() == features.count_params()


@pytest.mark.parametrize(("output_stride", "conv4_rate", "conv5_rates"), [(16, 1, (2, 4, 8)), (8, 2, (4, 8, 16))])
def test_multi_grid_rates(output_stride, conv4_rate, conv5_rates):
    """v3 paper §3.2: Multi_Grid (1, 2, 4) at output stride 16 gives block4 rates 2·(1, 2, 4) = (2, 4, 8)."""
    model = build_deeplab_v3(3, output_stride=output_stride, block="bottleneck", stage_blocks=(1, 1, 2, 3), width=4, aspp_channels=8)
    assert [model.get_layer(f"conv5_block{i}_2_conv").dilation_rate[0] for i in (1, 2, 3)] == list(conv5_rates)
    assert model.get_layer("conv4_block2_2_conv").dilation_rate[0] == conv4_rate
    assert model.get_layer("conv4_block1_1_conv").strides[0] == (2 if output_stride == 16 else 1)
    # v3 §3.3: rates (6, 12, 18) at output stride 16, doubled at 8
    expected = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
    assert model.get_layer("aspp").rates == expected


def test_v1_is_atrous_vgg16_at_output_stride_8():
    """v1: pool4 / pool5 become 3x3 stride-1 pools, conv5 gets rate 2, fc6 rate 12; features at H/8."""
    model = build_deeplab_v1(21, conv_arch=((1, 4), (1, 4), (1, 4), (1, 4), (1, 4)))
    for pool in ("block4_pool", "block5_pool"):
        layer = model.get_layer(pool)
        assert tuple(layer.pool_size) == (3, 3) and tuple(layer.strides) == (1, 1)
    assert model.get_layer("block3_pool").strides == (2, 2)
    assert model.get_layer("block5_conv1").dilation_rate == (2, 2)
    assert model.get_layer("block4_conv1").dilation_rate == (1, 1)
    head = model.get_layer("large_fov")
    assert head.rates == (12,) and tuple(head.input.shape[1:3]) == (None, None)
    features = keras.Model(model.input, head.input)
    assert features(_images(np.random.default_rng(4), 1, 64, 96)).shape[1:3] == (8, 12)


def _vgg16_conv_params():
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    return sum(9 * c_in * c_out + c_out for c_in, c_out in zip(channels, channels[1:]))


def test_v1_paper_parameter_count():
    """DeepLab-LargeFOV: VGG-16 convs + fc6 (3x3, 1024) + fc7 (1x1, 1024) + fc8 = the paper's 20.5M (Table 2)."""
    expected = _vgg16_conv_params() + (9 * 512 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 21 + 21)
    assert expected == 20_505_429 and round(expected / 1e6, 1) == 20.5
    assert build_deeplab_v1(21).count_params() == expected


def _aspp_v3_params(c_in, channels=256, rates=3):
    """1x1 + rates × 3x3 + image pooling, no conv bias, BN (4 per channel); 1x1 projection + BN."""
    branches = (1 + 9 * rates + 1) * c_in * channels + (rates + 2) * 4 * channels
    return branches + (rates + 2) * channels * channels + 4 * channels


@pytest.mark.slow
def test_paper_parameter_counts():
    """v2 / v3 / v3+ on ResNet-101 = keras.applications' ResNet-101 without top + the closed-form heads."""
    resnet101 = keras.applications.ResNet101(include_top=False, weights=None).count_params()
    assert resnet101 == 42_658_176
    v2_head = 4 * (9 * 2048 * 21 + 21)
    assert build_deeplab_v2(21).count_params() == resnet101 + v2_head
    aspp = _aspp_v3_params(2048)
    assert build_deeplab_v3(21).count_params() == resnet101 + aspp + (256 * 21 + 21)
    decoder = (256 * 48 + 4 * 48) + (9 * (256 + 48) * 256 + 4 * 256) + (9 * 256 * 256 + 4 * 256) + (256 * 21 + 21)
    assert build_deeplab_v3_plus(21).count_params() == resnet101 + aspp + decoder


def _randomize_bn(model, rng):
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                variable.assign(rng.uniform(0.5, 1.5, variable.shape))


def _hub_segmenter(low_level: bool, num_classes=4, rates=(1, 2, 3)):
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 16, 16, 16],
        stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
    )
    extra = dict(low_level_feature_key="P2", projection_filters=8, upsampling_size=8) if low_level else dict(upsampling_size=1)
    backbone = keras_hub.models.DeepLabV3Backbone(encoder, spatial_pyramid_pooling_key="P5", dilation_rates=list(rates), **extra)
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone, num_classes=num_classes)


@pytest.mark.parametrize("low_level", [True, False], ids=["v3_plus", "v3"])
def test_keras_hub_parity(low_level):
    """keras-hub's DeepLabV3ImageSegmenter (random weights, random BN statistics) = our converted model."""
    rng = np.random.default_rng(5)
    hub = _hub_segmenter(low_level)
    _randomize_bn(hub, rng)
    ours = deeplab_from_keras_hub(hub)
    assert ours.count_params() == hub.count_params()
    assert ours.get_layer("aspp").fusion == "concat"
    assert ("decoder_concat" in [layer.name for layer in ours.layers]) == low_level
    x = rng.uniform(0, 1, (2, 64, 96, 3)).astype("float32")
    expected = hub.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_keras_hub_converter_keeps_the_preprocessing():
    """With a preprocessor, keras-hub's scale and offset become our first layer: ours takes raw pixels."""
    rng = np.random.default_rng(6)
    hub = _hub_segmenter(True)
    converter = keras_hub.layers.DeepLabV3ImageConverter(scale=1 / 255.0, offset=-0.5)
    hub.preprocessor = keras_hub.models.DeepLabV3ImageSegmenterPreprocessor(image_converter=converter)
    ours = deeplab_from_keras_hub(hub)
    raw = rng.uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(raw, verbose=0), hub(raw / 255.0 - 0.5, training=False), rtol=1e-4, atol=1e-4)


def test_keras_hub_converter_refuses_what_it_cannot_match():
    hub = _hub_segmenter(False)
    hub.backbone.upsampling_size = 2  # keras-hub's v3 head conv would then run after an up-sampling
    with pytest.raises(ValueError, match="upsampling_size=1"):
        deeplab_from_keras_hub(hub)


@pytest.mark.slow
def test_keras_hub_preset_size_parameter_count():
    """keras-hub's preset "deeplab_v3_plus_resnet50_pascalvoc" lists 39,190,656 backbone parameters
    (its metadata); the same configuration, built with random weights and converted, has them too."""
    from keras_hub.src.models.deeplab_v3.deeplab_v3_presets import backbone_presets

    published = backbone_presets["deeplab_v3_plus_resnet50_pascalvoc"]["metadata"]["params"]
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
    )
    backbone = keras_hub.models.DeepLabV3Backbone(
        encoder, spatial_pyramid_pooling_key="P5", upsampling_size=8, dilation_rates=[6, 12, 18], low_level_feature_key="P2"
    )
    hub = keras_hub.models.DeepLabV3ImageSegmenter(backbone, num_classes=21)
    assert backbone.count_params() == published
    ours = deeplab_from_keras_hub(hub)
    assert ours.count_params() == published + 256 * 21  # + the bias-free 1x1 classifier


@pytest.mark.parametrize(
    ("builder", "kwargs"),
    [
        (build_deeplab_v3, dict(output_stride=4, multi_grid=None)),
        (build_deeplab_v3, dict(head_style="torchvision", multi_grid=None)),
        (build_deeplab_v2, dict(backbone="xception")),
        (build_deeplab_v3, dict(output_stride=16, multi_grid=(1, 2))),  # one block has no unit rate
    ],
)
def test_invalid_arguments(builder, kwargs):
    with pytest.raises(ValueError):
        builder(3, **{**TINY_RESNET, "stage_blocks": (1, 1, 1, 3), **kwargs})


def test_encoder_that_does_not_reach_the_output_stride():
    net = resnet_features("basic", (1, 1), width=4)  # stride 8 only
    with pytest.raises(ValueError, match="reaches stride 8"):
        build_deeplab_v3(3, output_stride=16, encoder=net, aspp_channels=8)


def test_converter_docstring():
    assert doctest.testmod(deeplab_keras_hub).failed == 0
