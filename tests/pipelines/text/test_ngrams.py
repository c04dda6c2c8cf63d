"""N-gram counts in tf.data, Laplace smoothing and Zipf's law (notes-002-part2 §22–§24)."""

import collections
import re

import numpy as np
import pytest
import tensorflow as tf
from pydoc_data.topics import topics

from pipelines.text import ngrams
from pipelines.text.vocabulary import tokenized

PYDOC_TEXTS = [topics[k] for k in sorted(topics)]


def _sequences(lists):
    return tf.data.Dataset.from_tensor_slices(tf.ragged.constant(lists))


def _counter(sequences, n):
    return collections.Counter(gram for seq in sequences for gram in zip(*(seq[i:] for i in range(n))))


@pytest.fixture(scope="module")
def pydoc_counts():
    """Unigram, bigram and trigram counts of the pydoc topics at word level, one sequence per topic."""
    return ngrams.ngram_counts(tokenized(tf.data.Dataset.from_tensor_slices(PYDOC_TEXTS), "word"), 3)


def test_counts_equal_counter_on_pydoc(pydoc_counts):
    # Reference: d2l's Python normalisation and split, then collections.Counter.
    words = [re.sub("[^A-Za-z]+", " ", text).strip().lower().split() for text in PYDOC_TEXTS]
    for n, counts in enumerate(pydoc_counts, start=1):
        assert counts == _counter(words, n)
    assert sum(pydoc_counts[0].values()) == sum(map(len, words)) == 64_285
    assert pydoc_counts[0].most_common(3) == [(("the",), 4585), (("a",), 1958), (("is",), 1837)]


def test_counts_stay_inside_sequences_and_work_on_ids():
    assert ngrams.count_ngrams(_sequences([["a", "b"], ["c", "d"]]), 2) == {("a", "b"): 1, ("c", "d"): 1}
    assert ngrams.count_ngrams(_sequences([["a"], []]), 2) == {}
    ids = [[0, 1, 0, 1, 2], [1, 0, 1]]
    for n in (1, 2, 3):
        assert ngrams.count_ngrams(_sequences(ids), n) == _counter(ids, n)
    with pytest.raises(ValueError, match="at least 1"):
        ngrams.count_ngrams(_sequences(ids), 0)


@pytest.fixture(scope="module")
def toy_counts():
    """The spec's corpus "a b a b c" (§22): n = 5, n(a) = 2, n(a, b) = 2; m = 3."""
    return ngrams.ngram_counts(_sequences([["a", "b", "a", "b", "c"]]), 3)


def test_unsmoothed_probabilities_are_relative_frequencies(toy_counts):
    p = lambda gram: ngrams.laplace_probability(gram, toy_counts, vocab_size=3, epsilon=0.0)  # noqa: E731
    assert p(("a",)) == pytest.approx(2 / 5)
    assert p(("a",)) * p(("a", "b")) == pytest.approx(0.4)  # p(a, b) = n(a)/n · n(a, b)/n(a)
    assert p(("a", "b", "c")) == pytest.approx(1 / 2)  # n(a, b, c) / n(a, b)
    assert p(("a", "c")) == 0.0  # an unseen pair has probability 0 without smoothing


def test_laplace_smoothing_by_hand(toy_counts):
    """ε = 1, m = 3: P̂(a) = P̂(b) = (2 + 1/3)/(5 + 1) = 7/18, P̂(c) = (1 + 1/3)/6 = 2/9;
    P̂(b|a) = (2 + 7/18)/(2 + 1) = 43/54, P̂(c|a) = (0 + 2/9)/3 = 2/27 (unseen, now > 0);
    P̂(a|a, b) = (1 + 7/18)/(2 + 1) = 25/54; "c" is never followed, so P̂(·|c) = P̂(·)."""
    p = lambda gram: ngrams.laplace_probability(gram, toy_counts, vocab_size=3, epsilon=1.0)  # noqa: E731
    assert p(("a",)) == pytest.approx(7 / 18)
    assert p(("c",)) == pytest.approx(2 / 9)
    assert p(("a", "b")) == pytest.approx(43 / 54)
    assert p(("a", "c")) == pytest.approx(2 / 27)
    assert p(("a", "b", "a")) == pytest.approx(25 / 54)
    assert p(("c", "a")) == pytest.approx(7 / 18)
    # One ε per order: ε₂ = 0 leaves the bigram unsmoothed on top of a smoothed unigram.
    assert ngrams.laplace_probability(("a", "b"), toy_counts, 3, (1.0, 0.0, 1.0)) == pytest.approx(1.0)


@pytest.mark.parametrize("context", [(), ("a",), ("b",), ("c",), ("a", "b"), ("b", "c"), ("c", "c")])
@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_smoothed_conditionals_sum_to_one(toy_counts, context, epsilon):
    total = sum(ngrams.laplace_probability((*context, w), toy_counts, 3, epsilon) for w in "abc")
    assert total == pytest.approx(1.0)


def test_zipf_exponent_of_a_synthetic_zipf_sample():
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, 10_001)
    sample = rng.choice(10_000, size=200_000, p=p / p.sum())
    assert ngrams.zipf_exponent(collections.Counter(sample.tolist())) == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="too few ranks"):
        ngrams.zipf_exponent({"a": 3, "b": 1})


def test_zipf_on_pydoc_and_plot(pydoc_counts, tmp_path):
    exponents = [ngrams.zipf_exponent(c) for c in pydoc_counts]
    print("Zipf exponents of the pydoc word uni/bi/trigrams:", [round(a, 3) for a in exponents])
    # Words follow Zipf's law with alpha near 1; longer n-grams have flatter rank curves (§24).
    assert 0.9 < exponents[0] < 1.4
    assert exponents[0] > exponents[1] > exponents[2] > 0
    path = ngrams.plot_zipf(dict(zip(("unigram", "bigram", "trigram"), pydoc_counts)), tmp_path / "plots" / "zipf.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000
