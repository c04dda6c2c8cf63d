"""A synthetic sentiment task about code whose labels need context: negation and the main clause.

notes-002-part2.md §54 (seed 002 L3867-3873) fine-tunes BERT for sentiment analysis — a sentence
in, positive/negative out — on a labelled set the notes do not name, and §54's tests ask for a
synthetic one. "Contains word X" (§54's test idea) is solved by a bag of words, so it says nothing
about what pre-training adds; this task is built so that word counts are not enough:

* a **clause** is ``<subject> <verb> [<negation>] <adjective>``: "the parser is not reliable";
  subjects and verbs are Python-documentation words, adjectives are 12 positive and 12 negative
  ones, the negation ("not", "never", "hardly") appears in 30% of the clauses (with 50% the label
  would be independent of every single word — an XOR — and fine-tuning the default encoder stayed
  at chance, 0.50 after 3 epochs: no word gives a first gradient signal; at 30% an adjective is
  70% evidence for its polarity, and the negations must still be learned on top);
* a **sentence** is one clause ("the parser is not reliable."), or two joined so that one is the
  main clause: "<other>, but <main>.", "although <other>, <main>." or "<main>, although <other>."
  (each form with probability 1/4);
* the **label** is the main clause's polarity: positive iff its adjective is positive XOR it is
  negated. The other clause is drawn independently, so its words carry no information.

A bag of words sees both adjectives and maybe two negations, but not which clause is the main one
nor which adjective a negation belongs to; the recipe reports how far it gets (unigram and bigram
logistic regression) beside the majority class. Sentences are unique (no test sentence is a
training sentence).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines.splits import Splits, split_indices

SUBJECTS = (
    "the function", "this method", "the module", "the new syntax", "this loop", "the iterator",
    "the class", "the decorator", "the generator", "this expression", "the parser", "the exception handler",
    "the interpreter", "the import system", "this statement", "the documentation",
)
VERBS = ("is", "was", "seems", "remains")
NEGATIONS = ("not", "never", "hardly")
POSITIVE = ("useful", "fast", "clear", "simple", "safe", "correct", "reliable", "efficient", "readable", "elegant", "robust", "helpful")
NEGATIVE = ("slow", "confusing", "broken", "unsafe", "wrong", "useless", "fragile", "awkward", "buggy", "verbose", "clumsy", "painful")
NEGATION_RATE = 0.3  # below 0.5, so that an adjective alone is evidence (see the module docstring)
FORMS = ("{main}.", "{other}, but {main}.", "although {other}, {main}.", "{main}, although {other}.")
CLASS_NAMES = ("negative", "positive")


def _clause(rng: np.random.Generator) -> tuple[str, int]:
    """A random clause and its sentiment (1 positive, 0 negative)."""
    positive = bool(rng.random() < 0.5)
    negated = bool(rng.random() < NEGATION_RATE)
    words = [SUBJECTS[rng.integers(len(SUBJECTS))], VERBS[rng.integers(len(VERBS))]]
    if negated:
        words.append(NEGATIONS[rng.integers(len(NEGATIONS))])
    adjectives = POSITIVE if positive else NEGATIVE
    words.append(adjectives[rng.integers(len(adjectives))])
    return " ".join(words), int(positive != negated)


def sentences(count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``count`` unique sentences of the task and their labels (0 negative, 1 positive).

    Args:
        count: how many sentences (the task has millions of distinct ones).
        seed: the generator's seed.

    Returns:
        ``(texts, labels int32 [count])``.

    Example:
        >>> texts, labels = sentences(3, seed=0)
        >>> len(set(texts)), labels.dtype
        (3, dtype('int32'))
    """
    rng = np.random.default_rng(seed)
    texts: dict[str, int] = {}
    while len(texts) < count:
        main, label = _clause(rng)
        other, _ = _clause(rng)
        texts.setdefault(FORMS[rng.integers(len(FORMS))].format(main=main, other=other), label)
    return list(texts), np.array(list(texts.values()), np.int32)


def load(count: int = 6000, fractions: tuple[float, float] = (0.1, 0.1), seed: int = 0) -> Splits:
    """The task as :class:`pipelines.splits.Splits` of ``(text, label)`` string/int32 scalars.

    Args:
        count: sentences in all splits together.
        fractions: validation and test shares.
        seed: seeds the sentences and the split.

    Example:
        >>> splits = load(100, seed=1)
        >>> splits.info["sizes"], splits.info["class_names"]
        ({'train': 80, 'validation': 10, 'test': 10}, ['negative', 'positive'])
    """
    texts, labels = sentences(count, seed)
    texts = np.array(texts, object)
    parts = split_indices(count, fractions, seed)
    data = [tf.data.Dataset.from_tensor_slices((texts[i].astype(bytes), labels[i])) for i in parts]
    info = {
        "source": "synthetic code-review sentiment with negation and main clauses (pipelines.text.sentiment)",
        "sizes": {name: len(i) for name, i in zip(("train", "validation", "test"), parts)},
        "class_names": list(CLASS_NAMES),
    }
    return Splits(*data, info)


def bag_of_words(texts: list[str], vocabulary: dict[str, int] | None = None, ngram: int = 1) -> tuple[np.ndarray, dict[str, int]]:
    """Word-count features (words, plus adjacent word pairs when ``ngram`` is 2) for a baseline.

    Punctuation is dropped; a feature unseen when ``vocabulary`` was built is ignored.

    Args:
        texts: sentences.
        vocabulary: feature → column; ``None`` builds it from ``texts``.
        ngram: 1 (bag of words) or 2 (bag of words and bigrams).

    Returns:
        ``(counts float32 [len(texts), features], vocabulary)``.

    Example:
        >>> x, vocab = bag_of_words(["a b, a."], ngram=2)
        >>> sorted(vocab), x.tolist()
        (['a', 'a b', 'b', 'b a'], [[2.0, 1.0, 1.0, 1.0]])
    """
    grams = []
    for text in texts:
        words = text.replace(",", " ").replace(".", " ").split()
        grams.append(words + [" ".join(pair) for pair in zip(words, words[1:])] * (ngram >= 2))
    if vocabulary is None:
        vocabulary = {g: i for i, g in enumerate(dict.fromkeys(g for row in grams for g in row))}
    counts = np.zeros((len(texts), len(vocabulary)), np.float32)
    for row, features in enumerate(grams):
        for g in features:
            if g in vocabulary:
                counts[row, vocabulary[g]] += 1
    return counts, vocabulary


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 2000, learning_rate: float = 0.5) -> np.ndarray:
    """Fits ``sigmoid([x, 1] · w)`` to 0/1 labels by full-batch gradient descent on the mean log loss + ``l2·|w|²/2``.

    Returns:
        ``w`` of shape ``[features + 1]`` (the last entry is the bias); predict with
        ``np.c_[x, ones] @ w > 0``.

    Example:
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> w = logistic_regression(x, np.array([0, 0, 1, 1]))
        >>> (np.c_[x, np.ones(4)] @ w > 0).astype(int).tolist()
        [0, 0, 1, 1]
    """
    features = np.c_[x, np.ones(len(x))]
    w = np.zeros(features.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(features @ w)))
        w -= learning_rate * (features.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0.0])
    return w
