"""What every detector recipe's end-to-end test checks on its tiny run."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.detection.masks import paste_masks


def _assert_served_like_evaluated(result, count: int = 3) -> dict:
    """``predict_pixels`` of the export equals ``detect`` of the reloaded ``model.keras`` on random
    images (integer pixel values, as a PNG holds); returns the served answers."""
    size = result.model.network.input_shape[1]
    pixels = tf.constant(np.round(np.random.default_rng(0).uniform(0, 255, (count, size, size, 3))).astype("float32"))
    served = tf.saved_model.load(str(result.export_path)).signatures["predict_pixels"](pixels=pixels)
    evaluated = keras.saving.load_model(result.run_dir / "model.keras").detect(pixels)
    if "detection_masks" in evaluated:  # served masks are pasted into the input's pixels
        evaluated["detection_masks"] = paste_masks(evaluated["detection_masks"], evaluated["detection_boxes"], size, size)
    for key, value in evaluated.items():
        np.testing.assert_allclose(served[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)
    return {key: value.numpy() for key, value in served.items()}


@pytest.fixture
def tiny_detector_run(tmp_path):
    """``tiny_detector_run(name) -> (result, served)``: ``name`` trained at ``tiny`` and exported.

    Asserts that the training loss fell, the report has pycocotools' numbers, ``detections.png``
    exists, the export verifies, and its ``predict_pixels`` answers (``served``, on 3 random
    images) equal the reloaded model's ``detect``.
    """

    def train(name: str):
        result = tfmodels.train(name, preset="tiny", runs_root=tmp_path, export_root=tmp_path / "saved_models")
        history = np.genfromtxt(result.run_dir / "history.csv", delimiter=",", names=True)
        assert history["loss"][-1] < history["loss"][0]
        assert {"coco_map", "coco_map_50", "per_class_ap"} <= set(result.metrics["report"])
        assert (result.run_dir / "detections.png").stat().st_size > 0
        assert tfmodels.verify_export(result.export_path)["requests_replayed"] == 2
        return result, _assert_served_like_evaluated(result)

    return train
