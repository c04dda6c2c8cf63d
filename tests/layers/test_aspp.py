"""ASPP (notes-001.md §7, notes-003-004.md D4): branch layout, sizes, and equality with independent references."""

import doctest

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import aspp as aspp_module
from tfmodels.layers.aspp import AtrousSpatialPyramidPooling


def test_docstring_examples():
    result = doctest.testmod(aspp_module)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("size", [(13, 13), (17, 11)])
def test_v3_form_branches_and_sizes(size):
    """§7 test: ASPP(rates=(6, 12, 18), include_1x1, image_pooling): 5 branches, spatial size kept."""
    layer = AtrousSpatialPyramidPooling(32, rates=(6, 12, 18))
    out = layer(tf.random.normal((2, *size, 16)))
    assert tuple(out.shape) == (2, *size, 32)
    assert len(layer.branches) == 5
    convs = [sub for branch in layer.branches for sub in branch if isinstance(sub, keras.layers.Conv2D)]
    assert [tuple(conv.dilation_rate) for conv in convs] == [(1, 1), (6, 6), (12, 12), (18, 18), (1, 1)]
    assert [conv.filters for conv in convs] == [32] * 5
    (projection,) = [sub for sub in layer.projection if isinstance(sub, keras.layers.Conv2D)]
    assert projection.kernel.shape == (1, 1, 5 * 32, 32)  # the concatenation of five 32-channel branches


def test_v3_form_equals_keras_hub_spatial_pyramid_pooling():
    """keras-hub's SpatialPyramidPooling (nobody here wrote it) with our weights gives our output."""
    from keras_hub.src.models.deeplab_v3.deeplab_v3_layers import SpatialPyramidPooling

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 12, 10, 8)).astype("float32")
    ours = AtrousSpatialPyramidPooling(16, rates=(1, 2, 3))
    hub = SpatialPyramidPooling(dilation_rates=[1, 2, 3], num_channels=16)
    ours(x), hub(x)
    for variable in ours.weights:  # random BN statistics, so a misplaced BN weight would show
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
    hub_layers = [sub for seq in [*hub.aspp_parallel_channels, hub.projection] for sub in seq.layers if sub.weights]
    our_layers = [sub for branch in [*ours.branches, ours.projection] for sub in branch if sub.weights]
    assert len(hub_layers) == len(our_layers) == 12
    for source, target in zip(our_layers, hub_layers):
        target.set_weights(source.get_weights())
    assert ours.count_params() == hub.count_params()
    np.testing.assert_allclose(ours(x, training=False), hub(x, training=False), rtol=1e-5, atol=1e-5)


def test_v2_form_is_the_sum_of_atrous_convolutions():
    """v2: the branches' class scores summed; each branch = tf.nn.atrous_conv2d at its rate + bias."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 15, 15, 4)).astype("float32")
    layer = AtrousSpatialPyramidPooling(3, rates=(1, 2, 5), fusion="sum", include_1x1=False, image_pooling=False)
    out = layer(x)
    expected = 0
    for rate, (conv,) in zip((1, 2, 5), layer.branches):
        conv.bias.assign(rng.normal(size=3).astype("float32"))
        expected += tf.nn.atrous_conv2d(x, conv.kernel, rate=rate, padding="SAME") + conv.bias
    out = layer(x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert layer.count_params() == 3 * (9 * 4 * 3 + 3)  # no BN, one 3x3 conv with bias per rate


def test_v2_asppl_branch_layout():
    """ASPP-L / LargeFOV branch: fc6 3x3 atrous (hidden) -> fc7 1x1 (hidden) -> fc8 1x1 (classes)."""
    layer = AtrousSpatialPyramidPooling(21, rates=(12,), fusion="sum", include_1x1=False, image_pooling=False, hidden_filters=1024)
    layer(np.zeros((1, 8, 8, 512), "float32"))
    assert layer.count_params() == (9 * 512 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 21 + 21)


def test_image_pooling_branch_accepts_dynamic_sizes():
    """D4: the image-pooling branch follows the runtime size (a traced function with None sides)."""
    layer = AtrousSpatialPyramidPooling(8, rates=(2,))
    run = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 4], tf.float32)])
    assert tuple(run(tf.zeros((1, 9, 7, 4))).shape) == (1, 9, 7, 8)
    assert tuple(run(tf.zeros((2, 5, 6, 4))).shape) == (2, 5, 6, 8)


def test_config_round_trip():
    layer = AtrousSpatialPyramidPooling(8, rates=(3, 4), fusion="sum", include_1x1=False, image_pooling=False, hidden_filters=6, dropout=0.5)
    clone = AtrousSpatialPyramidPooling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs",
    [{"fusion": "mean"}, {"fusion": "sum"}, {"hidden_filters": 8}, {"rates": (), "include_1x1": False}],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        AtrousSpatialPyramidPooling(4, **kwargs)
