"""The CNN zoo's recipes: registration, data wiring, aux heads, augmentation, export."""

import json
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels import registry
from tfmodels.config import ConfigError, resolve
from tfmodels.export import export_model, verify_export
from tfmodels.models import googlenet, vgg
from tfmodels.models.backbone import backbone_layers
from tfmodels.recipes.image_classifiers import ARCHITECTURES

NAMES = [arch.name for arch in ARCHITECTURES]


def test_every_cnn_of_the_issue_is_registered():
    expected = {"alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "nin", "googlenet", "inception_v3", "resnet18",
                "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet169", "mobilenet", "vgg16_transfer"}
    assert expected == set(NAMES) and expected <= set(tfmodels.list_models())
    assert "resnet_mnist" in tfmodels.list_models()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet", "vgg11", "densenet121"])
def test_tiny_variant_builds_for_the_embedded_digits(name):
    model = tfmodels.build(name, preset="tiny")
    assert model.input_shape == (None, 32, 32, 3)
    assert model(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 10)  # 10 digit classes, logits
    assert model.count_params() < tfmodels.build(name, preset="default").count_params()


def test_datasets_give_one_hot_labels_at_the_configured_size():
    recipe = registry.get("resnet18")
    splits = recipe.datasets(resolve(recipe.config, "tiny", {"image_size": 40}))
    x, y = next(iter(splits.train.batch(4)))
    assert x.shape == (4, 40, 40, 3) and y.shape == (4, 10)
    np.testing.assert_allclose(y.numpy().sum(-1), 1.0)


def test_googlenet_trains_aux_heads_with_weight_0_3_and_serves_without_them(tmp_path):
    recipe = registry.get("googlenet")
    cfg = resolve(recipe.config, "tiny", {"mixup": 0.2})
    args = recipe.compile_args(cfg)
    assert args["loss_weights"] == {"logits": 1.0, "aux1": 0.3, "aux2": 0.3}
    assert cfg.monitor == "val_logits_accuracy"
    transform = recipe.train_transform(cfg)
    y = tf.one_hot([0, 1, 2, 3], 10)
    size = cfg.image_size
    _, labels = transform(tf.zeros([4, size, size, 3]), {"logits": y, "aux1": y, "aux2": y})
    assert set(labels) == {"logits", "aux1", "aux2"}
    np.testing.assert_array_equal(labels["logits"].numpy(), labels["aux1"].numpy())

    model = recipe.model(cfg)
    path = export_model(recipe, cfg, model, tmp_path)
    loaded = tf.saved_model.load(str(path))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    served = loaded.signatures["predict_pixels"](pixels=tf.constant(pixels))["probabilities"].numpy()
    main = googlenet.inference_model(model).predict(pixels, verbose=0)
    np.testing.assert_allclose(served, tf.nn.softmax(main).numpy(), atol=1e-5)
    assert verify_export(path)["requests_replayed"] == 2


def test_imagenet_backbone_gets_a_new_head_for_other_class_counts(monkeypatch):
    """S22 online: keras.applications' ImageNet base under a new 10-class head (the download is faked)."""
    references = []

    def vgg16_without_download(weights, **kwargs):
        assert weights == "imagenet" and kwargs["include_top"] is False
        references.append(keras.applications.VGG16(weights=None, **kwargs))
        return references[-1]

    monkeypatch.setitem(vgg.IMAGENET_APPLICATIONS, 16, vgg16_without_download)
    recipe = registry.get("vgg16_transfer")
    model = recipe.model(resolve(recipe.config, "default", {"weights": "imagenet"}))
    assert model.output_shape == (None, 10)
    (reference,) = references
    for ours, theirs in zip(backbone_layers(model), backbone_layers(reference), strict=True):
        for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_imagenet_weights_are_refused_clearly_where_keras_applications_has_none():
    recipe = registry.get("resnet18")
    with pytest.raises(ValueError, match="(?i)imagenet"):
        recipe.model(resolve(recipe.config, "default", {"weights": "imagenet"}))


@pytest.mark.parametrize("override, message", [("variant=huge", "variant"), ("augment=autoaugment", "augment"), ("weights=coco", "weights")])
def test_bad_values_are_rejected_by_name(override, message):
    with pytest.raises(ConfigError, match=f"bad value for '{message}'"):
        resolve(registry.get("vgg16").config, "default", [override])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_architecture_trains_at_tiny_and_exports(name, tmp_path):
    result = tfmodels.train(name, preset="tiny", runs_root=tmp_path, export_root=tmp_path / "saved_models")
    history = (result.run_dir / "history.csv").read_text().splitlines()
    epochs = json.loads((result.run_dir / "config.json").read_text())["epochs"]  # vgg16_transfer: 2 phases
    assert len(history) == 1 + epochs
    # One epoch of a narrow deep net need not beat chance yet (learning itself is checked by each
    # model's overfit test); the run must finish with a finite loss and a verified export.
    assert np.isfinite(result.metrics["test"]["loss"])
    assert verify_export(result.export_path)["requests_replayed"] == 2


def test_resnet18_trains_at_tiny_with_augmentation(tmp_path):
    result = tfmodels.train(
        "resnet18", preset="tiny", overrides={"augment": "notes", "cutmix": 1.0},
        runs_root=tmp_path, export_root=None,
    )
    assert np.isfinite(result.metrics["test"]["loss"]) and result.metrics["test"]["accuracy"] > 0.1
