"""keras-hub ViT → ours (issue 15 item 1): same outputs with random weights, pixel mapping, preset path."""

import keras
import keras_hub
import numpy as np
import pytest

from tfmodels.layers.preprocessing import IMAGENET_RGB_MEAN, IMAGENET_RGB_STD
from tfmodels.models import vit
from tfmodels.models.vit_keras_hub import from_keras_hub, from_keras_hub_preset

SIZES = dict(patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)


def _hub_backbone(size=32, **kwargs):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(image_shape=(size, size, 3), **{**SIZES, **kwargs})
    # random values everywhere: keras-hub's unit LayerNorms and zero biases would hide a misplaced weight
    rng = np.random.default_rng(0)
    for weight in backbone.weights:
        weight.assign(rng.normal(0, 0.2, weight.shape) + (1.0 if weight.name == "gamma" else 0.0))
    return backbone


def _hub_classifier(backbone, scale=1 / 127.5, offset=-1.0, **kwargs):
    converter = keras_hub.layers.ViTImageConverter(image_size=backbone.image_shape[:2], scale=scale, offset=offset)
    preprocessor = keras_hub.models.ViTImageClassifierPreprocessor(image_converter=converter)
    classifier = keras_hub.models.ViTImageClassifier(backbone, num_classes=5, preprocessor=preprocessor, **kwargs)
    head = classifier.output_dense
    head.kernel.assign(np.random.default_rng(1).normal(0, 0.5, head.kernel.shape))
    head.bias.assign(np.random.default_rng(2).normal(0, 0.5, head.bias.shape))
    return classifier


def _pixels(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


def test_backbone_sequence_equals_keras_hub_on_the_same_normalised_images():
    hub = _hub_backbone()
    ours = from_keras_hub(hub, input_shape=(32, 32, 3), normalization=None)
    images = _pixels() / 127.5 - 1
    expected = keras.ops.convert_to_numpy(hub(images))
    assert ours.output_shape == (None, 65, 16)
    np.testing.assert_allclose(ours(images).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert ours.count_params() == hub.count_params()


def test_classifier_logits_equal_keras_hub_through_the_pixel_preprocessing():
    hub = _hub_classifier(_hub_backbone())
    ours = from_keras_hub(hub)
    pixels = _pixels()
    assert ours.get_layer("preprocess").get_config()["scale"] == pytest.approx(1 / 127.5)
    expected = hub.predict(pixels, verbose=0)  # keras-hub's preprocessor maps 0..255 to -1..1 first
    np.testing.assert_allclose(ours(pixels).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.1 and ours.count_params() == hub.count_params()


def test_imagenet_mean_and_std_become_the_torch_mapping():
    mean, std = np.array(IMAGENET_RGB_MEAN), np.array(IMAGENET_RGB_STD)
    hub = _hub_classifier(_hub_backbone(), scale=list(1 / (255 * std)), offset=list(-mean / std))
    ours = from_keras_hub(hub)
    np.testing.assert_allclose(ours(_pixels()).numpy(), hub.predict(_pixels(), verbose=0), rtol=1e-4, atol=1e-4)


def test_unknown_pixel_mapping_is_refused():
    with pytest.raises(ValueError, match="scale=0.5"):
        from_keras_hub(_hub_classifier(_hub_backbone(), scale=0.5, offset=0.0))


def test_backbone_without_class_token_converts_to_gap_pooling():
    hub = _hub_backbone(use_class_token=False)
    ours = from_keras_hub(hub, normalization=None)
    assert "class_token" not in [layer.name for layer in ours.layers]
    images = _pixels() / 127.5 - 1
    np.testing.assert_allclose(ours(images).numpy(), keras.ops.convert_to_numpy(hub(images)), rtol=1e-4, atol=1e-4)


def test_converted_model_runs_at_sizes_keras_hub_refuses():
    hub = _hub_backbone()
    ours = from_keras_hub(hub, normalization=None)
    with pytest.raises(Exception):
        hub(np.zeros((1, 48, 48, 3), "float32"))
    assert ours(np.zeros((1, 48, 48, 3), "float32")).shape == (1, 145, 16)  # 12x12 patches + class token


def test_architectures_ours_does_not_have_are_refused_before_any_copy():
    with pytest.raises(ValueError, match="has no head"):
        from_keras_hub(_hub_backbone(), include_top=True)
    with pytest.raises(ValueError, match="pooling='gap'"):
        from_keras_hub(_hub_classifier(_hub_backbone(), pooling="gap"))
    with pytest.raises(ValueError, match="without biases"):
        from_keras_hub(_hub_backbone(use_mha_bias=False))
    rectangular = keras_hub.models.ViTBackbone(image_shape=(32, 16, 3), **SIZES)
    with pytest.raises(ValueError, match="square"):
        from_keras_hub(rectangular)


def test_preset_path_from_a_saved_preset_folder(tmp_path):
    hub = _hub_classifier(_hub_backbone())
    hub.save_to_preset(str(tmp_path / "preset"))
    ours = from_keras_hub_preset(str(tmp_path / "preset"), input_shape=(None, None, 3))
    np.testing.assert_allclose(ours(_pixels()).numpy(), hub.predict(_pixels(), verbose=0), rtol=1e-4, atol=1e-4)
    headless = from_keras_hub_preset(str(tmp_path / "preset"), include_top=False)
    assert headless(_pixels()).shape == (2, 65, 16)


def test_vit_b16_imagenet_loads_keras_hubs_imagenet_preset(monkeypatch, tmp_path):
    # offline stand-in for the download: a small classifier saved as a preset answers the preset name
    hub = _hub_classifier(_hub_backbone())
    hub.save_to_preset(str(tmp_path / "preset"))
    requested = []
    load = keras_hub.models.ViTImageClassifier.from_preset

    def from_preset(preset, **kwargs):
        requested.append(preset)
        return load(str(tmp_path / "preset"), **kwargs)

    monkeypatch.setattr(keras_hub.models.ViTImageClassifier, "from_preset", from_preset)
    ours = vit.vit_b16(num_classes=1000, weights="imagenet")
    assert requested == ["vit_base_patch16_224_imagenet"] and ours.name == "vit_b16"
    np.testing.assert_allclose(ours(_pixels()).numpy(), hub.predict(_pixels(), verbose=0), rtol=1e-4, atol=1e-4)
