"""Network in Network (notes-001 §13, notes-003-004 C2): NiN blocks and a global-average-pooling head."""

import keras
import numpy as np
import pytest

from tfmodels.models.nin import build_nin

TINY = dict(width_divisor=8, stem_kernel=3, stem_stride=1)


def closed_form_count(num_classes, widths=(96, 256, 384), kernels=(11, 5, 3)):
    """Each block: (k²·C_in + 1)·C + 2·(C² + C); the class block has C = num_classes and k = 3."""
    total, c_in = 0, 3
    for c, k in zip(widths + (num_classes,), kernels + (3,)):
        total += (k * k * c_in + 1) * c + 2 * (c * c + c)
        c_in = c
    return total


def raw_images(n, side, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype("float32")


@pytest.mark.parametrize("num_classes, expected", [(1000, 7_439_608), (10, 2_015_398)])
def test_parameter_count_at_224(num_classes, expected):
    assert closed_form_count(num_classes) == expected
    assert build_nin(num_classes).count_params() == expected


def test_no_dense_layers_and_the_logits_are_the_averaged_class_maps():
    model = build_nin(10, (None, None, 3), **TINY)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in model.layers)
    class_maps = keras.Model(model.input, model.get_layer("classes_mlp2").output)
    for side in (32, 48):  # GAP makes the head independent of the input size
        x = raw_images(2, side)
        maps = class_maps(x)
        assert maps.shape[-1] == 10
        np.testing.assert_allclose(model(x), np.mean(maps, axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_one_by_one_convolution_is_a_dense_layer_applied_at_every_pixel():
    model = build_nin(10, (32, 32, 3), **TINY)
    mlp = model.get_layer("block2_mlp1")
    features = np.random.default_rng(1).normal(size=(2, 5, 5, mlp.kernel.shape[2])).astype("float32")
    dense = keras.layers.Dense(mlp.filters, activation="relu")
    dense.build((None, mlp.kernel.shape[2]))
    dense.set_weights([mlp.kernel.numpy()[0, 0], mlp.bias.numpy()])
    per_pixel = dense(features.reshape(-1, features.shape[-1])).numpy().reshape(2, 5, 5, -1)
    np.testing.assert_allclose(mlp(features), per_pixel, rtol=1e-5, atol=1e-6)


def test_include_top_false_returns_the_third_block_feature_map():
    model = build_nin(input_shape=(224, 224, 3), include_top=False)
    assert model.output.shape[1:] == (5, 5, 384)


def test_there_are_no_pretrained_weights():
    with pytest.raises(ValueError, match="weights must be None"):
        build_nin(weights="imagenet")


def test_tiny_nin_overfits_one_batch_and_round_trips(train_on_one_batch, keras_round_trip):
    keras.utils.set_random_seed(0)
    x, y = raw_images(8, 32), np.arange(8) % 4
    # 10 class maps, 4 of them used: a 4-wide class block's ReLU MLP can die and pin a logit at 0.
    model = build_nin(10, (32, 32, 3), dropout=0.0, **TINY)
    initial, final = train_on_one_batch(model, x, y, 3e-3, 60)
    assert final < 0.25 * initial
    np.testing.assert_allclose(keras_round_trip(model)(x), model(x), atol=1e-6)
