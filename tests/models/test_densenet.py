"""DenseNet-121/169 and the tiny DenseNet (notes-002-part1 S32, notes-001 §17)."""

import keras
import numpy as np
import pytest

from tfmodels.models import densenet
from tfmodels.models.keras_applications import copy_weights

# keras.applications' counts at 224x224x3 and 1000 classes (BN moving statistics included).
COUNTS = {"densenet121": 8_062_504, "densenet169": 14_307_880}
TINY = {"num_classes": 10, "input_shape": (32, 32, 3), "blocks": (2, 2, 2, 2), "growth_rate": 8}


def _raw_pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


@pytest.mark.parametrize("name", ["densenet121", pytest.param("densenet169", marks=pytest.mark.slow)])
def test_parameter_count_and_depth(name):
    model = getattr(densenet, f"build_{name}")()
    assert model.count_params() == COUNTS[name]
    assert model.name == name  # the depth counts the stem conv, every dense-layer conv, transitions, FC
    weight_layers = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(weight_layers) == int(name.removeprefix("densenet"))


@pytest.mark.parametrize(
    "name, application",
    [
        ("densenet121", keras.applications.DenseNet121),
        pytest.param("densenet169", keras.applications.DenseNet169, marks=pytest.mark.slow),
    ],
)
def test_matches_keras_applications_with_copied_weights(name, application, randomize_batch_norm):
    keras.utils.set_random_seed(0)
    reference = application(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    randomize_batch_norm(reference, np.random.default_rng(1))
    ours = getattr(densenet, f"build_{name}")(input_shape=(64, 64, 3))
    copy_weights(reference, ours)
    raw = _raw_pixels((2, 64, 64, 3))
    expected = reference(keras.applications.densenet.preprocess_input(raw.copy())).numpy()
    np.testing.assert_allclose(ours(raw).numpy(), expected, atol=1e-4)
    assert ours.layers[1].name == "preprocess"


def test_dense_block_and_transition_channel_arithmetic():
    """S32 test: 3 channels + 2 layers of growth 10 → 23 channels, H and W kept; a transition halves all."""
    inputs = keras.Input((8, 8, 3))
    block = densenet.dense_block(inputs, num_layers=2, growth_rate=10, name="b")
    assert block.shape == (None, 8, 8, 23)
    inputs = keras.Input((8, 8, 24))
    assert densenet.transition(inputs, name="t").shape == (None, 4, 4, 12)


def test_dense_layer_passes_its_input_through_unchanged():
    """Concatenation, not addition: the first C output channels are the input itself."""
    inputs = keras.Input((4, 4, 5))
    model = keras.Model(inputs, densenet.dense_layer(inputs, growth_rate=3, name="d"))
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 5)).astype("float32")
    out = model(x).numpy()
    assert out.shape == (2, 4, 4, 8)
    np.testing.assert_array_equal(out[..., :5], x)


def test_tiny_densenet_shapes():
    model = densenet.build_densenet(**TINY)
    # stem 2k = 16 channels; each dense block adds 2·8 = 16, each transition halves: 32 → 16 → 32 → 16 ...
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["pool1"] == (8, 8, 16) and shapes["conv2_block2_concat"] == (8, 8, 32)
    assert shapes["pool2_pool"] == (4, 4, 16) and shapes["conv5_block2_concat"] == (1, 1, 32)
    assert model(_raw_pixels((3, 32, 32, 3))).shape == (3, 10)
    features = densenet.build_densenet(**{**TINY, "include_top": False})
    assert features.output.shape == (None, 1, 1, 32)


def test_torch_preprocessing_equals_keras_applications():
    model = densenet.build_densenet(**TINY)
    preprocess = keras.Model(model.input, model.get_layer("preprocess_normalize").output)
    raw = _raw_pixels((2, 32, 32, 3))
    expected = keras.applications.densenet.preprocess_input(raw.copy())
    np.testing.assert_allclose(preprocess(raw).numpy(), expected, atol=1e-5)


def test_weights_argument_errors():
    with pytest.raises(ValueError, match="growth_rate=32"):
        densenet.build_densenet(**TINY, weights="imagenet")
    with pytest.raises(ValueError, match="None or 'imagenet'"):
        densenet.build_densenet121(weights="densenet121.h5")


def test_tiny_densenet_round_trips_through_keras_file(keras_round_trip):
    keras.utils.set_random_seed(0)
    model, x = densenet.build_densenet(**TINY), _raw_pixels((4, 32, 32, 3))
    np.testing.assert_allclose(keras_round_trip(model).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.slow  # tracing the training step takes 20-40 s on a busy 2-core machine
def test_one_tiny_batch_overfits_and_round_trips(keras_round_trip):
    keras.utils.set_random_seed(0)
    x, y = _raw_pixels((8, 32, 32, 3)), np.arange(8) % 10
    model = densenet.build_densenet(**TINY)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(x, y, epochs=40, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < 0.25 * losses[0]
    np.testing.assert_allclose(keras_round_trip(model).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
