"""YOLO v1 target grid (notes-003-004 D2: S×S grid, cell of the centre, x/y in the cell, w/h of the image)."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection.yolo_targets import encode_targets, grid_boxes

# d2l's cat-and-dog picture (notes-002-part2 §2 [REF d2l]): 728 wide, 561 tall; corner boxes.
CATDOG_SIZE = (561, 728)
DOG, CAT = [60.0, 45.0, 378.0, 516.0], [400.0, 112.0, 655.0, 493.0]


def encode(boxes, classes, image_size, grid_size, boxes_per_cell, num_classes, num_boxes=None):
    return encode_targets(
        tf.constant(boxes, tf.float32), tf.constant(classes, tf.int32), num_boxes, image_size, grid_size, boxes_per_cell, num_classes
    ).numpy()


def test_the_dog_and_the_cat_go_to_the_cells_of_their_centres():
    grid = encode([DOG, CAT], [0, 1], CATDOG_SIZE, grid_size=7, boxes_per_cell=2, num_classes=2)
    assert grid.shape == (7, 7, 2 * 5 + 2)
    # Dog: centre (219, 280.5) -> (219/728·7, 280.5/561·7) = (2.106, 3.5) -> row 3, column 2.
    dog_box = [219 * 7 / 728 - 2, 0.5, 318 / 728, 471 / 561, 1.0]
    np.testing.assert_allclose(grid[3, 2], dog_box * 2 + [1.0, 0.0], atol=1e-6)
    # Cat: centre (527.5, 302.5) -> (5.072, 3.775) -> row 3, column 5.
    cat_box = [527.5 * 7 / 728 - 5, 302.5 * 7 / 561 - 3, 255 / 728, 381 / 561, 1.0]
    np.testing.assert_allclose(grid[3, 5], cat_box * 2 + [0.0, 1.0], atol=1e-6)
    others = np.ones((7, 7), bool)
    others[3, 2] = others[3, 5] = False
    assert not grid[others].any()


def test_the_paper_grid_of_64_pixel_cells():
    # 448×448 and S=7: cells of 64 px. Centre (100, 300) lies in column 1 (64..128), row 4 (256..320).
    grid = encode([[80.0, 260.0, 120.0, 340.0]], [3], (448, 448), grid_size=7, boxes_per_cell=1, num_classes=4)
    np.testing.assert_allclose(grid[4, 1], [36 / 64, 44 / 64, 40 / 448, 80 / 448, 1, 0, 0, 0, 1], atol=1e-6)
    assert np.count_nonzero(grid[..., 4]) == 1


def test_padding_is_ignored():
    boxes = [[0.0, 0.0, 16.0, 16.0], [40.0, 40.0, 50.0, 50.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 0.0, 0.0]]
    classes = [0, 1, -1, 2]  # row 2: class -1; row 3: no area; row 1: beyond num_boxes
    grid = encode(boxes, classes, (64, 64), 4, 1, 3, num_boxes=tf.constant(1))
    assert np.count_nonzero(grid[..., 4]) == 1 and grid[0, 0, 4] == 1


def test_one_object_per_cell_the_largest_and_then_the_earlier():
    small, large, same_size = [2.0, 2.0, 8.0, 8.0], [0.0, 0.0, 12.0, 12.0], [1.0, 1.0, 13.0, 13.0]
    grid = encode([small, large, same_size], [0, 1, 2], (32, 32), 2, 1, 3)  # all centres in cell (0, 0)
    np.testing.assert_allclose(grid[0, 0], [6 / 16, 6 / 16, 12 / 32, 12 / 32, 1, 0, 1, 0], atol=1e-6)
    assert np.count_nonzero(grid[..., 4]) == 1


def test_a_centre_on_the_far_edge_stays_in_the_last_cell():
    grid = encode([[56.0, 56.0, 64.0, 72.0]], [0], (64, 64), 4, 1, 1)  # centre (60, 64): on the bottom edge
    assert grid[3, 3, 4] == 1 and np.count_nonzero(grid[..., 4]) == 1
    np.testing.assert_allclose(grid[3, 3, :2], [12 / 16, 1.0], atol=1e-6)


def test_grid_boxes_inverts_the_encoding_on_random_scenes():
    rng = np.random.default_rng(0)
    s, size = 8, (96, 128)  # 12×16-pixel cells
    cells = rng.choice(s * s, size=(3, 5), replace=False)
    centre = np.stack([(cells % s + rng.uniform(0, 1, cells.shape)) * 16, (cells // s + rng.uniform(0, 1, cells.shape)) * 12], -1)
    half = rng.uniform(1, 20, centre.shape)
    boxes = np.concatenate([centre - half, centre + half], -1).astype("float32")
    classes = rng.integers(0, 4, cells.shape)
    grid = encode(boxes, classes, size, s, 2, 4)
    decoded = grid_boxes(grid, size, 2).numpy()
    for image in range(3):
        for box, cls, cell in zip(boxes[image], classes[image], cells[image]):
            row, column = divmod(cell, s)
            np.testing.assert_allclose(decoded[image, row, column], [box, box], rtol=1e-5, atol=1e-4)
            assert grid[image, row, column, 10 + cls] == 1
    assert np.count_nonzero(grid[..., 4]) == 15


def test_batched_in_tf_data_and_in_a_function_with_unknown_shapes():
    boxes = tf.constant([[[0.0, 0.0, 16.0, 16.0], [0.0, 0.0, 0.0, 0.0]], [[40.0, 8.0, 60.0, 30.0], [0.0, 0.0, 30.0, 30.0]]])
    classes, num_boxes = tf.constant([[1, -1], [0, 2]]), tf.constant([1, 2])
    eager = encode_targets(boxes, classes, num_boxes, (64, 64), 4, 2, 3)
    spec = (tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))
    traced = tf.function(lambda *gt: encode_targets(*gt, (64, 64), 4, 2, 3), input_signature=spec)
    np.testing.assert_array_equal(traced(boxes, classes, num_boxes), eager)
    mapped = tf.data.Dataset.from_tensor_slices((boxes, classes, num_boxes)).map(lambda *gt: encode_targets(*gt, (64, 64), 4, 2, 3))
    np.testing.assert_array_equal(np.stack(list(mapped.as_numpy_iterator())), eager)


@pytest.mark.parametrize("boxes_per_cell", [1, 3])
def test_every_slot_of_a_cell_holds_the_box(boxes_per_cell):
    grid = encode([[8.0, 8.0, 24.0, 24.0]], [0], (64, 64), 4, boxes_per_cell, 2)
    np.testing.assert_allclose(grid[1, 1, : 5 * boxes_per_cell].reshape(boxes_per_cell, 5), [[0, 0, 0.25, 0.25, 1]] * boxes_per_cell)
