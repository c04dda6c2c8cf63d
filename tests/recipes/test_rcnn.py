"""``rcnn``: the warp against NumPy, the CNN once per proposal, SVM targets and hinge loss, a tiny run."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.layers import per_region, region_warp
from tfmodels.layers.per_region import PerRegion
from tfmodels.layers.region_warp import warp_regions
from tfmodels.models import rcnn as rcnn_models
from tfmodels.recipes import rcnn
from tfmodels.recipes.rcnn import RcnnCoder, svm_hinge


def test_doctests():
    for module in (region_warp, per_region, rcnn_models, rcnn):
        assert doctest.testmod(module).failed == 0, module.__name__


def _warp(image: np.ndarray, box, crop_size, context_padding=0) -> np.ndarray:
    return warp_regions(image[None], tf.constant([[box]], tf.float32), crop_size, context_padding)[0, 0].numpy()


def test_a_box_inside_a_constant_block_warps_to_its_colour():
    image = np.zeros((48, 64, 3), np.float32)
    image[8:30, 16:44] = (10.0, 200.0, 30.0)
    # stretched, squeezed and non-square warps: every sample stays within the block
    for box, size in (([18.0, 10.0, 42.0, 28.0], 32), ([17.0, 9.0, 21.0, 29.0], (7, 3)), ([20.0, 12.0, 40.0, 26.0], 5)):
        crop = _warp(image, box, size)
        np.testing.assert_allclose(crop, np.broadcast_to(image[10, 20], crop.shape), atol=1e-4)


def test_warp_matches_numpy_on_an_integer_grid():
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3)).astype(np.float32)
    # a box warped to its own size reads its pixels
    np.testing.assert_allclose(_warp(image, [3.0, 5.0, 11.0, 11.0], (6, 8)), image[5:11, 3:11], atol=1e-3)
    # twice the crop size: each output pixel is the mean of a 2x2 block
    blocks = image[2:14, 4:20].reshape(6, 2, 8, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(_warp(image, [4.0, 2.0, 20.0, 14.0], (6, 8)), blocks, atol=1e-3)
    # the whole image: what tf.image.resize (bilinear, half-pixel centres) gives
    resized = tf.image.resize(image, (7, 9), method="bilinear", antialias=False).numpy()
    np.testing.assert_allclose(_warp(image, [0.0, 0.0, 24.0, 20.0], (7, 9)), resized, atol=1e-3)


def test_context_padding_dilates_the_box_so_it_fills_the_inner_crop():
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3)).astype(np.float32)
    # crop 6 with 1 pixel of context: the 4x4 box fills the inner 4x4, the crop reads [3, 9)
    np.testing.assert_allclose(_warp(image, [4.0, 4.0, 8.0, 8.0], 6, context_padding=1), image[3:9, 3:9], atol=1e-3)


def test_the_paper_crop_network_is_alexnet_without_fc8():
    alexnet_parameters, fc8_parameters = 60_965_224, 4096 * 1000 + 1000  # grouped AlexNet, 1000 classes
    assert rcnn_models.build_crop_network().count_params() == alexnet_parameters - fc8_parameters


def test_per_region_runs_the_network_once_on_all_regions():
    class Recorder(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.batch_shapes = []

        def call(self, crops):
            self.batch_shapes.append(tuple(crops.shape))
            return tf.reduce_mean(crops, axis=[1, 2])

    recorder = Recorder()
    crops = tf.random.uniform([2, 5, 8, 8, 3])
    features = PerRegion(recorder)(crops)
    assert recorder.batch_shapes == [(10, 8, 8, 3)]  # B x N rows, one call
    np.testing.assert_allclose(features.numpy(), crops.numpy().mean(axis=(2, 3)), rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_detector():
    recipe = registry.get("rcnn")
    return recipe.model(resolve(recipe.config, "tiny", {}))


def test_each_window_gets_the_features_of_its_own_crop(tiny_detector):
    network, coder = tiny_detector.network, tiny_detector.coder
    per_region_layer = network.get_layer("per_region")
    num_windows, crop = len(coder.windows), network.get_layer("warp").crop_size
    assert per_region_layer.input.shape == (None, num_windows, *crop, 3)
    images = tf.random.uniform([2, 64, 64, 3], maxval=255.0)
    features = keras.Model(network.input, per_region_layer.output)(images)
    assert features.shape == (2, num_windows, tiny_detector.crop_network.output.shape[-1])
    # window 7 of image 1, warped and run on its own, gives the same features: no sharing between proposals
    crops = network.get_layer("warp")(images)
    alone = tiny_detector.crop_network(crops[1, 7:8])
    np.testing.assert_allclose(features[1, 7].numpy(), alone[0].numpy(), rtol=1e-4, atol=1e-5)


def _hand_coder():
    """One 16x16 window at each of 4 points of a 32-pixel image, 3 classes."""
    return RcnnCoder(32, 2, [16.0], [1.0], num_classes=3, finetune_samples=4, finetune_positive_fraction=0.5)


def test_targets_follow_the_paper_thresholds():
    coder = _hand_coder()
    np.testing.assert_allclose(coder.windows, [[0, 0, 16, 16], [16, 0, 32, 16], [0, 16, 16, 32], [16, 16, 32, 32]])
    gt = {
        # class 1 exactly on window 0; class 2 at IoU 0.77 with window 1, not touching the others
        "boxes": tf.constant([[[0.0, 0.0, 16.0, 16.0], [18.0, 0.0, 32.0, 14.0], [0.0, 0.0, 0.0, 0.0]]]),
        "classes": tf.constant([[1, 2, -1]]),
        "num_boxes": tf.constant([2]),
    }
    targets = coder.encode(gt)
    # rows: 4 windows, then the 3 ground-truth rows (the last is padding)
    assert targets["classes"].numpy().tolist() == [[2, 3, 0, 0, 2, 3, 0]]
    assert targets["real"].numpy().tolist() == [[True] * 6 + [False]]
    assert targets["regress"].numpy().tolist() == [[True, True, False, False, False, False, False]]
    assert targets["foreground"].numpy().tolist() == [[True, True, False, False, False, False, False]]
    # SVMs: positives are only ground-truth rows of the class; a window on a box of class 1
    # (IoU 1) is ignored by SVM 1 and a negative of SVMs 0 and 2
    assert targets["svm_labels"].numpy().tolist() == [[
        [-1, 0, -1], [-1, -1, 0], [-1, -1, -1], [-1, -1, -1], [-1, 1, -1], [-1, -1, 1], [-1, -1, -1],
    ]]
    np.testing.assert_allclose(targets["offset_targets"][0, 0], [0, 0, 0, 0], atol=1e-6)
    sample = coder.sample(targets, tf.constant([3, 4]))
    # every ground-truth row first (weight 0 on padding), then 4 drawn windows, both foreground ones
    assert sample["weights"].numpy().tolist() == [[1, 1, 0, 1, 1, 1, 1]]
    assert sorted(sample["classes"].numpy()[0, 3:].tolist()) == [0, 0, 2, 3]


def test_hinge_loss_equals_a_hand_computation():
    scores = tf.constant([[0.5, -2.0, 3.0], [-0.3, 0.2, 0.0]])
    labels = tf.constant([[1.0, -1.0, 0.0], [-1.0, 1.0, -1.0]])
    # w max(0, 1 - y s): 2 * 0.5, 0 (beyond the margin), ignored; 0.7, 2 * 0.8, 1
    np.testing.assert_allclose(svm_hinge(scores, labels, 2.0).numpy(), [[1.0, 0.0, 0.0], [0.7, 1.6, 1.0]], rtol=1e-6)
    # with +-1 labels and equal weights, its mean over the classes is Keras' hinge loss
    signs = tf.constant([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]])
    np.testing.assert_allclose(tf.reduce_mean(svm_hinge(scores, signs), -1).numpy(),
                               keras.losses.hinge(signs, scores).numpy(), rtol=1e-6)
    coder = _hand_coder()
    targets = {
        "weights": tf.constant([[1.0, 1.0, 0.0]]), "classes": tf.constant([[1, 0, 0]]),
        "svm_labels": tf.constant([[[1.0, -1.0, 0.0], [-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]]]),
        "regress": tf.constant([[False, False, False]]), "offset_targets": tf.zeros([1, 3, 4]),
    }
    outputs = {
        "class_logits": tf.zeros([1, 3, 4]), "box_offsets": tf.zeros([1, 3, 3, 4]),
        "svm_scores": tf.constant([[[0.5, -2.0, 3.0], [-0.3, 0.2, 0.0], [9.0] * 3]]),
    }
    parts = coder.loss(targets, outputs)
    # per row, summed over the SVMs, over the 2 weighted rows; the weight-0 row counts for nothing
    assert parts["svm_loss"].numpy() == pytest.approx((1.0 + 0.7 + 1.6 + 1.0) / 2)
    assert parts["finetune_loss"].numpy() == pytest.approx(np.log(4.0))
    assert parts["box_loss"].numpy() == 0.0


def test_svms_and_regressor_do_not_train_the_cnn(tiny_detector):
    images = tf.random.uniform([2, 64, 64, 3], maxval=255.0)
    window = tiny_detector.coder.windows[(3 * 8 + 3) * 4 + 3]  # the 14-pixel square at lattice point (3, 3)
    box = np.stack([window + 1.0] + [np.zeros(4, np.float32)] * 4)  # IoU 0.76 with the window: regressed
    gt = {"boxes": tf.constant([box] * 2), "classes": tf.constant([[3, -1, -1, -1, -1]] * 2),
          "num_boxes": tf.constant([1, 1])}
    heads = tiny_detector.network.get_layer("heads")
    tiny_detector.compile(optimizer="adam")  # the training sample's seed reads the optimizer's step
    with tf.GradientTape(persistent=True) as tape:
        _, parts, _ = tiny_detector.detection_loss(images, gt, training=True)

    def reaches(part, layer):
        gradients = tape.gradient(parts[part], layer.trainable_variables)
        return any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)

    assert reaches("finetune_loss", tiny_detector.crop_network)
    for part, head in (("svm_loss", "svm_scores"), ("box_loss", "box_regressor")):
        assert reaches(part, heads.get_layer(head)) and not reaches(part, tiny_detector.crop_network), part


@pytest.mark.slow  # end to end: the fast suite keeps ssd's and faster_rcnn's (make test-slow runs it)
def test_tiny_run_trains_and_exports(tiny_detector_run):
    result, served = tiny_detector_run("rcnn")
    assert {"finetune_loss", "svm_loss", "box_loss"} <= set(result.metrics["test"])
