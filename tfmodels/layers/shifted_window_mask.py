"""The attention mask of shifted windows (SW-MSA) after the cyclic shift (Swin).

Specs: notes-001.md §27 (seed 001 L722-773: shifted windows in consecutive layers; test
"shifted-window mask prevents attention between tokens that were not spatially adjacent before
the roll"). The mechanism is the paper's (Liu et al. 2021, §3.2 "Efficient batch computation for
shifted configuration", Fig. 4; paper default): the map is rolled by ``−s`` (s = ⌊M/2⌋) on both
axes, so the windows of the rolled map are the shifted windows; the bottom/right windows then mix
tokens from opposite edges of the image. Rows of the rolled map fall into three regions,
``[0, H−M)``, ``[H−M, H−s)`` and ``[H−s, H)`` (the last ones wrapped round from the top), the same
for columns; a token may attend to another only when both lie in the same (row, column) region.
"""

from __future__ import annotations

from keras import ops

from tfmodels.layers.window_attention import window_partition


def _region_of(positions, length: int, window_size: int, shift_size: int):
    """0, 1 or 2: the region of each rolled-map coordinate along one axis (paper's h/w slices)."""
    return ops.cast(positions >= length - window_size, "int32") + ops.cast(positions >= length - shift_size, "int32")


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int):
    """Boolean ``[nW, M², M²]`` mask, True where query i may attend to key j in a rolled window.

    Built with core ops from static sizes (it constant-folds in a traced graph).

    Args:
        height: map height H, a multiple of ``window_size``.
        width: map width W, a multiple of ``window_size``.
        window_size: the window side M.
        shift_size: the cyclic shift s, ``0 < s < M`` (the paper's ⌊M/2⌋).

    Returns:
        ``[(H/M)·(W/M), M², M²]`` bool, windows in :func:`window_partition` order.

    Example:
        >>> mask = shifted_window_mask(4, 4, 2, 1)
        >>> mask.shape, bool(mask[0].numpy().all())  # the top-left window holds one region
        (TensorShape([4, 4, 4]), True)
        >>> mask[3].numpy().astype(int)  # the bottom-right one holds four wrapped corners
        array([[1, 0, 0, 0],
               [0, 1, 0, 0],
               [0, 0, 1, 0],
               [0, 0, 0, 1]])
    """
    if not 0 < shift_size < window_size:
        raise ValueError(f"shifted_window_mask: the shift must be in (0, {window_size}), got {shift_size}")
    rows = _region_of(ops.arange(height), height, window_size, shift_size)
    cols = _region_of(ops.arange(width), width, window_size, shift_size)
    regions = rows[:, None] * 3 + cols[None, :]  # [H, W], one of 9 labels
    windows = ops.reshape(window_partition(regions[None, :, :, None], window_size), (-1, window_size * window_size))
    return ops.equal(windows[:, :, None], windows[:, None, :])
