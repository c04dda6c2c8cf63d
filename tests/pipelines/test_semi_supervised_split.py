"""The labelled / unlabelled split and the training elements of semi-supervised runs."""

import math

import numpy as np
import pytest

from pipelines import semi_supervised
from pipelines.sources import DataSourceError
from pipelines.splits import Splits

LABELS = np.repeat(np.arange(4), 30)[np.random.default_rng(7).permutation(120)]


def test_split_is_seeded_disjoint_and_has_exactly_n_per_class():
    labelled, unlabelled = semi_supervised.split_labelled(LABELS, 5, 4, seed=3)
    again = semi_supervised.split_labelled(LABELS, 5, 4, seed=3)
    other = semi_supervised.split_labelled(LABELS, 5, 4, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((labelled, unlabelled), again))
    assert not np.array_equal(labelled, other[0])
    assert np.bincount(LABELS[labelled], minlength=4).tolist() == [5, 5, 5, 5]
    assert not set(labelled) & set(unlabelled)
    assert sorted([*labelled, *unlabelled]) == list(range(120))  # the rest is unlabelled
    limited = semi_supervised.split_labelled(LABELS, 5, 4, seed=3, num_unlabelled=10)[1]
    assert limited.tolist() == unlabelled[:10].tolist()


def test_split_refuses_a_class_with_too_few_examples():
    with pytest.raises(DataSourceError, match="class 4 has 0"):
        semi_supervised.split_labelled(LABELS, 5, 5, seed=0)


@pytest.mark.parametrize("num_labelled, num_unlabelled, mu", [(8, 50, 7), (20, 30, 3)])
def test_every_image_is_in_an_element_and_an_epoch_is_one_pass_over_the_unlabelled(num_labelled, num_unlabelled, mu):
    labelled, unlabelled = semi_supervised.element_groups(num_labelled, num_unlabelled, mu, seed=1)
    count = max(math.ceil(num_unlabelled / mu), num_labelled)
    assert labelled.shape == (count,) and unlabelled.shape == (count, mu)
    assert set(unlabelled.ravel()) == set(range(num_unlabelled)) and set(labelled) == set(range(num_labelled))
    # no image twice before every image has been used once
    assert len(set(unlabelled.ravel()[:num_unlabelled])) == num_unlabelled


def _source(n=40):
    """Images whose pixels hold their own index, so elements can be traced back to the source."""
    images = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones([1, 2, 2, 1], np.float32)
    return images, np.arange(n) % 4


def test_elements_carry_b_labelled_and_mu_unlabelled_with_their_hidden_labels():
    images, labels = _source()
    subset = semi_supervised.subset_record(labels, 2, 4, seed=0)
    source = Splits(None, "validation", "test", {"source": "s"})
    splits = semi_supervised.semi_supervised_splits(source, images, labels, subset, mu=3, seed=0)
    assert (splits.validation, splits.test) == ("validation", "test")  # untouched
    seen_unlabelled = set()
    for x, y in splits.train.as_numpy_iterator():
        index = int(x["labelled"][0, 0, 0])
        assert index in subset["labelled"] and y["label"] == labels[index]
        unlabelled = x["unlabelled"][:, 0, 0, 0].astype(int)
        assert x["unlabelled"].shape == (3, 2, 2, 1) and set(unlabelled) <= set(subset["unlabelled"])
        assert y["hidden_labels"].tolist() == labels[unlabelled].tolist()
        seen_unlabelled |= set(unlabelled)
    assert seen_unlabelled == set(subset["unlabelled"])
    assert splits.info["sizes"]["labelled"] == 8 and splits.info["sizes"]["unlabelled"] == 32


def test_a_source_that_changed_since_the_run_began_is_refused():
    images, labels = _source()
    subset = semi_supervised.subset_record(labels, 2, 4, seed=0)
    changed = (labels + 1) % 4
    with pytest.raises(DataSourceError, match="no longer holds"):
        semi_supervised.semi_supervised_splits(Splits(None, None, None, {}), images, changed, subset, mu=3, seed=0)
