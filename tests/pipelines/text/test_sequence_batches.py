"""Random sampling and sequential partitioning of a long sequence (notes-002-part2 §25).

The notes' (d2l's) worked example: the corpus 0, 1, …, 34, batch size 2, 5 time steps.
"""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.text.sequence_batches import random_sampling, sequential_partitioning

CORPUS = tf.data.Dataset.range(35)
BATCH, STEPS = 2, 5


def _epoch(dataset):
    return [(x, y) for x, y in dataset.as_numpy_iterator()]


def _first_tokens(epochs):
    return [tuple(int(x[0, 0]) for x, _ in epoch) for epoch in epochs]


def test_random_sampling_structure_of_the_notes_example():
    dataset = CORPUS.apply(random_sampling(BATCH, STEPS, seed=0))
    assert dataset.element_spec[0].shape == (BATCH, STEPS)
    for _ in range(5):
        batches = _epoch(dataset)
        starts = np.concatenate([x[:, 0] for x, _ in batches])
        offset = int(starts[0] % STEPS)
        assert len(batches) == ((35 - offset - 1) // STEPS) // BATCH == 3
        for x, y in batches:
            assert x.shape == y.shape == (BATCH, STEPS)
            np.testing.assert_array_equal(y, x + 1)  # labels = inputs shifted by one token
            np.testing.assert_array_equal(x, x[:, :1] + np.arange(STEPS))  # contiguous subsequences
        # Non-overlapping subsequences on the grid offset + k·num_steps, each used at most once.
        assert set(starts % STEPS) == {offset}
        assert len(set(starts)) == len(starts) == 6


def test_sequential_partitioning_structure_of_the_notes_example():
    dataset = CORPUS.apply(sequential_partitioning(BATCH, STEPS, seed=0))
    for _ in range(5):
        batches = _epoch(dataset)
        offset = int(batches[0][0][0, 0])
        row_length = (35 - offset - 1) // BATCH
        assert len(batches) == row_length // STEPS
        for b, (x, y) in enumerate(batches):
            np.testing.assert_array_equal(y, x + 1)
            # Row r of batch b starts at offset + r·row_length + b·num_steps: rows continue across batches.
            expected = offset + np.arange(BATCH)[:, None] * row_length + b * STEPS + np.arange(STEPS)
            np.testing.assert_array_equal(x, expected)


def test_sequential_partitioning_reproduces_d2l_printout_at_offset_zero():
    """d2l prints, for offset 0: X = [[0..4], [17..21]], [[5..9], [22..26]], [[10..14], [27..31]]."""
    for epoch in range(50):
        batches = _epoch(CORPUS.apply(sequential_partitioning(BATCH, STEPS, seed=0, epoch=epoch)))
        if batches[0][0][0, 0] == 0:
            break
    else:
        pytest.fail("no epoch with offset 0 among 50")
    assert [x.tolist() for x, _ in batches] == [
        [[0, 1, 2, 3, 4], [17, 18, 19, 20, 21]],
        [[5, 6, 7, 8, 9], [22, 23, 24, 25, 26]],
        [[10, 11, 12, 13, 14], [27, 28, 29, 30, 31]],
    ]
    assert [y.tolist() for _, y in batches][0] == [[1, 2, 3, 4, 5], [18, 19, 20, 21, 22]]


@pytest.mark.parametrize("transform", [random_sampling, sequential_partitioning])
def test_seeded_reproducible_and_new_offsets_each_epoch(transform):
    def epochs(seed, n=8):
        dataset = CORPUS.apply(transform(BATCH, STEPS, seed=seed))
        return [_epoch(dataset) for _ in range(n)]

    first, again, other = epochs(1), epochs(1), epochs(2)
    assert _first_tokens(first) == _first_tokens(again)
    for a, b in zip(first, again):
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert _first_tokens(first) != _first_tokens(other)
    offsets = {epoch[0][0][0, 0] % STEPS for epoch in first}
    assert len(offsets) > 1  # each iteration (epoch) draws a new offset
    # repeat() iterates the dataset again: the same epochs as two iterations of a fresh dataset.
    repeated = CORPUS.apply(transform(BATCH, STEPS, seed=1)).repeat(2)
    assert tuple(int(x[0, 0]) for x, _ in repeated.as_numpy_iterator()) == _first_tokens(first)[0] + _first_tokens(first)[1]


@pytest.mark.parametrize("transform", [random_sampling, sequential_partitioning])
def test_explicit_epochs_depend_on_seed_and_epoch_only(transform):
    def epoch(e):
        return _first_tokens([_epoch(CORPUS.apply(transform(BATCH, STEPS, seed=3, epoch=e)))])[0]

    first = [epoch(e) for e in range(4)]
    assert epoch(3) == first[3]
    assert len(set(first)) > 1
    # Inside a dataset of epochs (the trainer's flat_map), with the epoch as a tensor.
    flat = tf.data.Dataset.range(2, 4).flat_map(lambda e: CORPUS.apply(transform(BATCH, STEPS, seed=3, epoch=e)))
    assert tuple(int(x[0, 0]) for x, _ in flat.as_numpy_iterator()) == first[2] + first[3]


def test_token_chunks_are_concatenated_and_bad_inputs_rejected():
    chunks = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([list(range(10)), list(range(10, 35))]))
    whole = _epoch(CORPUS.apply(sequential_partitioning(BATCH, STEPS, seed=0, epoch=0)))
    pieces = _epoch(chunks.apply(sequential_partitioning(BATCH, STEPS, seed=0, epoch=0)))
    assert [x.tolist() for x, _ in pieces] == [x.tolist() for x, _ in whole]
    assert _epoch(tf.data.Dataset.range(3).apply(random_sampling(BATCH, STEPS, seed=0))) == []
    with pytest.raises(ValueError, match="integer token ids"):
        tf.data.Dataset.from_tensor_slices(["a", "b"]).apply(random_sampling(BATCH, STEPS, seed=0))
    with pytest.raises(ValueError, match="positive"):
        random_sampling(0, STEPS, seed=0)
