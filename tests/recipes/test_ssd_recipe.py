"""The ``ssd`` recipe: SSD's coder (targets, hard-negative loss, decoding), training, export, serving."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines import images
from pipelines.detection.boxes import encode_offsets
from tfmodels import registry
from tfmodels.config import ConfigError, resolve
from tfmodels.metrics.coco_eval import coco_evaluate
from tfmodels.models import ssd
from tfmodels.recipes.ssd import SsdCoder, SsdConfig, anchor_shapes, model as build_model
from tfmodels.training.run_assets import saved_test_split

TINY_MAPS = [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)]


def test_coder_has_d2l_5444_anchors_at_256():
    coder = SsdCoder(256, TINY_MAPS, ssd.TINY_SSD_SIZES, [ssd.TINY_SSD_RATIOS] * 5)
    assert coder.anchors.shape == (5444, 4)


def log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))


def test_hard_negative_mining_keeps_the_three_hardest_negatives_per_positive():
    coder = SsdCoder(8, [(1, 2)], [(0.5,)], [(1.0,)])  # 2 anchors: the loss does not look at them
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 6, 3)).astype(np.float32)
    classes = np.array([[2, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 0]], np.int32)  # 1 and 2 positives
    offsets = np.zeros((2, 6, 4), np.float32)
    offsets[0, 0] = [0.5, -2.0, 0.0, 0.25]  # smooth L1: 0.125 + 1.5 + 0 + 0.03125
    offsets[1, 3] = [0.0, 0.0, 3.0, 0.0]  # 2.5
    offsets[1, 2] = [9.0, 9.0, 9.0, 9.0]  # a negative anchor: no box loss
    targets = {"class_targets": classes, "offset_targets": np.zeros_like(offsets), "offset_mask": np.broadcast_to((classes > 0)[..., None], offsets.shape).astype(np.float32)}
    parts = coder.loss(targets, {"class_logits": logits, "offsets": offsets})

    ce = -np.take_along_axis(log_softmax(logits), classes[..., None], -1)[..., 0]
    expected = 0.0
    for image, positives in ((0, 1), (1, 2)):
        negatives = np.sort(ce[image][classes[image] == 0])[::-1][: 3 * positives]  # all 4 negatives of image 1
        expected += ce[image][classes[image] > 0].sum() + negatives.sum()
    assert float(parts["class_loss"]) == pytest.approx(expected / 3, rel=1e-5)
    huber = keras.losses.Huber(delta=1.0, reduction="sum")(targets["offset_targets"] * targets["offset_mask"], offsets * targets["offset_mask"])
    assert float(parts["box_loss"]) == pytest.approx(float(huber) * 4 / 3, rel=1e-5)  # Keras averages over the 4 coordinates
    assert float(parts["box_loss"]) == pytest.approx((0.125 + 1.5 + 0.03125 + 2.5) / 3, rel=1e-6)

    l1 = SsdCoder(8, [(1, 2)], [(0.5,)], [(1.0,)], box_loss="l1").loss(targets, {"class_logits": logits, "offsets": offsets})
    assert float(l1["box_loss"]) == pytest.approx((0.5 + 2.0 + 0.25 + 3.0) / 3, rel=1e-6)


def test_perfect_outputs_decode_to_the_ground_truth_with_pycocotools_map_1():
    coder = SsdCoder(64, [(8, 8), (4, 4)], [(0.2, 0.3), (0.5, 0.7)], [(1.0, 2.0, 0.5)] * 2)
    gt = {
        "boxes": tf.constant([[[4.0, 6.0, 17.0, 20.0], [30.0, 28.0, 60.0, 62.0], [0, 0, 0, 0]],
                              [[20.0, 10.0, 30.0, 40.0], [0, 0, 0, 0], [0, 0, 0, 0]]]),
        "classes": tf.constant([[3, 0, -1], [1, -1, -1]]),
        "num_boxes": tf.constant([2, 1]),
    }
    targets = coder.encode(gt)
    positive = targets["class_targets"].numpy() > 0
    # Logits: 10 on the target class, 0 elsewhere; offsets: the targets themselves.
    logits = 10.0 * tf.one_hot(targets["class_targets"], 4 + 1)
    boxes, scores = coder.decode({"class_logits": logits, "offsets": targets["offset_targets"]})
    assigned = targets_assigned(coder, gt)
    expected = np.take_along_axis(gt["boxes"].numpy(), np.maximum(assigned, 0)[..., None], 1)
    np.testing.assert_allclose(boxes.numpy()[positive], expected[positive], atol=1e-3)
    assert scores.shape == (2, coder.anchors.shape[0], 4)  # background column dropped
    from pipelines.detection.nms import multiclass_non_max_suppression

    detections = {k: v.numpy() for k, v in multiclass_non_max_suppression(boxes, scores, 10, score_threshold=0.5).items()}
    metrics = coco_evaluate({k: v.numpy() for k, v in gt.items()}, detections, [str(c) for c in range(4)])
    assert metrics.map == pytest.approx(1.0)


def targets_assigned(coder, gt):
    from pipelines.detection.assignment import multibox_targets

    return multibox_targets(coder.anchors, gt["boxes"], gt["classes"], gt["num_boxes"])["assigned_box"].numpy()


def test_offsets_are_d2ls():
    coder = SsdCoder(64, [(2, 2)], [(0.5,)], [(1.0,)])
    gt = {"boxes": tf.constant([[[1.0, 0.0, 33.0, 32.0]]]), "classes": tf.constant([[0]]), "num_boxes": tf.constant([1])}
    targets = coder.encode(gt)
    # Anchor 0 is [0, 0, 32, 32]: the box is 1 px right: dx = 1 / 32 / 0.1.
    np.testing.assert_allclose(targets["offset_targets"][0, 0], encode_offsets(coder.anchors[0], gt["boxes"][0, 0]), atol=1e-6)
    np.testing.assert_allclose(targets["offset_targets"][0, 0], [1 / 32 / 0.1, 0, 0, 0], atol=1e-6)


def tiny_cfg(**overrides):
    return resolve(SsdConfig, "tiny", overrides)


def test_one_batch_is_learnt_loss_falls():
    cfg = tiny_cfg(num_scenes=(8, 1, 1))
    keras.utils.set_random_seed(0)
    detector = build_model(cfg)
    batch = next(iter(registry.get("ssd").datasets(cfg).train.batch(8)))
    detector.compile(optimizer=keras.optimizers.Adam(3e-3))
    # One step per "epoch": the logged means are the losses of single steps.
    history = detector.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1, epochs=30, shuffle=False, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    assert history["box_loss"][-1] < history["box_loss"][0] and history["class_loss"][-1] < history["class_loss"][0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssd_run")
    return tfmodels.train("ssd", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def test_tiny_trains_reports_and_exports_a_verified_model(tiny_run):
    metrics = tiny_run.metrics
    assert {"loss", "class_loss", "box_loss", "map"} <= set(metrics["test"])
    assert {"loss", "map"} <= set(metrics["validation"])  # val_map is monitored
    report = metrics["report"]
    assert {"coco_map", "coco_map_50", "coco_map_75", "per_class_ap"} <= set(report)
    assert (tiny_run.run_dir / "detections.png").stat().st_size > 0
    assert json.loads((tiny_run.run_dir / "assets" / "class_names.json").read_text()) == [str(d) for d in range(10)]
    verified = tfmodels.verify_export(tiny_run.export_path)
    assert set(verified["signatures"]) == {"serving_default", "predict_pixels"} and verified["requests_replayed"] == 2


def test_serving_equals_the_evaluation_path_of_the_reloaded_model(tiny_run):
    cfg = tiny_cfg()
    pixels = np.stack([image.numpy() for image, _ in saved_test_split(tiny_run.run_dir).take(3)])
    pixels = np.round(pixels).astype(np.float32)  # what a PNG holds
    reloaded = keras.saving.load_model(tiny_run.run_dir / "model.keras")
    evaluation = {k: v.numpy() for k, v in reloaded.detect(tf.constant(pixels)).items()}
    served = tf.saved_model.load(str(tiny_run.export_path)).signatures["serving_default"](
        image_bytes=tf.constant([images.encode_png(p).numpy() for p in pixels])
    )
    assert served["detection_boxes"].shape == (3, cfg.max_detections, 4)
    for key, value in evaluation.items():
        np.testing.assert_allclose(served[key].numpy(), value, atol=1e-4, rtol=1e-4, err_msg=key)


def test_model_keras_loads_in_a_fresh_process_after_a_plain_import_tfmodels(tiny_run):
    # The Detector and its coder live in recipe modules: `import tfmodels` must register them.
    load = "import sys, keras, tfmodels; print(type(keras.saving.load_model(sys.argv[1])).__name__)"
    done = subprocess.run([sys.executable, "-c", load, str(tiny_run.run_dir / "model.keras")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Detector"]


def test_config_checks_anchor_sizes_and_paper_preset_is_ssd300():
    with pytest.raises(ConfigError, match="two sizes per scale"):
        tiny_cfg(anchor_sizes=(0.1, 0.2, 0.3))
    paper = resolve(SsdConfig, "paper")
    assert (paper.architecture, paper.image_size, paper.data, paper.negative_ratio) == ("ssd300", 300, "tfds:voc/2007", 3.0)
    sizes, ratios = anchor_shapes(paper)
    assert ssd.anchors_per_pixel(sizes, ratios) == (4, 6, 6, 6, 4, 4)


@pytest.mark.slow
def test_paper_model_is_ssd300_with_8732_anchors(tmp_path):
    voc = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
           "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "class_names.json").write_text(json.dumps(voc))
    cfg = resolve(SsdConfig, "paper")
    cfg.run_dir = str(tmp_path)
    detector = build_model(cfg)
    assert detector.network.count_params() == 26_285_486
    assert detector.coder.anchors.shape == (8732, 4)
