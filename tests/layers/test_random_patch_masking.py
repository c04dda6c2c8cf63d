"""RandomPatchMasking (notes-001.md §26; He et al. 2022's random_masking): counts, per-sample masks, seeds, ids_restore."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import random_patch_masking as masking_module
from tfmodels.layers.random_patch_masking import RandomPatchMasking, num_visible_patches


def _index_tokens(batch, num_patches):
    """Token n of every sample holds the value n, so the visible tokens name their own positions."""
    return np.tile(np.arange(num_patches, dtype="float32")[None, :, None], (batch, 1, 2))


def test_docstring_examples():
    result = doctest.testmod(masking_module)
    assert result.attempted >= 4 and result.failed == 0


@pytest.mark.parametrize("num_patches, visible", [(196, 49), (64, 16)])
def test_encoder_input_length_at_75_percent(num_patches, visible):
    """§26: 224/16 -> 196 patches, 49 visible; 32/4 -> 64 patches, 16 visible (N·(1 − 0.75))."""
    out, mask, ids_restore = RandomPatchMasking(0.75, seed=0)(_index_tokens(3, num_patches))
    assert tuple(out.shape) == (3, visible, 2)
    assert tuple(mask.shape) == tuple(ids_restore.shape) == (3, num_patches)
    np.testing.assert_array_equal(mask.numpy().sum(axis=1), [num_patches - visible] * 3)


def test_visible_count_avoids_the_floating_point_floor():
    """int(10·(1 − 0.9)) is 0 in floating point; 9 masked of 10 leaves one."""
    assert int(10 * (1 - 0.9)) == 0
    assert num_visible_patches(10, 0.9) == 1
    assert num_visible_patches(10, 0.0) == 10
    for ratio in (1.0, -0.1):
        with pytest.raises(ValueError, match="mask_ratio"):
            RandomPatchMasking(ratio)
    with pytest.raises(ValueError, match="at least one"):
        num_visible_patches(4, 0.9)


def test_mask_visible_tokens_and_ids_restore_are_consistent():
    """The visible tokens are exactly the unmasked positions; ids_restore inverts the shuffle (restore ∘ shuffle = id)."""
    batch, num_patches = 4, 16
    visible, mask, ids_restore = RandomPatchMasking(0.75, seed=1)(_index_tokens(batch, num_patches))
    ids_keep = visible.numpy()[..., 0].astype(int)  # the kept positions, in shuffled order
    mask, ids_restore = mask.numpy(), ids_restore.numpy()
    for b in range(batch):
        assert sorted(ids_restore[b]) == list(range(num_patches))  # a permutation
        np.testing.assert_array_equal(np.sort(ids_keep[b]), np.flatnonzero(mask[b] == 0))
        # The position in shuffled order of each kept token is its rank 0..K-1 (paper: keep the first K).
        np.testing.assert_array_equal(ids_restore[b][ids_keep[b]], np.arange(len(ids_keep[b])))
        np.testing.assert_array_equal(mask[b], (ids_restore[b] >= len(ids_keep[b])).astype("float32"))
        # The decoder's unshuffle: [visible, mask tokens] taken at ids_restore puts every visible token home.
        shuffled = np.concatenate([ids_keep[b], np.full(num_patches - len(ids_keep[b]), -1)])
        restored = shuffled[ids_restore[b]]
        np.testing.assert_array_equal(restored[mask[b] == 0], np.flatnonzero(mask[b] == 0))
        assert (restored[mask[b] == 1] == -1).all()


def test_each_sample_and_each_call_gets_its_own_mask():
    layer = RandomPatchMasking(0.75, seed=2)
    first = layer(_index_tokens(8, 64))[1].numpy()
    second = layer(_index_tokens(8, 64))[1].numpy()
    assert len({row.tobytes() for row in first}) == 8
    assert not np.array_equal(first, second)


def test_masks_are_uniform_over_positions():
    """Every position is masked with probability 0.75 (2,000 samples: ±0.05 is > 5 standard errors)."""
    mask = RandomPatchMasking(0.75, seed=3)(_index_tokens(2000, 16))[1].numpy()
    np.testing.assert_allclose(mask.mean(axis=0), 0.75, atol=0.05)


def test_same_seed_state_gives_the_same_mask():
    """Same seed -> same masks; a generator state copied into another layer (a resumed run) continues the sequence."""
    a, b = RandomPatchMasking(0.75, seed=4), RandomPatchMasking(0.75, seed=4)
    tokens = _index_tokens(3, 16)
    np.testing.assert_array_equal(a(tokens)[1].numpy(), b(tokens)[1].numpy())
    resumed = RandomPatchMasking(0.75, seed=99)
    resumed(tokens)
    resumed.seed_generator.state.assign(a.seed_generator.state.value)
    np.testing.assert_array_equal(a(tokens)[1].numpy(), resumed(tokens)[1].numpy())
    assert not np.array_equal(RandomPatchMasking(0.75, seed=5)(tokens)[1].numpy(), b(tokens)[1].numpy())


def test_mask_ratio_zero_keeps_every_token():
    visible, mask, _ = RandomPatchMasking(0.0, seed=0)(_index_tokens(2, 9))
    assert tuple(visible.shape) == (2, 9, 2) and mask.numpy().sum() == 0
    np.testing.assert_array_equal(np.sort(visible.numpy()[..., 0], axis=1), np.tile(np.arange(9), (2, 1)))


def test_replicas_of_a_mirrored_strategy_draw_different_masks():
    """The replica id is folded into the seed: the two halves of a global batch of equal inputs differ."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = RandomPatchMasking(0.75, seed=6)

    @tf.function
    def step(tokens):
        return strategy.run(lambda t: layer(t)[1], args=(tokens,))

    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(_index_tokens(4, 16)))
    halves = [t.numpy() for t in strategy.experimental_local_results(step(next(iter(dataset))))]
    assert len(halves) == 2 and not np.array_equal(halves[0], halves[1])
    assert [h.sum() for h in halves] == [24.0, 24.0]


def test_runs_under_xla():
    """The int64 generator state is folded to an int32 seed, which XLA accepts."""
    layer = RandomPatchMasking(0.5, seed=7)
    visible, mask, _ = tf.function(layer, jit_compile=True)(tf.constant(_index_tokens(2, 8)))
    assert tuple(visible.shape) == (2, 4, 2) and mask.numpy().sum() == 8


def test_keras_file_round_trip(tmp_path):
    tokens = keras.Input((16, 4))
    model = keras.Model(tokens, RandomPatchMasking(0.75, seed=8, name="masking")(tokens))
    model.save(tmp_path / "masking.keras")
    loaded = keras.saving.load_model(tmp_path / "masking.keras").get_layer("masking")
    assert isinstance(loaded, RandomPatchMasking)
    assert (loaded.mask_ratio, loaded.seed) == (0.75, 8)
    x = _index_tokens(2, 16)[..., :1].repeat(4, axis=-1)
    np.testing.assert_array_equal(loaded(x)[1].numpy(), RandomPatchMasking(0.75, seed=8)(x)[1].numpy())
