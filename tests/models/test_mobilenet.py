"""MobileNet v1 (notes-003-004 A7): depthwise-separable convolutions, width multiplier, keras parity."""

import keras
import numpy as np
import pytest

from tfmodels.models.keras_applications import copy_weights
from tfmodels.models.mobilenet import SEPARABLE_BLOCKS, build_mobilenet


def closed_form_count(alpha, num_classes):
    """conv1 27·C + BN; per block depthwise 9·C_in + pointwise C_in·C_out, BN 4 weights per channel."""
    c_in = int(32 * alpha)
    total = 27 * c_in + 4 * c_in
    for filters, _ in SEPARABLE_BLOCKS:
        c_out = int(filters * alpha)
        total += 9 * c_in + 4 * c_in + c_in * c_out + 4 * c_out
        c_in = c_out
    return total + c_in * num_classes + num_classes


def raw_images(n, side, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype("float32")


@pytest.mark.parametrize("alpha, num_classes, expected", [(1.0, 1000, 4_253_864), (0.25, 10, None), (0.5, 1000, None)])
def test_parameter_count(alpha, num_classes, expected):
    model = build_mobilenet(num_classes, alpha=alpha)
    reference = keras.applications.MobileNet(weights=None, alpha=alpha, classes=num_classes)
    assert model.count_params() == closed_form_count(alpha, num_classes) == reference.count_params()
    assert expected is None or model.count_params() == expected


def test_blocks_are_depthwise_then_pointwise_with_the_notes_kernel_shapes():
    model = build_mobilenet(10, (32, 32, 3), alpha=0.25)
    depthwise, pointwise = model.get_layer("conv_dw_2"), model.get_layer("conv_pw_2")
    assert depthwise.kernel.shape == (3, 3, 16, 1)  # [K, K, C, 1], S4:L33
    assert pointwise.kernel.shape == (1, 1, 16, 32)  # [1, 1, C, D], S4:L35
    assert pointwise.activation is keras.activations.linear  # the ReLU6 after it is the non-linearity
    assert model(raw_images(3, 32)).shape == (3, 10)
    features = build_mobilenet(include_top=False, input_shape=(None, None, 3), alpha=0.25)
    assert features(raw_images(1, 64)).shape == (1, 2, 2, 256)


def test_outputs_equal_keras_applications_with_copied_weights(randomize_batch_norm):
    keras.utils.set_random_seed(0)
    reference = keras.applications.MobileNet(weights=None, input_shape=(64, 64, 3), alpha=0.5, classes=7,
                                             classifier_activation=None)  # fmt: skip
    randomize_batch_norm(reference, np.random.default_rng(0))  # so that inference-mode BN is tested too
    ours = build_mobilenet(7, (64, 64, 3), alpha=0.5)
    copy_weights(reference, ours)
    raw = raw_images(2, 64, seed=1)
    expected = reference(keras.applications.mobilenet.preprocess_input(raw.copy()))
    assert np.std(expected) > 0.01  # not a vacuous match of near-zero logits
    np.testing.assert_allclose(ours(raw), expected, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 0.3}, "alpha in"),
        ({"input_shape": (96, 96, 3)}, "square input"),
        ({"num_classes": 10}, "num_classes=1000"),
        ({"weights": "mobilenet.h5"}, "None or 'imagenet'"),
    ],
)
def test_imagenet_weights_are_refused_where_they_cannot_fit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_mobilenet(**{"weights": "imagenet", **kwargs})


@pytest.mark.slow  # tracing the train step of 28 BatchNorm layers takes 20-60 s on a shared 2-core CPU
def test_tiny_mobilenet_overfits_one_batch(train_on_one_batch):
    keras.utils.set_random_seed(0)
    x, y = raw_images(8, 32), np.arange(8) % 4
    model = build_mobilenet(4, (32, 32, 3), alpha=0.25)
    initial, final = train_on_one_batch(model, x, y, 3e-3, 40, training=True)  # batch statistics, as in training
    assert final < 0.25 * initial


def test_tiny_mobilenet_round_trips_through_a_keras_file(keras_round_trip):
    keras.utils.set_random_seed(0)
    model = build_mobilenet(4, (32, 32, 3), alpha=0.25)
    x = raw_images(8, 32)
    restored = keras_round_trip(model)
    assert isinstance(restored.get_layer("preprocess"), keras.layers.Rescaling)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
