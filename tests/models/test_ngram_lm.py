"""The Laplace-smoothed n-gram language model (notes-002-part2 §22–§23) and its perplexity (§33)."""

import collections
import math

import numpy as np
import pytest
import tensorflow as tf
from pydoc_data.topics import topics

from pipelines.text import ngrams
from pipelines.text.vocabulary import Vocabulary, tokenized
from tfmodels.models.ngram_lm import NgramLanguageModel

TOY = [[0, 1, 0, 1, 2], [1, 0, 2, 2]]  # ids of "a b a b c" and "b a c c", m = 4 (id 3 never seen)


def _counts(sequences, order):
    return [
        collections.Counter(g for s in sequences for g in zip(*(s[i:] for i in range(n)))) for n in range(1, order + 1)
    ]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("epsilon", [0.5, (1.0, 2.0, 0.3)])
def test_matches_the_spec_formula_and_sums_to_one(order, epsilon):
    eps = epsilon[:order] if isinstance(epsilon, tuple) else epsilon
    lm = NgramLanguageModel(vocab_size=4, order=order, epsilon=eps).fit(_counts(TOY, order))
    for history in ([], [0], [2], [3], [0, 1], [1, 0, 2], [3, 3]):
        dist = lm.distribution(history)
        assert dist.sum() == pytest.approx(1.0)
        context = tuple(history[len(history) - order + 1 :]) if order > 1 and history else ()
        for token in range(4):
            expected = ngrams.laplace_probability((*context, token), _counts(TOY, 3), 4, eps)
            assert dist[token] == pytest.approx(expected)
            assert lm.probability(token, history) == pytest.approx(expected)


def test_unsmoothed_bigram_and_perplexity_definition():
    lm = NgramLanguageModel(vocab_size=4, order=2, epsilon=0.0).fit(_counts(TOY, 2))
    # p(0) = 3/9, p(1 | 0) = n(0, 1) / n(0 followed) = 2/3, p(2 | 1) = 1/3.
    assert math.exp(lm.log_probability([0, 1, 2])) == pytest.approx(3 / 9 * 2 / 3 * 1 / 3)
    expected = math.exp(-(math.log(3 / 9) + math.log(2 / 3) + math.log(1 / 3) + math.log(3 / 9)) / 4)
    assert lm.perplexity([[0, 1, 2], [0]]) == pytest.approx(expected)  # token-weighted mean NLL
    assert lm.perplexity([[3]]) == math.inf  # an unseen token: probability 0 without smoothing


@pytest.mark.parametrize("order", [1, 2, 3])
def test_uniform_model_perplexity_is_the_vocabulary_size(order):
    lm = NgramLanguageModel(vocab_size=37, order=order, epsilon=1.0).fit([{}] * order)
    rng = np.random.default_rng(0)
    assert lm.perplexity([rng.integers(0, 37, 50).tolist() for _ in range(3)]) == pytest.approx(37.0, rel=1e-12)


def test_sampling_is_seeded_and_follows_the_counts():
    lm = NgramLanguageModel(vocab_size=4, order=2, epsilon=0.5).fit(_counts(TOY, 2))
    first = lm.sample([0], 30, seed=7)
    assert first == lm.sample([0], 30, seed=7)
    assert first != lm.sample([0], 30, seed=8)
    assert len(first) == 30 and set(first) <= {0, 1, 2, 3}
    # A deterministic chain (ε = 0): 0 → 1 → 2 → 0 …
    chain = NgramLanguageModel(vocab_size=3, order=2, epsilon=0.0).fit(_counts([[0, 1, 2] * 5], 2))
    assert chain.sample([2], 6, seed=0) == [0, 1, 2, 0, 1, 2]
    # Empirical next-token frequencies approach the distribution.
    draws = collections.Counter(lm.sample([], 1, seed=s)[0] for s in range(2000))
    np.testing.assert_allclose([draws[t] / 2000 for t in range(4)], lm.distribution([]), atol=0.03)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        NgramLanguageModel(vocab_size=2, order=1).fit(_counts(TOY, 1))
    with pytest.raises(ValueError, match="counts up to 3-grams"):
        NgramLanguageModel(vocab_size=4, order=3).fit(_counts(TOY, 2))
    with pytest.raises(ValueError, match="epsilon"):
        NgramLanguageModel(vocab_size=4, order=2, epsilon=(1.0,))
    with pytest.raises(RuntimeError, match="fit"):
        NgramLanguageModel(vocab_size=4).perplexity([[0]])


def test_pydoc_held_out_perplexity_falls_from_unigram_to_trigram():
    """Every 10th pydoc topic (sorted by name) is held out; words seen fewer than 2 times are <unk>.

    Measured (ε = 1): unigram 397.7, bigram 529.2, trigram 264.1 (vocabulary 2,245, 4,628 held-out
    tokens); ε = 10: 397.7, 272.5, 203.1. With ε = 1 the bigram model gives too little mass to the
    many unseen bigrams of the held-out text, so it is worse than the unigram model.
    """
    names = sorted(topics)
    held_out = set(names[::10])
    train = tf.data.Dataset.from_tensor_slices([topics[k] for k in names if k not in held_out])
    test = tf.data.Dataset.from_tensor_slices([topics[k] for k in sorted(held_out)])
    vocab = Vocabulary.from_texts(train, "word", min_freq=2)
    counts = ngrams.ngram_counts(tokenized(train, "word").map(vocab.lookup), 3)
    test_ids = [ids.tolist() for ids in tokenized(test, "word").map(vocab.lookup).as_numpy_iterator()]
    perplexities = {
        (order, eps): NgramLanguageModel(vocab.size, order, eps).fit(counts).perplexity(test_ids)
        for order in (1, 2, 3)
        for eps in (1.0, 10.0)
    }
    print("pydoc held-out perplexity (order, epsilon):", {k: round(v, 1) for k, v in perplexities.items()})
    assert (vocab.size, sum(map(len, test_ids))) == (2245, 4628)
    for eps in (1.0, 10.0):
        assert perplexities[3, eps] < perplexities[1, eps] < vocab.size
    assert perplexities[3, 10.0] < perplexities[2, 10.0] < perplexities[1, 10.0]
