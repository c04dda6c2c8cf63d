"""ENet class weighting: weights from the training pixels' class shares, per-pixel weights in training crops."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.config import resolve
from tfmodels.training.run_folder import RunFolder
from tfmodels.recipes.segmentation import SegmentationConfig, class_frequencies, class_weights, train_element_transform


def _split(maps):
    maps = np.asarray(maps, "int32")
    return tf.data.Dataset.from_tensor_slices((np.zeros((*maps.shape, 3), "float32"), maps))


def test_class_shares_leave_out_ignored_pixels():
    shares = class_frequencies(_split([[[0, 0, 0, 1], [0, 2, 255, 255]]]), 3)
    np.testing.assert_allclose(shares, [4 / 6, 1 / 6, 1 / 6])


def test_enet_weights_and_per_pixel_training_weights(tmp_path):
    cfg = resolve(SegmentationConfig, "default", {"class_weighting": "enet", "crop_size": 2, "image_size": 2})
    (tmp_path / "run").mkdir()
    run = RunFolder.create(tmp_path / "run", "fcn", "default")
    cfg = dataclasses.replace(cfg, run_dir=str(run.path))  # as the trainer sets it
    labels = np.zeros((1, 2, 2), "int32")
    labels[0, 0, 0] = 255
    labels[0, 1, 1] = 3  # shares: background 2/3, digit "2" (class 3) 1/3, others 0
    weights = class_weights(cfg, _split(labels))
    assert len(weights) == 11
    assert weights[0] == pytest.approx(1 / math.log(1.02 + 2 / 3))
    assert weights[3] == pytest.approx(1 / math.log(1.02 + 1 / 3))
    assert weights[5] == pytest.approx(1 / math.log(1.02))  # an absent class gets the largest weight
    assert (run.path / "assets" / "class_weights.json").exists()  # a run asset, read back by later stages
    image, class_map, pixel_weights = train_element_transform(cfg)(tf.constant([1, 2]), tf.zeros([2, 2, 3]), tf.constant(labels[0]))
    np.testing.assert_allclose(pixel_weights.numpy(), [[0.0, weights[0]], [weights[0], weights[3]]], rtol=1e-6)


def test_without_weighting_training_elements_stay_pairs():
    cfg = resolve(SegmentationConfig, "default", {"crop_size": 2, "image_size": 2})
    assert class_weights(cfg) is None
    assert len(train_element_transform(cfg)(tf.constant([1, 2]), tf.zeros([2, 2, 3]), tf.zeros([2, 2], tf.int32))) == 2
