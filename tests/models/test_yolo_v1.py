"""YOLO v1 network (notes-003-004 D2, notes-002 §14; paper Figure 3)."""

import keras
import numpy as np
import pytest

from tfmodels.models import yolo_v1

# Paper Figure 3 written out layer by layer (kernel, filters, stride), independently of the
# module's PAPER_ARCH: 24 convolutions; at 448×448 the last one is 7×7×1024.
FIGURE_3 = (
    [(7, 64, 2), (3, 192, 1), (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1)]
    + [(1, 256, 1), (3, 512, 1)] * 4
    + [(1, 512, 1), (3, 1024, 1)]
    + [(1, 512, 1), (3, 1024, 1)] * 2
    + [(3, 1024, 1), (3, 1024, 2), (3, 1024, 1), (3, 1024, 1)]
)
PUBLISHED_PARAMS = 271_703_550  # YOLOv1 at S=7, B=2, C=20 (e.g. torchsummary of PyTorch ports)


def closed_form_count(convs, grid=7, boxes=2, classes=20, final_map=7, fc_units=4096):
    """Convolutions with biases, then FC-4096 on the flattened map and FC to S·S·(5B+C)."""
    total, c_in = 0, 3
    for kernel, filters, _ in convs:
        total += kernel * kernel * c_in * filters + filters
        c_in = filters
    outputs = grid * grid * (5 * boxes + classes)
    return total + (final_map * final_map * c_in + 1) * fc_units + (fc_units + 1) * outputs


def test_the_paper_output_is_7x7x30_and_the_count_is_the_known_one():
    assert len(FIGURE_3) == 24
    assert yolo_v1.output_channels(2, 20) == 30 and 7 * 7 * yolo_v1.output_channels(2, 20) == 1470  # S4:L117
    assert closed_form_count(FIGURE_3) == PUBLISHED_PARAMS


@pytest.mark.slow  # 272M parameters: about 1 GB and several seconds to build
def test_the_paper_network_builds_with_the_published_count_and_layers():
    model = yolo_v1.build_yolo_v1()
    assert model.count_params() == PUBLISHED_PARAMS
    assert model.output_shape == (None, 7, 7, 30)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.kernel_size[0], c.filters, c.strides[0]) for c in convs] == FIGURE_3
    assert sum(isinstance(layer, keras.layers.Dense) for layer in model.layers) == 2
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    leaky = [layer for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(leaky) == 25 and all(layer.negative_slope == pytest.approx(0.1) for layer in leaky)
    assert model.get_layer("fc2").activation is keras.activations.linear


@pytest.mark.parametrize("backbone, fc_units", [("tiny", 64), ("default", 512)])
def test_small_backbones_give_the_grid_for_digit_scenes(backbone, fc_units):
    model = yolo_v1.build_yolo_v1(num_classes=10, input_shape=(128, 128, 3), backbone=backbone, fc_units=fc_units)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype("float32")
    assert model(pixels).shape == (2, 7, 7, 20)  # S=7, B=2, C=10
    assert model.get_layer("flatten").output.shape == (None, 8 * 8 * model.get_layer("flatten").input.shape[-1])
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_grid_and_boxes_per_cell_follow_the_arguments():
    model = yolo_v1.build_yolo_v1(num_classes=3, grid_size=4, boxes_per_cell=3, input_shape=(64, 64, 3), backbone="tiny", fc_units=16)
    assert model.output_shape == (None, 4, 4, 3 * 5 + 3)
    assert model.get_layer("fc2").units == 4 * 4 * 18


def test_keras_round_trip_keeps_the_outputs(keras_round_trip):
    model = yolo_v1.build_yolo_v1(num_classes=3, grid_size=4, input_shape=(64, 64, 3), backbone="tiny", fc_units=16)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(keras_round_trip(model)(pixels), model(pixels), rtol=1e-6, atol=1e-6)
