"""Every segmenter trains at ``tiny``, reports, draws its picture and exports a verified SavedModel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels

FAST = ["unet"]  # one end-to-end run in the fast suite (the cheapest); the shared layer is the same for all
SLOW = ["fcn", "deeplab_v1", "deeplab_v2", "deeplab_v3", "deeplab_v3_plus", "erfnet"]


def _check_tiny_run(name, tmp_path):
    result = tfmodels.train(name, preset="tiny", runs_root=tmp_path, export_root=tmp_path / "saved_models")
    history = np.genfromtxt(result.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = result.metrics["report"]
    assert 0 <= report["mean_iou"] <= 1 and 0 <= report["pixel_accuracy"] <= 1
    assert report["mean_iou"] == pytest.approx(result.metrics["test"]["mean_iou"], rel=1e-5)  # numpy = Keras metric
    assert report["majority_baseline"]["class"] == "background"
    assert (result.run_dir / "segmentation.png").stat().st_size > 0
    assert tfmodels.verify_export(result.export_path)["requests_replayed"] == 2
    pixels = tf.constant(np.round(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3))).astype("float32"))
    served = tf.saved_model.load(str(result.export_path)).signatures["predict_pixels"](pixels=pixels)
    logits = keras.saving.load_model(result.run_dir / "model.keras")(pixels)
    np.testing.assert_allclose(served["class_probabilities"].numpy(), tf.nn.softmax(logits).numpy(), atol=1e-5)
    assert served["class_map"].shape == (2, 64, 64)


@pytest.mark.parametrize("name", FAST)
def test_tiny_run_trains_reports_and_exports(name, tmp_path):
    _check_tiny_run(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_tiny_run_trains_reports_and_exports_slow(name, tmp_path):
    _check_tiny_run(name, tmp_path)


def _paper_model(name):
    from tfmodels import registry
    from tfmodels.config import resolve

    recipe = registry.get(name)
    return recipe.model(resolve(recipe.config, "paper"))


@pytest.mark.slow
def test_paper_fcn_is_keras_vgg16_without_top_plus_the_score_conv_and_the_bilinear_deconv():
    vgg16 = keras.applications.VGG16(include_top=False, weights=None).count_params()  # 14,714,688
    classes = 21  # Pascal VOC: background + 20
    assert _paper_model("fcn").count_params() == vgg16 + (512 + 1) * classes + 64 * 64 * classes * classes


@pytest.mark.slow
def test_paper_deeplab_v1_has_the_papers_20_5m_parameters_and_unet_the_original_layout():
    assert _paper_model("deeplab_v1").count_params() == 20_505_429  # DeepLab-LargeFOV, Chen et al. 2015 Table 2: 20.5M
    unet = _paper_model("unet")  # Oxford pets: 2 classes, as the paper's cell / background
    assert unet.output_shape[-1] == 2 and 31_000_000 < unet.count_params() < 31_100_000  # the paper's ~31.0M
