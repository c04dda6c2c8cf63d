import numpy as np
import pytest
import tensorflow as tf

from tfmodels.config import TrainConfig, resolve
from tfmodels.training.fit import training_dataset

N, BATCH = 10, 4


def _epochs(seed, initial_epoch=0, **overrides):
    cfg = resolve(TrainConfig, "default", {"seed": seed, "epochs": 3, **overrides})
    ds = training_dataset(tf.data.Dataset.range(N), cfg, BATCH, N, initial_epoch)
    batches = [b.tolist() for b in ds.as_numpy_iterator()]
    per_epoch = len(batches) // (3 - initial_epoch)
    return [sum(batches[i : i + per_epoch], []) for i in range(0, len(batches), per_epoch)]


@pytest.mark.parametrize("seed", [0, 7])
def test_each_epoch_is_a_seeded_permutation_that_a_resume_reproduces(seed):
    epochs = _epochs(seed)
    assert len(epochs) == 3 and all(sorted(e) == list(range(N)) for e in epochs)
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    assert _epochs(seed) == epochs  # repeatable
    assert _epochs(seed, initial_epoch=1) == epochs[1:]  # a resumed run sees the same batches


def test_batches_never_cross_epochs_and_repeats_multiply_steps():
    cfg = resolve(TrainConfig, "default", {"epochs": 2, "repeats_per_epoch": 3, "shuffle": False})
    sizes = [len(b) for b in training_dataset(tf.data.Dataset.range(N), cfg, BATCH, N, 0).as_numpy_iterator()]
    assert sizes == [4, 4, 2] * 6
    assert np.array_equal(next(iter(training_dataset(tf.data.Dataset.range(N), cfg, BATCH, N, 0))), [0, 1, 2, 3])


def test_element_transforms_draw_per_epoch_and_position_and_a_resume_draws_the_same():
    cfg = resolve(TrainConfig, "default", {"seed": 3, "epochs": 3})
    examples = tf.data.Dataset.range(N).map(lambda i: (i, i))

    def noisy(seed, x, y):  # each example gets a draw of its own stateless seed
        return x, tf.random.stateless_uniform([], seed, maxval=1000, dtype=tf.int64)

    def draws(initial_epoch):
        ds = training_dataset(examples, cfg, BATCH, N, initial_epoch, element_transform=noisy)
        pairs = [(int(x), int(d)) for xs, ds_ in ds.as_numpy_iterator() for x, d in zip(xs, ds_)]
        return [pairs[i : i + N] for i in range(0, len(pairs), N)]

    epochs = draws(0)
    assert len(epochs) == 3 and all(sorted(x for x, _ in epoch) == list(range(N)) for epoch in epochs)
    assert [d for _, d in epochs[0]] != [d for _, d in epochs[1]]  # fresh draws every epoch
    assert len({d for _, d in epochs[0]}) > N // 2  # and per example
    assert draws(1) == epochs[1:]  # a resumed run draws exactly what the uninterrupted one did
