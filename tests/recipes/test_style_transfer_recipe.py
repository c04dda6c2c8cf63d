"""style_transfer recipe (notes-002-part2 §19): the tiny run through the trainer, its pictures, assets, report and export."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_sample_image

import tfmodels
from pipelines.sources import DataSourceError
from tfmodels.config import resolve
from tfmodels.recipes import style_transfer as recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("style_transfer")
    return tfmodels.train("style_transfer", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def decoded(path):
    return tf.io.decode_png(path.read_bytes(), channels=3).numpy()


def test_presets_carry_d2ls_settings():
    # [REF d2l] §19: Adam 0.3, 500 epochs with StepLR(50, 0.8), 300×450, weights 1 / 1e3 / 10, pretrained VGG-19.
    paper = resolve(recipe.StyleTransferConfig, "paper")
    assert (paper.image_height, paper.image_width, paper.weights, paper.optimizer, paper.learning_rate) == (300, 450, "imagenet", "adam", 0.3)
    assert paper.epochs * paper.repeats_per_epoch == 500 and paper.batch_size == 1
    assert (paper.lr_schedule, paper.lr_step_epochs * paper.repeats_per_epoch, paper.lr_gamma) == ("step", 50, 0.8)
    assert (paper.content_weight, paper.style_weight, paper.tv_weight) == (1.0, 1e3, 10.0)
    default, tiny = (resolve(recipe.StyleTransferConfig, p) for p in ("default", "tiny"))
    assert default.weights == tiny.weights == "none"  # offline: no download unless asked
    # Random features get heavier style and lighter TV weights (the recipe's docstring says why).
    assert (default.content_weight, default.style_weight, default.tv_weight) == (1.0, 1e5, 1.0)
    assert (tiny.image_height, tiny.image_width, tiny.epochs * tiny.repeats_per_epoch, tiny.learning_rate) == (32, 48, 20, 0.05)


def test_the_tiny_run_writes_the_pictures_and_lowers_the_loss(run):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = run.metrics["report"]
    assert report["start"]["content_loss"] == 0.0  # step 0: the image is the content image
    assert report["final"]["loss"] < report["start"]["loss"]
    assert report["final"]["content_loss"] > 0
    assert "not pretrained" in report["features"]
    assert decoded(run.run_dir / "stylized.png").shape == (32, 48, 3)
    assert (run.run_dir / "style_transfer.png").read_bytes().startswith(b"\x89PNG")
    # The evaluated test losses are the final image's.
    assert run.metrics["test"]["loss"] == pytest.approx(report["final"]["loss"], rel=1e-5)


def test_the_run_holds_the_resized_images_it_used(run):
    for key, name in (("content", "china.jpg"), ("style", "flower.jpg")):
        expected = tf.image.resize(load_sample_image(name), (32, 48), antialias=True).numpy()
        saved = decoded(run.run_dir / "assets" / f"{key}.png").astype(np.float32)
        np.testing.assert_allclose(saved, expected, atol=0.5 + 1e-3, err_msg=key)  # rounded to 8 bits


def test_export_verifies_and_scores_images_like_the_model(run):
    assert tfmodels.verify_export(run.export_path)["requests_replayed"] == 1
    score = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    content = (run.run_dir / "assets" / "content.png").read_bytes()
    stylized = (run.run_dir / "stylized.png").read_bytes()
    served = score(image_bytes=tf.constant([content, stylized]))
    assert float(served["content_loss"][0]) == pytest.approx(0.0, abs=1e-6)  # the content image, served
    pixels = np.stack([decoded(run.run_dir / "assets" / "content.png"), decoded(run.run_dir / "stylized.png")]).astype(np.float32)
    for key, value in run.model(pixels).items():
        np.testing.assert_allclose(served[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty string"):
        score(image_bytes=tf.constant([b""]))


def test_bad_images_fail_with_the_reason(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not an image")
    cases = {
        "content": (str(tmp_path / "missing.jpg"), "no such image file"),
        "style": (str(corrupt), "not a readable image"),
    }
    for key, (value, message) in cases.items():
        with pytest.raises(DataSourceError, match=message):
            recipe.datasets(resolve(recipe.StyleTransferConfig, "tiny", [f"{key}={value}"]))
    with pytest.raises(DataSourceError, match="sklearn:china.jpg, sklearn:flower.jpg"):
        recipe.datasets(resolve(recipe.StyleTransferConfig, "tiny", ["content=sklearn:dog.jpg"]))


def test_user_files_are_the_images_and_random_features_are_announced(tmp_path, capsys):
    ramp = np.broadcast_to(np.arange(48, dtype=np.uint8)[None, :, None] * 5, (32, 48, 3))
    paths = {}
    for key, pixels in (("content", ramp), ("style", 255 - ramp)):
        paths[key] = tmp_path / f"{key}.png"
        paths[key].write_bytes(tf.io.encode_png(pixels).numpy())
    cfg = resolve(recipe.StyleTransferConfig, "tiny", [f"{k}={p}" for k, p in paths.items()])
    content, style = recipe.run_images(cfg)  # already 32×48: unchanged
    np.testing.assert_array_equal(content, ramp)
    np.testing.assert_array_equal(style, 255 - ramp)
    net = recipe.model(cfg)
    assert "random-feature style transfer" in capsys.readouterr().out
    np.testing.assert_allclose(net.stylized_pixels().numpy(), ramp, atol=1e-3)


@pytest.mark.slow
def test_a_copied_run_with_its_user_images_gone_exports_alike(tmp_path, export_copied_run):
    photo = tf.image.resize(load_sample_image("flower.jpg"), (40, 60)).numpy()
    paths = {key: tmp_path / f"{key}.png" for key in ("content", "style")}
    paths["content"].write_bytes(tf.io.encode_png(photo.astype(np.uint8)).numpy())
    paths["style"].write_bytes(tf.io.encode_png(photo[::-1].astype(np.uint8)).numpy())
    result = tfmodels.train("style_transfer", preset="tiny", overrides=[f"{k}={p}" for k, p in paths.items()],
                            runs_root=tmp_path / "runs", export_root=tmp_path / "saved_models")
    export_copied_run(result, *paths.values())
