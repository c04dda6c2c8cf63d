"""Inception v3 (notes-003-004 B4) against keras.applications.InceptionV3."""

import keras
import numpy as np
import pytest

from tfmodels.models.inception_v3 import (
    build_inception_v3,
    inception_a,
    inception_b,
    inception_c,
    reduction_a,
    reduction_b,
)
from tfmodels.models.keras_applications import copy_weights

TINY = {"width_divisor": 8, "stem": False, "factorized_n": 3}


def _conv_bn(kh, kw, c_in, c_out):
    return kh * kw * c_in * c_out + 3 * c_out  # no bias; BN beta, moving mean, moving variance


def _closed_form_count(num_classes=1000, n=7):
    total = _conv_bn(3, 3, 3, 32) + _conv_bn(3, 3, 32, 32) + _conv_bn(3, 3, 32, 64)  # stem
    total += _conv_bn(1, 1, 64, 80) + _conv_bn(3, 3, 80, 192)
    c = 192
    for pool_proj in (32, 64, 64):  # A: 1x1 64 | 48 -> 5x5 64 | 64 -> 3x3 96 -> 3x3 96 | pool -> pool_proj
        total += _conv_bn(1, 1, c, 64) + _conv_bn(1, 1, c, 48) + _conv_bn(5, 5, 48, 64)
        total += _conv_bn(1, 1, c, 64) + _conv_bn(3, 3, 64, 96) + _conv_bn(3, 3, 96, 96) + _conv_bn(1, 1, c, pool_proj)
        c = 64 + 64 + 96 + pool_proj
    total += _conv_bn(3, 3, c, 384) + _conv_bn(1, 1, c, 64) + _conv_bn(3, 3, 64, 96) + _conv_bn(3, 3, 96, 96)
    c = 384 + 96 + c
    for c7 in (128, 160, 160, 192):  # B: 1xn and nx1, twice in the double branch
        total += _conv_bn(1, 1, c, 192) + _conv_bn(1, 1, c, c7) + _conv_bn(1, n, c7, c7) + _conv_bn(n, 1, c7, 192)
        total += _conv_bn(1, 1, c, c7) + 3 * _conv_bn(n, 1, c7, c7) + _conv_bn(1, n, c7, 192) + _conv_bn(1, 1, c, 192)
        c = 4 * 192
    total += _conv_bn(1, 1, c, 192) + _conv_bn(3, 3, 192, 320)
    total += _conv_bn(1, 1, c, 192) + _conv_bn(1, n, 192, 192) + _conv_bn(n, 1, 192, 192) + _conv_bn(3, 3, 192, 192)
    c = 320 + 192 + c
    for _ in range(2):  # C: 1x3 and 3x1 side by side
        total += _conv_bn(1, 1, c, 320) + _conv_bn(1, 1, c, 384) + _conv_bn(1, 3, 384, 384) + _conv_bn(3, 1, 384, 384)
        total += _conv_bn(1, 1, c, 448) + _conv_bn(3, 3, 448, 384) + _conv_bn(1, 3, 384, 384) + _conv_bn(3, 1, 384, 384)
        total += _conv_bn(1, 1, c, 192)
        c = 320 + 2 * 384 + 2 * 384 + 192
    return total + c * num_classes + num_classes


@pytest.fixture(scope="module")
def paper_model():
    return build_inception_v3()


def test_parameter_count_at_the_paper_configuration(paper_model):
    assert _closed_form_count() == paper_model.count_params() == 23_851_784


def test_grid_sizes_and_reduction_channels_at_299(paper_model):
    names = ("maxpool_5a_3x3", "mixed0", "mixed2", "mixed3", "mixed7", "mixed8", "mixed10")
    shapes = {name: paper_model.get_layer(name).output.shape[1:] for name in names}
    assert shapes == {
        "maxpool_5a_3x3": (35, 35, 192),
        "mixed0": (35, 35, 256),
        "mixed2": (35, 35, 288),
        "mixed3": (17, 17, 384 + 96 + 288),  # reductions: stride-2 conv branches + the pooled input
        "mixed7": (17, 17, 768),
        "mixed8": (8, 8, 320 + 192 + 768),
        "mixed10": (8, 8, 2048),
    }
    assert paper_model.get_layer("mixed4_7x7_1_conv").kernel.shape == (1, 7, 128, 128)
    assert paper_model.get_layer("mixed4_7x7_2_conv").kernel.shape == (7, 1, 128, 192)


@pytest.mark.parametrize(
    ("module", "input_shape", "output_shape"),
    [
        (lambda x: inception_a(x, 32, "a"), (35, 35, 192), (35, 35, 256)),
        (lambda x: reduction_a(x, "ra"), (35, 35, 288), (17, 17, 768)),
        (lambda x: inception_b(x, 128, 7, "b"), (17, 17, 768), (17, 17, 768)),
        (lambda x: reduction_b(x, 7, "rb"), (17, 17, 768), (8, 8, 1280)),
        (lambda x: inception_c(x, "c"), (8, 8, 1280), (8, 8, 2048)),
        (lambda x: inception_b(x, 128, 3, "b", width_divisor=8), (17, 17, 96), (17, 17, 96)),
    ],
)
def test_module_output_shapes(module, input_shape, output_shape):
    assert module(keras.Input(input_shape)).shape[1:] == output_shape


def test_factorised_kernels_save_what_the_notes_claim():
    """1xn + nx1 instead of nxn: 2n instead of n^2 weights per channel pair (n=7: 14 vs 49)."""
    x = keras.Input((17, 17, 96))
    for n in (3, 7):
        block = keras.Model(x, inception_b(x, 128, n, f"b{n}", width_divisor=8))
        kernels = [layer.kernel.shape[:2] for layer in block.layers if isinstance(layer, keras.layers.Conv2D)]
        factorised = sum(height * width for height, width in kernels if max(height, width) == n)
        assert factorised == 3 * 2 * n  # three (1xn, nx1) pairs


@pytest.fixture(scope="module")
def model_75():
    return build_inception_v3(7, (75, 75, 3))


def test_preprocessing_is_the_applications_tf_mode(model_75):
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 75, 75, 3)).astype("float32")
    expected = keras.applications.inception_v3.preprocess_input(pixels.copy())
    np.testing.assert_allclose(model_75.get_layer("preprocess")(pixels), expected, atol=1e-6)


def test_matches_keras_applications_at_75x75(model_75, randomize_batch_norm):
    rng = np.random.default_rng(0)
    reference = keras.applications.InceptionV3(
        weights=None, input_shape=(75, 75, 3), classifier_activation=None, classes=7
    )
    randomize_batch_norm(reference, rng)  # random batch-norm statistics too, so a misplaced one shows
    copy_weights(reference, model_75)
    pixels = rng.uniform(0, 255, (2, 75, 75, 3)).astype("float32")
    expected = reference(keras.applications.inception_v3.preprocess_input(pixels.copy()), training=False)
    np.testing.assert_allclose(model_75(pixels, training=False), expected, atol=1e-4)


def test_imagenet_weights_are_copied_from_the_application(monkeypatch):
    """The download is replaced by random weights; the copy is what is checked."""
    built, application = {}, keras.applications.InceptionV3

    def offline_application(**kwargs):
        assert kwargs["weights"] == "imagenet"
        built["reference"] = application(**{**kwargs, "weights": None})
        return built["reference"]

    monkeypatch.setattr(keras.applications, "InceptionV3", offline_application)
    ours = build_inception_v3(input_shape=(75, 75, 3), weights="imagenet")
    reference_weights = built["reference"].get_layer("predictions").get_weights()
    for ours_weight, reference_weight in zip(ours.get_layer("logits").get_weights(), reference_weights):
        np.testing.assert_array_equal(ours_weight, reference_weight)


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match="at least 75x75"):
        build_inception_v3(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="paper architecture"):
        build_inception_v3(10, (32, 32, 3), weights="imagenet", **TINY)
    with pytest.raises(ValueError, match="1000 classes"):
        build_inception_v3(10, weights="imagenet")
    with pytest.raises(ValueError, match="positive integer"):
        build_inception_v3(width_divisor=0)
    with pytest.raises(ValueError, match="None or"):
        build_inception_v3(weights="inception.h5")


@pytest.fixture(scope="module")
def tiny_images():
    return np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")


def test_tiny_variant_shapes_and_keras_file_round_trip(tiny_images, keras_round_trip):
    model = build_inception_v3(10, (32, 32, 3), **TINY)
    grids = [model.get_layer(name).output.shape[1:] for name in ("mixed2", "mixed7", "mixed10")]
    assert grids == [(32, 32, 36), (15, 15, 96), (7, 7, 256)]  # A, B, C without the stem, widths / 8
    restored = keras_round_trip(model)
    np.testing.assert_array_equal(restored(tiny_images, training=False), model(tiny_images, training=False))
    assert model(tiny_images).shape == (8, 10)


@pytest.mark.slow  # tracing the training step of 94 conv + BN layers takes ~40 s on a busy 2-core CPU
def test_tiny_variant_overfits_one_batch(tiny_images):
    keras.utils.set_random_seed(0)
    labels = np.arange(8) % 10
    model = build_inception_v3(10, (32, 32, 3), **TINY)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(3e-3), cross_entropy, jit_compile=False)
    history = model.fit(tiny_images, labels, epochs=40, verbose=0).history["loss"]
    assert history[-1] < 0.25 * history[0]
