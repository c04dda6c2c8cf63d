"""VGG-11/13/16/19 (notes-002 S21, notes-003-004 B2, notes-001 §12)."""

import keras
import numpy as np
import pytest

from tfmodels.layers.preprocessing import CaffePreprocessing
from tfmodels.models import vgg
from tfmodels.models.keras_applications import copy_weights

ARCHS = {11: vgg.VGG11_ARCH, 13: vgg.VGG13_ARCH, 16: vgg.VGG16_ARCH, 19: vgg.VGG19_ARCH}
# VGG-16/19: keras.applications' counts (notes-003-004 B2); VGG-11/13: the same closed form.
PUBLISHED = {11: 132_863_336, 13: 133_047_848, 16: 138_357_544, 19: 143_667_240}
TINY = dict(width_divisor=16, fc_units=64)


def closed_form_count(conv_arch, num_classes, side, width_divisor=1, fc_units=4096):
    """3×3 convs (9·C_in·C_out + C_out), then FC on the (side/2^blocks)² × C flattened map."""
    total, c_in = 0, 3
    for num_convs, channels in conv_arch:
        c_out = channels // width_divisor
        for _ in range(num_convs):
            total += 9 * c_in * c_out + c_out
            c_in = c_out
    flat = (side // 2 ** len(conv_arch)) ** 2 * c_in
    return total + flat * fc_units + fc_units + fc_units * fc_units + fc_units + fc_units * num_classes + num_classes


def builder(depth):
    return getattr(vgg, f"build_vgg{depth}")


def raw_images(n, side, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype("float32")


@pytest.mark.parametrize("depth", sorted(ARCHS))
def test_closed_form_gives_the_published_counts(depth):
    assert closed_form_count(ARCHS[depth], 1000, 224) == PUBLISHED[depth]


# VGG-16/19 take 3-10 s to initialise on a shared CPU; by default the closed form and the tiny
# counts cover them, and the parity tests check their layers against keras.applications.
@pytest.mark.parametrize("depth", [11, 13, *(pytest.param(d, marks=pytest.mark.slow) for d in (16, 19))])
def test_parameter_count_at_the_paper_configuration(depth):
    assert builder(depth)().count_params() == PUBLISHED[depth]


@pytest.mark.parametrize("depth", sorted(ARCHS))
def test_tiny_variant_count_and_shapes(depth):
    model = builder(depth)(num_classes=10, input_shape=(32, 32, 3), **TINY)
    assert model.count_params() == closed_form_count(ARCHS[depth], 10, 32, **TINY)
    assert model(raw_images(2, 32)).shape == (2, 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert (len(convs), len(dense)) == (depth - 3, 3)  # VGG-n: n-3 conv + 3 FC weight layers
    assert all(layer.kernel_size == (3, 3) and layer.strides == (1, 1) for layer in convs)


def test_every_block_halves_the_feature_map_and_the_top_can_be_left_out():
    model = vgg.build_vgg11(include_top=False, input_shape=(None, None, 3), width_divisor=16)
    pools = [layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 5
    probe = keras.Model(model.input, [model.get_layer(name).output for name in pools])
    assert [tuple(out.shape[1:3]) for out in probe(raw_images(1, 64))] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert model(raw_images(1, 96)).shape == (1, 3, 3, 32)


def test_preprocess_layer_is_keras_caffe_preprocess_input():
    raw = raw_images(2, 8)
    expected = keras.applications.vgg16.preprocess_input(raw.copy())
    np.testing.assert_allclose(CaffePreprocessing(name="preprocess")(raw), expected, atol=1e-5)


@pytest.mark.parametrize("depth", [16, 19])
def test_outputs_equal_keras_applications_with_copied_weights(depth):
    keras.utils.set_random_seed(depth)
    application = {16: keras.applications.VGG16, 19: keras.applications.VGG19}[depth]
    reference = application(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    ours = builder(depth)(input_shape=(64, 64, 3))
    copy_weights(reference, ours)
    raw = raw_images(2, 64, seed=depth)
    expected = reference(keras.applications.vgg16.preprocess_input(raw.copy()))
    assert np.std(expected) > 0.01  # not a vacuous match of near-zero logits
    np.testing.assert_allclose(ours(raw), expected, atol=1e-4)


@pytest.mark.parametrize(
    "depth, kwargs, message",
    [
        (11, {}, "no ImageNet weights for VGG-11"),
        (16, {"num_classes": 10}, "num_classes=1000"),
        (19, {"width_divisor": 16}, "full-width"),
        (16, {"weights": "vgg16.h5"}, "None or 'imagenet'"),
    ],
)
def test_imagenet_weights_are_refused_where_they_cannot_fit(depth, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(depth)(**{"weights": "imagenet", **kwargs})


def test_tiny_vgg_overfits_one_batch_and_round_trips(train_on_one_batch, keras_round_trip):
    keras.utils.set_random_seed(0)
    x, y = raw_images(8, 32), np.arange(8) % 4
    model = vgg.build_vgg11(num_classes=4, input_shape=(32, 32, 3), dropout=0.0, **TINY)
    initial, final = train_on_one_batch(model, x, y, 1e-3, 30)
    assert final < 0.1 * initial
    restored = keras_round_trip(model)
    assert isinstance(restored.get_layer("preprocess"), CaffePreprocessing)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
