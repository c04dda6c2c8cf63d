"""SSD networks: d2l's TinySSD shapes and anchor count, anchor/prediction alignment, SSD300's size."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection.anchors import multibox_anchors
from tfmodels.models import ssd


def anchors_of(network, sizes, ratios):
    image = network.input_shape[1:3]
    maps = ssd.feature_map_sizes(network)
    return tf.concat([multibox_anchors(f, image, s, r) for f, s, r in zip(maps, sizes, ratios, strict=True)], axis=0)


def test_tiny_ssd_has_d2l_shapes_and_5444_anchors_at_256():
    # notes-002-part2.md §13 [REF d2l]: feature maps 32², 16², 8², 4², 1²; 4 anchors per pixel;
    # for batch 32 and one class: anchors (1, 5444, 4), cls (32, 5444, 2), bbox (32, 21776).
    network = ssd.build_tiny_ssd(num_classes=1)
    assert ssd.feature_map_sizes(network) == [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)]
    assert ssd.anchors_per_pixel(ssd.TINY_SSD_SIZES, [ssd.TINY_SSD_RATIOS] * 5) == (4,) * 5
    anchors = anchors_of(network, ssd.TINY_SSD_SIZES, [ssd.TINY_SSD_RATIOS] * 5)
    assert anchors.shape == (5444, 4)
    assert network.output["class_logits"].shape == (None, 5444, 2)
    outputs = network(np.zeros((1, 256, 256, 3), np.float32))
    assert outputs["class_logits"].shape == (1, 5444, 2)
    assert tf.reshape(outputs["offsets"], [1, -1]).shape == (1, 21776)


def test_predictions_and_anchors_share_one_order():
    """Row (i·w + j)·A + a of the concatenated offsets is map (i, j) channels 4a..4a+3, and its anchor is centred on (i, j)."""
    network = ssd.build_tiny_ssd(num_classes=2, image_size=64, anchors=(4,) * 5, base_channels=(4, 4, 4), stage_channels=(4, 4, 4))
    probe = keras.Model(network.input, [network.get_layer("offset_predictor_1").output, network.output["offsets"]])
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    scale_map, offsets = (t.numpy() for t in probe(pixels))
    h, w, a = 4, 4, 4  # scale 1 of a 64² input: 64 / 16
    first = 8 * 8 * a  # rows of scale 0 (8²) come first
    anchors = anchors_of(network, ssd.TINY_SSD_SIZES, [ssd.TINY_SSD_RATIOS] * 5).numpy()
    for i, j, k in [(0, 0, 0), (0, 3, 2), (2, 1, 3), (3, 3, 1)]:
        row = first + (i * w + j) * a + k
        np.testing.assert_allclose(offsets[0, row], scale_map[0, i, j, 4 * k : 4 * k + 4], rtol=1e-6)
        center = (anchors[row, :2] + anchors[row, 2:]) / 2
        np.testing.assert_allclose(center, [(j + 0.5) * 64 / w, (i + 0.5) * 64 / h], atol=1e-4)


def test_tiny_ssd_saves_and_loads():
    network = ssd.build_tiny_ssd(num_classes=3, image_size=64, base_channels=(4, 4, 4), stage_channels=(8, 8, 8))
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    loaded = keras.Model.from_config(network.get_config())
    loaded.set_weights(network.get_weights())
    np.testing.assert_allclose(loaded(pixels)["class_logits"], network(pixels)["class_logits"], atol=1e-6)


def test_l2_normalization_gives_every_pixel_the_norm_of_its_scale():
    x = np.random.default_rng(2).normal(size=(2, 3, 3, 5)).astype(np.float32)
    out = ssd.L2Normalization(scale=20.0)(x).numpy()
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 20.0, rtol=1e-5)
    np.testing.assert_allclose(out / 20.0, x / np.linalg.norm(x, axis=-1, keepdims=True), atol=1e-6)


def test_ssd300_default_boxes_are_the_papers_8732():
    # Liu et al. 2016, Table/§3: 38²·4 + 19²·6 + 10²·6 + 5²·6 + 3²·4 + 1²·4 = 8,732 boxes at 300².
    per_pixel = ssd.anchors_per_pixel(ssd.SSD300_SIZES, ssd.SSD300_RATIOS)
    assert per_pixel == (4, 6, 6, 6, 4, 4)
    maps = (38, 19, 10, 5, 3, 1)
    assert sum(m * m * a for m, a in zip(maps, per_pixel)) == 8732
    # The smallest default box: 30 px square (min size 30 of 300), the second sqrt(30·60) px.
    anchors = multibox_anchors((38, 38), (300, 300), ssd.SSD300_SIZES[0], ssd.SSD300_RATIOS[0]).numpy()
    np.testing.assert_allclose(anchors[0, 2:] - anchors[0, :2], [30, 30], rtol=1e-5)
    np.testing.assert_allclose(anchors[1, 2:] - anchors[1, :2], [np.sqrt(1800)] * 2, rtol=1e-5)


@pytest.mark.slow
def test_ssd300_builds_with_the_published_parameter_count():
    # The paper's Caffe SSD300 for VOC (20 classes + background): 26,285,486 parameters.
    network = ssd.build_ssd300(num_classes=20)
    assert network.count_params() == ssd.SSD300_PARAMETERS == 26_285_486
    assert ssd.feature_map_sizes(network) == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert network.output["class_logits"].shape == (None, 8732, 21)
    assert network.output["offsets"].shape == (None, 8732, 4)
    # VGG-16's 13 convolutions under keras.applications' names and shapes (its ImageNet weights fit).
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(300, 300, 3))
    for layer in reference.layers:
        if layer.weights:
            assert [w.shape for w in network.get_layer(layer.name).weights] == [w.shape for w in layer.weights]
