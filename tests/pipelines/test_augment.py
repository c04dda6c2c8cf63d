"""Training augmentation draws from per-op stateless streams of (seed, batch)."""

import inspect
import numpy as np
import pytest
import tensorflow as tf

from pipelines import augment
from pipelines.random_streams import batch_seed, stream_seed

POLICIES = [("notes", 0.2, 0.0), ("randaugment", 0.0, 1.0), ("none", 0.4, 1.0)]


def batch(n=8, size=32, classes=4):
    x = tf.random.stateless_uniform([n, size, size, 3], [1, 2], 0, 255)
    return x, tf.one_hot(np.arange(n) % classes, classes)


@pytest.mark.parametrize("policy, mixup, cutmix", POLICIES)
def test_the_same_seed_and_batch_give_the_same_output_another_seed_differs(policy, mixup, cutmix):
    x, y = batch()
    first = augment.batch_transform(policy, (32, 32), mixup, cutmix, seed=1)(x, y)
    again = augment.batch_transform(policy, (32, 32), mixup, cutmix, seed=1)(x, y)  # a new transform: no shared state
    other = augment.batch_transform(policy, (32, 32), mixup, cutmix, seed=2)(x, y)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())
    assert not np.array_equal(first[1].numpy(), other[1].numpy())  # other pairs mixed


def test_a_parallel_tf_data_map_draws_what_an_eager_call_draws():
    x, y = batch()
    fn = augment.batch_transform("notes", (32, 32), mixup=0.2, cutmix=1.0, seed=3)
    eager = fn(x, y)
    mapped = list(tf.data.Dataset.from_tensors((x, y)).repeat(3).map(fn, num_parallel_calls=3))
    for images, labels in mapped:
        np.testing.assert_array_equal(images.numpy(), eager[0].numpy())
        np.testing.assert_array_equal(labels.numpy(), eager[1].numpy())


def test_every_random_draw_of_every_op_has_its_own_seed(monkeypatch):
    """Crop, flip, rotation, contrast, brightness, MixUp and CutMix never share a seed (a shared one
    would make, e.g., the flips fall exactly where the contrast factor is below 1)."""
    x, y = batch()
    seeds = []

    def recording(op):
        def draw(*args, **kwargs):
            seeds.append(tuple(np.asarray(inspect.signature(op).bind(*args, **kwargs).arguments["seed"]).tolist()))
            return op(*args, **kwargs)

        return draw

    for name in ("stateless_uniform", "stateless_gamma"):
        monkeypatch.setattr(tf.random, name, recording(getattr(tf.random, name)))
    augment.batch_transform("notes", (32, 32), mixup=0.2, cutmix=1.0, seed=1)(x, y)
    # crop 2 + flip + rotation + contrast + brightness + MixUp 3 (shuffle, 2 gammas) + CutMix 6
    assert len(seeds) >= 15
    assert len(set(seeds)) == len(seeds)


def test_streams_are_keyed_by_seed_batch_and_op():
    x, _ = batch()
    base = batch_seed(1, x)
    flip = stream_seed(base, "flip").numpy()
    np.testing.assert_array_equal(stream_seed(batch_seed(1, x), "flip").numpy(), flip)
    for other in (stream_seed(base, "contrast"), stream_seed(batch_seed(2, x), "flip"), stream_seed(batch_seed(1, x[::-1]), "flip")):
        assert not np.array_equal(other.numpy(), flip)


def test_a_reordered_batch_gets_new_draws():
    x, y = batch()
    fn = augment.batch_transform("none", (32, 32), mixup=0.4, seed=1)
    _, labels = fn(x, y)
    _, reordered = fn(x[::-1], y[::-1])
    assert not np.allclose(labels.numpy(), reordered.numpy()[::-1])  # the next epoch's shuffle mixes other pairs
