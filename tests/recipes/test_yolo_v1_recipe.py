"""``yolo_v1``: the YOLOv1 loss, decoding, and the recipe end to end (train tiny, export, serve)."""

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.recipes.yolo_v1 import YoloV1Coder, decode_yolo_v1, yolo_v1_loss


def cell_grid(cells, s=2, b=2, c=2):
    """A ``[1, S, S, B·5 + C]`` grid with the given ``{(row, column): channels}``."""
    grid = np.zeros((1, s, s, b * 5 + c), np.float32)
    for (row, column), channels in cells.items():
        grid[0, row, column] = channels
    return tf.constant(grid)


# One object in cell (0, 0) of a 2×2 grid (image 1×1 in these units: cells of 0.5):
# centre (0.25, 0.25) -> x = y = 0.5 in the cell, w = h = 0.25 of the image, class 1 of 2.
TARGET = cell_grid({(0, 0): [0.5, 0.5, 0.25, 0.25, 1] * 2 + [0, 1]})


def test_perfect_predictions_cost_nothing():
    # Predictor 1 is exact (√w = 0.5, confidence = IoU = 1); predictor 0 is elsewhere with confidence 0.
    outputs = cell_grid({(0, 0): [0.1, 0.1, 0.2, 0.2, 0.0, 0.5, 0.5, 0.5, 0.5, 1.0, 0, 1]})
    parts = yolo_v1_loss(TARGET, outputs, boxes_per_cell=2)
    assert {name: float(value) for name, value in parts.items()} == {
        "coord_loss": 0.0, "object_loss": 0.0, "no_object_loss": 0.0, "class_loss": 0.0
    }


def test_hand_computed_loss_and_the_responsible_predictor():
    # Predictor 0: centre (0.6, 0.5) in the cell, w = h = 0.3² = 0.09 -> box [0.255, 0.205, 0.345, 0.295] vs
    # the target box [0.125, 0.125, 0.375, 0.375]: IoU = 0.09² / 0.25² = 0.1296.
    # Predictor 1: centre (0.5, 0.5), w = h = 0.4² = 0.16: inside the target, IoU = 0.16² / 0.25² = 0.4096
    # -> responsible.
    outputs = cell_grid({
        (0, 0): [0.6, 0.5, 0.3, 0.3, 0.7, 0.5, 0.5, 0.4, 0.4, 0.8, 0.2, 0.6],
        (1, 1): [0, 0, 0, 0, 0.3, 0, 0, 0, 0, -0.2, 0.9, 0.9],  # no object: only its confidences count
    })
    parts = {name: float(value) for name, value in yolo_v1_loss(TARGET, outputs, boxes_per_cell=2).items()}
    iou = 0.16**2 / 0.25**2
    expected = {
        "coord_loss": 5 * ((0.5 - 0.5) ** 2 * 2 + (0.4 - 0.5) ** 2 * 2),  # λcoord, √w: √0.25 = 0.5
        "object_loss": (0.8 - iou) ** 2,  # target confidence = IoU of the responsible predictor
        "no_object_loss": 0.5 * (0.7**2 + 0.3**2 + 0.2**2),  # λnoobj: predictor 0 and both of cell (1, 1)
        "class_loss": 0.2**2 + 0.4**2,  # only cells holding an object
    }
    assert parts == pytest.approx(expected, rel=1e-5)


def test_only_the_responsible_predictor_gets_coordinate_gradients():
    outputs = tf.Variable(cell_grid({(0, 0): [0.6, 0.5, 0.3, 0.3, 0.7, 0.5, 0.5, 0.4, 0.4, 0.8, 0.2, 0.6]}))
    with tf.GradientTape() as tape:
        coord = yolo_v1_loss(TARGET, outputs, boxes_per_cell=2)["coord_loss"]
    gradient = tape.gradient(coord, outputs).numpy()[0, 0, 0]
    assert not gradient[:5].any() and gradient[5:9].any()  # predictor 0 untouched, predictor 1 pulled
    np.testing.assert_allclose(gradient[7:9], 5 * 2 * (0.4 - 0.5), rtol=1e-5)


def test_the_loss_averages_images_of_a_batch():
    outputs = cell_grid({(0, 0): [0.6, 0.5, 0.3, 0.3, 0.7, 0.5, 0.5, 0.4, 0.4, 0.8, 0.2, 0.6]})
    single = yolo_v1_loss(TARGET, outputs, 2)
    batch = yolo_v1_loss(tf.concat([TARGET, tf.zeros_like(TARGET)], 0), tf.concat([outputs, tf.zeros_like(outputs)], 0), 2)
    for name in single:
        assert float(batch[name]) == pytest.approx(float(single[name]) / 2)


def test_decoding_scores_each_box_by_class_probability_times_confidence():
    outputs = cell_grid({(1, 0): [0.5, 0.25, 0.5, 0.25, 0.8, 0.0, 0.0, 0.1, 0.1, 1.5, 0.5, 0.25]})
    boxes, scores = decode_yolo_v1(outputs, image_size=(64, 128), boxes_per_cell=2)
    assert boxes.shape == (1, 2 * 2 * 2, 4) and scores.shape == (1, 8, 2)
    first = 2 * 2  # cell (1, 0), predictor 0: row-major cells, then predictors
    # Centre ((0 + 0.5) / 2 · 128, (1 + 0.25) / 2 · 64) = (32, 40); w = 0.25 · 128, h = 0.0625 · 64.
    np.testing.assert_allclose(boxes[0, first], [16, 38, 48, 42], rtol=1e-6)
    np.testing.assert_allclose(scores[0, first], [0.8 * 0.5, 0.8 * 0.25], rtol=1e-6)
    np.testing.assert_allclose(scores[0, first + 1], [0.5, 0.25], rtol=1e-6)  # confidence 1.5 clipped to 1
    np.testing.assert_allclose(boxes[0, first + 1], [0, 31.68, 0.64, 32.32], atol=1e-5)  # centre (0, 32), clipped at x = 0
    assert not scores.numpy()[0, np.r_[0:4, 6:8]].any()


def test_coder_round_trips_through_its_config():
    coder = YoloV1Coder((64, 64), grid_size=4, boxes_per_cell=2, num_classes=3, lambda_noobj=0.25)
    again = YoloV1Coder.from_config(coder.get_config())
    assert (again.image_size, again.grid_size, again.lambda_noobj, again.loss_parts) == ((64, 64), 4, 0.25, coder.loss_parts)


def test_presets_follow_the_notes_and_the_paper():
    config = registry.get("yolo_v1").config
    paper = resolve(config, "paper")
    assert (paper.grid_size, paper.boxes_per_cell, paper.image_size, paper.backbone, paper.fc_units) == (7, 2, 448, "paper", 4096)
    assert (paper.lambda_coord, paper.lambda_noobj, paper.data) == (5.0, 0.5, "tfds:voc/2007")
    tiny = resolve(config, "tiny")
    assert (tiny.grid_size, tiny.boxes_per_cell, tiny.image_size) == (4, 2, 64)  # notes-003-004 §8.5: 64×64, S=4, B=2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo_v1")
    return tfmodels.train("yolo_v1", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


def test_tiny_trains_the_loss_falls_and_reports_coco_map(tiny_run):
    history = np.genfromtxt(tiny_run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = tiny_run.metrics["report"]
    assert 0 <= report["coco_map"] <= report["coco_map_50"] <= 1
    assert (tiny_run.run_dir / "detections.png").stat().st_size > 0


def test_export_verifies_and_serving_equals_the_evaluation_path(tiny_run, export_copied_run):
    exported = export_copied_run(tiny_run)
    recipe = registry.get("yolo_v1")
    test = recipe.datasets(resolve(recipe.config, "tiny")).test
    pixels = np.stack([image for image, _ in test.take(3).as_numpy_iterator()])
    served = tf.saved_model.load(str(exported)).signatures["predict_pixels"](pixels=tf.constant(pixels))
    expected = tiny_run.model.detect(tf.constant(pixels))
    for key, value in expected.items():
        np.testing.assert_allclose(served[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-4, err_msg=key)
