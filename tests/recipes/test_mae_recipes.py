"""``mae`` pre-training and ``mae_classifier`` fine-tuning / linear probing; ``vit`` at another size."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import images
from tfmodels import registry
from tfmodels.config import ConfigError, resolve
from tfmodels.export import verify_export
from tfmodels.models.mae import MaskedAutoencoder


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mae")
    return tfmodels.train("mae", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def _encoder_weights(model, names):
    return {name: [w.numpy() for w in model.get_layer(name).weights] for name in names}


ENCODER = ["patch_projection", "position_embedding", "class_token", "encoder_block_0", "encoder_block_3", "encoder_norm"]


def test_mae_pretrains_beats_predicting_zeros_and_serves_encoder_features(mae_run):
    report = mae_run.metrics["report"]
    # One tiny epoch already reconstructs masked patches better than predicting 0 for them.
    assert report["test_masked_mse"] < report["baseline_predict_zero_mse"]
    picture = images.decode_image(tf.io.read_file(str(mae_run.run_dir / "reconstructions.png")), (None, None), channels=3)
    assert picture.shape[0] > 3 * 32 * 4 - 1  # three rows of 4x-scaled 32² digits
    assert verify_export(mae_run.export_path)["requests_replayed"] == 2
    served = tf.saved_model.load(str(mae_run.export_path)).signatures["predict_pixels"]
    pixels = tf.random.stateless_uniform([2, 32, 32, 3], [1, 2], 0, 255)
    model = keras.saving.load_model(mae_run.run_dir / "model.keras")
    np.testing.assert_allclose(served(pixels=pixels)["features"], model.encode(pixels)[:, 0], rtol=1e-4, atol=1e-4)


def test_classifier_takes_the_pretrained_encoder_with_masking_off(mae_run):
    recipe = registry.get("mae_classifier")
    cfg = resolve(recipe.config, "tiny", {"pretrained": str(mae_run.run_dir)})
    net = recipe.model(cfg)
    source = mae_run.model
    assert isinstance(source, MaskedAutoencoder)
    for name, values in _encoder_weights(source, ENCODER).items():
        for a, b in zip(values, _encoder_weights(net, [name])[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert not any("mask" in layer.name or "decoder" in layer.name for layer in net.layers)
    assert len(net.trainable_weights) == len(net.weights)  # fine-tuning trains everything
    pixels = tf.random.stateless_uniform([2, 32, 32, 3], [3, 4], 0, 255)
    np.testing.assert_allclose(net(pixels), net(pixels))  # deterministic: no masking at inference


@pytest.mark.slow  # a second mae_classifier run; the fast suite builds the classifier from the mae run
def test_linear_probe_trains_only_the_head_and_exports(mae_run, tmp_path):
    result = tfmodels.train(
        "mae_classifier", preset="tiny", overrides={"pretrained": str(mae_run.run_dir), "linear_probe": True},
        runs_root=tmp_path / "runs", export_root=tmp_path / "saved_models",
    )
    for name, values in _encoder_weights(mae_run.model, ENCODER).items():
        for a, b in zip(values, _encoder_weights(result.model, [name])[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert result.metrics["test"]["accuracy"] > 0.1  # above chance on 10 digits
    assert verify_export(result.export_path)["requests_replayed"] == 2


def test_classifier_without_a_pretraining_run_names_the_command(tmp_path):
    with pytest.raises(ConfigError, match="make train MODEL=mae"):
        tfmodels.train("mae_classifier", preset="tiny", runs_root=tmp_path, export_root=None)
    with pytest.raises(ConfigError, match="weights, init_from"):
        resolve(registry.get("mae_classifier").config, "tiny", {"pretrained": "x", "freeze_epochs": 1})


@pytest.mark.slow
def test_vit_trained_at_32_fine_tunes_and_serves_at_48(tmp_path):
    """The position grid learnt at 8x8 patches is interpolated to 12x12 in the graph."""
    common = dict(preset="tiny", runs_root=tmp_path / "runs", export_root=tmp_path / "saved_models")
    first = tfmodels.train("vit", **common)
    second = tfmodels.train("vit", overrides={"image_size": 48, "init_from": str(first.run_dir)}, **common)
    assert second.metrics["transfer"]["backbone_layers_copied"] == 3 + 4 + 1  # projection, positions, token; 4 blocks; norm
    # The 48² model keeps the 8x8 table of the 32² one (resized in the graph, not re-learnt).
    assert tuple(second.model.get_layer("position_embedding").weights[0].shape) == (8, 8, 64)
    assert second.model.input_shape == (None, 48, 48, 3)
    assert verify_export(second.export_path)["requests_replayed"] == 2
