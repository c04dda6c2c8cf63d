"""The CNN zoo's recipes: registration, data wiring, aux heads, augmentation, export."""

import json
import shutil

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
from tfmodels.training.run_assets import saved_test_split
from tfmodels.training.run_folder import RunFolder
from tfmodels.training.trainer import evaluate_run, run_config

NAMES = [arch.name for arch in ARCHITECTURES]


def test_every_cnn_and_vision_transformer_is_registered():
    expected = {"alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "nin", "googlenet", "inception_v3", "resnet18",
                "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet169", "mobilenet", "vgg16_transfer",
                "vit", "swin"}
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
    path = export_model(recipe, cfg, model, tmp_path, recipe.datasets(cfg).test)
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


def _write_pngs(folder, rng, colour, count=10):
    folder.mkdir(parents=True)
    for i in range(count):
        pixels = np.clip(rng.normal(colour, 40, (12, 12, 3)), 0, 255).astype("uint8")
        (folder / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())


def _served(export_path, pixels):
    signatures = tf.saved_model.load(str(export_path)).signatures
    encoded = tf.constant([tf.io.encode_png(p.astype("uint8")).numpy() for p in pixels])
    return {
        "pixels": signatures["predict_pixels"](pixels=tf.constant(pixels)),
        "bytes": signatures["serving_default"](image_bytes=encoded),
    }


@pytest.mark.slow  # test_run_stages keeps a copied-run test in the fast suite
def test_a_copied_folder_run_exports_and_evaluates_without_its_source(tmp_path):
    """The run folder alone serves: class names and the test split come from it, never from the images."""
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    for name, colour in [("blue", (30, 60, 200)), ("green", (40, 190, 60)), ("red", (210, 40, 40))]:
        _write_pngs(photos / name, rng, colour)
    result = tfmodels.train("mobilenet", preset="tiny", data=f"folder:{photos}", runs_root=tmp_path / "runs", export_root=tmp_path / "exports")
    assert json.loads((result.run_dir / "assets" / "class_names.json").read_text()) == ["blue", "green", "red"]

    copied = tmp_path / "elsewhere" / "run"
    shutil.copytree(result.run_dir, copied)
    shutil.rmtree(photos)  # the source is gone
    export = tfmodels.export(copied, tmp_path / "copied_exports")
    assert verify_export(export)["requests_replayed"] == 2
    expected = [json.loads((path / "assets.extra" / "expected_outputs.json").read_text()) for path in (result.export_path, export)]
    assert expected[0] == expected[1]
    pixels = np.round(next(iter(saved_test_split(copied).map(lambda x, y: x).batch(3))).numpy())
    original, again = _served(result.export_path, pixels), _served(export, pixels)
    for signature in ("pixels", "bytes"):
        np.testing.assert_allclose(again[signature]["probabilities"], original[signature]["probabilities"], atol=1e-6)
        np.testing.assert_array_equal(again[signature]["class_name"], original[signature]["class_name"])
    assert evaluate_run(copied)["test"] == pytest.approx(result.metrics["test"], rel=1e-6)

    # A different source: a new class that sorts first, two classes gone. The run's names keep the ids.
    _write_pngs(photos / "amber", rng, (250, 190, 0), count=3)
    _write_pngs(photos / "red", rng, (210, 40, 40))
    recipe, cfg = registry.get("mobilenet"), run_config(RunFolder.open(copied))
    with pytest.warns(UserWarning, match="amber"):
        splits = recipe.datasets(cfg)
    labels = [int(np.argmax(y)) for split in (splits.train, splits.validation, splits.test) for _, y in split]
    assert splits.info["class_names"] == ["blue", "green", "red"] and set(labels) == {2}
    with pytest.warns(UserWarning, match="amber"):  # the 3-class model scores the changed folder's red images
        report = evaluate_run(copied, data=f"folder:{photos}")
    assert report["data"] == f"folder:{photos}" and set(report["test"]) == set(result.metrics["test"])
