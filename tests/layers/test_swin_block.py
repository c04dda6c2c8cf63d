"""Swin blocks, W-MSA / SW-MSA and the shifted-window mask (notes-001 §27; Swin §3.1-3.2, Fig. 4)."""

import numpy as np
import pytest
from keras_hub.src.models.swin_transformer import swin_transformer_layers as hub_layers

from tfmodels.layers.shifted_window_mask import shifted_window_mask
from tfmodels.layers.swin_block import SwinTransformerBlock

MASK_CASES = [(4, 4, 2, 1), (8, 8, 4, 2), (14, 14, 7, 3), (8, 12, 4, 1), (9, 6, 3, 1), (16, 8, 4, 3)]


def _rolled_windows(height, width, size):
    """Each window of the rolled map as its list of (row, col) positions, in row-major order."""
    return [
        [(r * size + i, c * size + j) for i in range(size) for j in range(size)]
        for r in range(height // size)
        for c in range(width // size)
    ]


def _paper_slice_labels(height, width, size, shift):
    """The paper code's img_mask: label the rolled map by its h/w slices, written out in NumPy."""
    labels = np.zeros((height, width), int)
    count = 0
    for h in (slice(0, -size), slice(-size, -shift), slice(-shift, None)):
        for w in (slice(0, -size), slice(-size, -shift), slice(-shift, None)):
            labels[h, w] = count
            count += 1
    return labels


@pytest.mark.parametrize("height, width, size, shift", MASK_CASES)
def test_mask_equals_brute_force_same_region_rule(height, width, size, shift):
    labels = _paper_slice_labels(height, width, size, shift)
    expected = np.array(
        [[[labels[p] == labels[q] for q in window] for p in window] for window in _rolled_windows(height, width, size)]
    )
    np.testing.assert_array_equal(shifted_window_mask(height, width, size, shift), expected)


@pytest.mark.parametrize("height, width, size, shift", MASK_CASES)
def test_mask_allows_exactly_the_pairs_that_were_contiguous_before_the_roll(height, width, size, shift):
    # A second reference: token at rolled (r, c) came from ((r + s) mod H, (c + s) mod W). Two tokens
    # of one window may attend iff the roll did not wrap between them: their offsets are unchanged.
    def origin(position):
        return ((position[0] + shift) % height, (position[1] + shift) % width)

    expected = np.array(
        [
            [
                [np.subtract(origin(p), origin(q)).tolist() == np.subtract(p, q).tolist() for q in window]
                for p in window
            ]
            for window in _rolled_windows(height, width, size)
        ]
    )
    np.testing.assert_array_equal(shifted_window_mask(height, width, size, shift), expected)


def test_mask_refuses_no_shift():
    with pytest.raises(ValueError, match="shift"):
        shifted_window_mask(8, 8, 4, 0)


def _block(shift, size=4, channels=8, heads=2, seed=0):
    block = SwinTransformerBlock(num_heads=heads, window_size=size, shift_size=shift)
    block.build((None, 8, 8, channels))
    rng = np.random.default_rng(seed)
    for weight in block.weights:
        weight.assign(rng.normal(0, 0.3, weight.shape))
    return block


def _changed_tokens(block, row, col):
    """Boolean [H, W]: the output tokens that change when input token (row, col) is perturbed."""
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 8)).astype("float32")
    y = x.copy()
    y[0, row, col] += np.linspace(-3.0, 3.0, 8)  # not a constant shift, which the LayerNorm would remove
    return np.abs(block(y).numpy() - block(x).numpy()).max(-1)[0] > 1e-5


def test_w_msa_output_depends_only_on_its_window():
    changed = _changed_tokens(_block(shift=0), 1, 2)  # a token of window (0, 0) of a 4x4 grid
    expected = np.zeros((8, 8), bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(changed, expected)


def test_sw_msa_crosses_the_original_window_boundary():
    # Token (3, 3) sits in original window (0, 0); the windows shifted by 2 put it with (2..5, 2..5).
    changed = _changed_tokens(_block(shift=2), 3, 3)
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(changed, expected)
    assert changed[4:, 4:].any()  # reached tokens of original window (1, 1)


def test_sw_msa_keeps_wrapped_regions_apart():
    # Token (0, 0) rolls to (6, 6): the bottom-right shifted window, shared with the wrapped rows
    # 6-7 and columns 6-7 of the map, which the mask keeps from it. It only reaches its own 2x2 corner.
    changed = _changed_tokens(_block(shift=2), 0, 0)
    expected = np.zeros((8, 8), bool)
    expected[:2, :2] = True
    np.testing.assert_array_equal(changed, expected)


def test_window_larger_than_the_map_shrinks_and_stops_shifting():
    block = SwinTransformerBlock(num_heads=2, window_size=7, shift_size=3)
    assert block(np.zeros((1, 4, 4, 8), "float32")).shape == (1, 4, 4, 8)
    assert (block.effective_window_size, block.effective_shift_size) == (4, 0)
    assert block.attn.relative_position_bias_table.shape == (7 * 7, 2)  # (2·4 − 1)², as in the paper's code


def test_map_must_be_a_grid_of_windows():
    with pytest.raises(ValueError, match="not a grid"):
        SwinTransformerBlock(num_heads=2, window_size=3)(np.zeros((1, 8, 8, 8), "float32"))


@pytest.mark.parametrize("shift", [0, 2])
def test_matches_keras_hub_block(shift):
    ours = _block(shift, seed=7)
    hub = hub_layers.SwinTransformerBlock(dim=8, input_resolution=(8, 8), num_heads=2, window_size=4, shift_size=shift)
    x = np.random.default_rng(8).normal(size=(2, 8, 8, 8)).astype("float32")
    hub(x.reshape(2, 64, 8))
    hub.attn.relative_position_bias_table.assign(ours.attn.relative_position_bias_table)
    for source, target in (
        (ours.norm1, hub.norm1), (ours.attn.qkv, hub.attn.qkv), (ours.attn.proj, hub.attn.proj),
        (ours.norm2, hub.norm2), (ours.mlp_fc1, hub.mlp.fc1), (ours.mlp_fc2, hub.mlp.fc2),
    ):
        target.set_weights(source.get_weights())
    np.testing.assert_allclose(ours(x).numpy().reshape(2, 64, 8), hub(x.reshape(2, 64, 8)), rtol=1e-4, atol=1e-5)


def test_mlp_ratio_and_config_round_trip():
    block = SwinTransformerBlock(num_heads=2, window_size=4, shift_size=2, mlp_ratio=4.0, drop_path=0.1, seed=3)
    block.build((None, 8, 8, 16))
    assert block.mlp_fc1.kernel.shape == (16, 64)  # hidden width 4C, paper default
    clone = SwinTransformerBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()


def test_shift_must_be_smaller_than_the_window():
    with pytest.raises(ValueError, match="shift_size"):
        SwinTransformerBlock(num_heads=2, window_size=4, shift_size=4)


def test_drop_path_only_while_training():
    block = SwinTransformerBlock(num_heads=2, window_size=4, drop_path=0.5, seed=0)
    x = np.random.default_rng(9).normal(size=(16, 4, 4, 8)).astype("float32")
    np.testing.assert_array_equal(block(x, training=False), block(x))
    assert not np.allclose(block(x, training=True), block(x))
