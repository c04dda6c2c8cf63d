"""mnist_mlp (notes-002 S17), mnist_cnn (S19) and lenet5 (notes-001 §10)."""

import keras
import numpy as np
import pytest

import tfmodels
from tfmodels.recipes.mnist import PIXEL_RESCALE

# Closed-form counts: S17 784·512+512 + 512·256+256 + 256·128+128 + 128·64+64 + 64·10+10;
# S19 1·10·25+10 + 10·20·25+20 + 320·10+10; LeNet 6·25+6 + 6·16·25+16 + 400·120+120 + 120·84+84 + 84·10+10.
PARAMS = {"mnist_mlp": 575_050, "mnist_cnn": 8_490, "lenet5": 61_706}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count_and_output_shape(name):
    model = tfmodels.build(name)
    assert model.count_params() == PARAMS[name]
    assert model(np.zeros((3, 28, 28, 1), "float32")).shape == (3, 10)


def test_mnist_cnn_feature_map_sizes_match_the_notes():
    model = tfmodels.build("mnist_cnn")
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes["conv1"] == (24, 24, 10) and shapes["pool1"] == (12, 12, 10)
    assert shapes["conv2"] == (8, 8, 20) and shapes["pool2"] == (4, 4, 20)
    assert shapes["flatten"] == (320,)


def test_pixels_are_normalised_with_the_notes_mnist_statistics():
    scale, offset = PIXEL_RESCALE
    np.testing.assert_allclose([255 * scale + offset, offset], [2.8215, -0.4242], atol=1e-4)  # notes S16


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_one_tiny_batch_overfits_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 28, 28, 1)).astype("float32")
    y = np.arange(16) % 10
    model = tfmodels.build(name, activation="relu")
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=60, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < 0.25 * history[0]
    path = tmp_path / f"{name}.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
