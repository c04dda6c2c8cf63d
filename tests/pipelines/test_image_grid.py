"""pipelines.images.image_grid: rows of images tiled with white gaps (MAE reconstructions, DDPM samples)."""

import doctest

import numpy as np

from pipelines import images as images_module
from pipelines.images import image_grid


def test_docstring_examples():
    result = doctest.testmod(images_module)
    assert result.attempted >= 2 and result.failed == 0


def test_image_grid_layout():
    rng = np.random.default_rng(10)
    rows = [rng.integers(0, 256, (2, 5, 4, 3)).astype("float32") for _ in range(3)]
    grid = image_grid(rows, gap=2)
    assert grid.shape == (3 * 7 - 2, 2 * 6 - 2, 3) and grid.dtype == np.uint8
    for r, row in enumerate(rows):
        for c in range(2):
            np.testing.assert_array_equal(grid[7 * r:7 * r + 5, 6 * c:6 * c + 4], row[c])
    assert (grid[5:7] == 255).all() and (grid[:, 4:6] == 255).all()
    np.testing.assert_array_equal(image_grid(rows, scale=3), grid.repeat(3, 0).repeat(3, 1))


def test_one_row_of_grey_images():
    grid = image_grid([np.full((3, 2, 2, 1), 7.4)], gap=1)
    assert grid.shape == (2, 8, 1)
    assert (grid[:, [0, 1, 3, 4, 6, 7]] == 7).all() and (grid[:, [2, 5]] == 255).all()
