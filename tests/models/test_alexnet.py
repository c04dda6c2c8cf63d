"""AlexNet (notes-003-004 B1, notes-001 §11): grouped convolutions, LRN, dropout."""

import keras
import numpy as np
import pytest

from tfmodels.layers.local_response_normalization import LocalResponseNormalization
from tfmodels.models.alexnet import build_alexnet

TINY = dict(width_divisor=8, fc_units=128, stem_kernel=3, stem_stride=1)


def closed_form_count(groups, num_classes=1000, flat=6 * 6 * 256):
    """Σ (k²·C_in/g + 1)·C_out over the convs (notes-003-004 A6), then the three FC layers."""
    convs = [(11, 3, 96, 1), (5, 96, 256, groups), (3, 256, 384, 1), (3, 384, 384, groups), (3, 384, 256, groups)]
    total = sum((k * k * c_in // g + 1) * c_out for k, c_in, c_out, g in convs)
    return total + (flat + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * num_classes


def raw_images(n, side, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, side, side, 3)).astype("float32")


@pytest.mark.parametrize("groups, published", [(2, 60_965_224), (1, 62_378_344)])
def test_parameter_count_at_227(groups, published):
    assert closed_form_count(groups) == published
    model = build_alexnet(groups=groups)
    assert model.count_params() == published
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)


def test_224_input_gives_5x5_maps_which_is_why_the_default_is_227():
    assert build_alexnet(input_shape=(224, 224, 3), include_top=False).output.shape[1:] == (5, 5, 256)


def test_layers_follow_the_paper():
    model = build_alexnet(10, (32, 32, 3), **TINY)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert (len(convs), len(dense)) == (5, 3)  # seed 001 L471: 5 conv + 2 FC hidden + 1 FC output
    assert [layer.groups for layer in convs] == [1, 2, 1, 2, 2]  # conv3 reads both GPUs' maps
    assert model.get_layer("conv2").kernel.shape == (5, 5, 12 // 2, 32)
    assert all(layer.activation is keras.activations.relu for layer in convs + dense[:2])
    assert [type(model.layers[i]).__name__ for i in (3, 4)] == ["LocalResponseNormalization", "MaxPooling2D"]
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in build_alexnet(lrn=False, **TINY).layers)


def test_lrn_matches_the_paper_formula():
    a = np.random.default_rng(0).normal(0, 30, (2, 3, 3, 7)).astype("float32")
    k, n, alpha, beta = 2.0, 5, 1e-4, 0.75
    squares = np.pad(a.astype("float64") ** 2, [(0, 0)] * 3 + [(n // 2, n // 2)])
    window_sums = sum(squares[..., j : j + a.shape[-1]] for j in range(n))
    expected = a / (k + alpha * window_sums) ** beta
    layer = LocalResponseNormalization()
    np.testing.assert_allclose(layer(a), expected, rtol=1e-5)
    assert layer.weights == []
    assert LocalResponseNormalization.from_config(layer.get_config()).get_config() == layer.get_config()


def test_preprocess_layer_is_imagenet_mean_std_standardization():
    raw = raw_images(2, 8)
    expected = keras.applications.imagenet_utils.preprocess_input(raw.copy(), mode="torch")
    model = build_alexnet(10, (32, 32, 3), **TINY)
    np.testing.assert_allclose(model.get_layer("preprocess")(raw), expected, atol=1e-5)


def test_dropout_acts_only_in_training():
    model = build_alexnet(10, (32, 32, 3), **TINY)
    x = raw_images(2, 32)
    assert not np.allclose(model(x, training=True), model(x, training=True))
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))


def test_there_are_no_pretrained_weights():
    with pytest.raises(ValueError, match="weights must be None"):
        build_alexnet(weights="imagenet")


def test_tiny_alexnet_overfits_one_batch_and_round_trips(train_on_one_batch, keras_round_trip):
    keras.utils.set_random_seed(0)
    x, y = raw_images(8, 32), np.arange(8) % 4
    model = build_alexnet(4, (32, 32, 3), dropout=0.0, **TINY)
    initial, final = train_on_one_batch(model, x, y, 1e-3, 30)
    assert final < 0.1 * initial
    restored = keras_round_trip(model)
    assert isinstance(restored.get_layer("lrn1"), LocalResponseNormalization)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-6)
