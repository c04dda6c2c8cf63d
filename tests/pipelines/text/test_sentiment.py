"""pipelines.text.sentiment: the synthetic sentiment task's labelling rule, uniqueness, balance and baselines."""

import numpy as np

from pipelines.text import sentiment


def label_by_reading(text: str) -> int:
    """The rule read back from a sentence: the main clause's adjective, flipped by its negation."""
    body = text.rstrip(".")
    if ", but " in body:
        main = body.split(", but ")[1]
    elif body.startswith("although "):
        main = body.split(", ", 1)[1]
    elif ", although " in body:
        main = body.split(", although ")[0]
    else:
        main = body
    words = main.split()
    negated = any(w in sentiment.NEGATIONS for w in words)
    return int((words[-1] in sentiment.POSITIVE) != negated)


def test_labels_follow_the_main_clause_and_its_negation():
    texts, labels = sentiment.sentences(2000, seed=3)
    assert [label_by_reading(t) for t in texts] == labels.tolist()
    assert sentiment.sentences(50, seed=3)[0] == texts[:50]  # seeded


def test_examples_by_hand():
    assert label_by_reading("the parser is not reliable.") == 0
    assert label_by_reading("the parser is slow, but the module is never broken.") == 1
    assert label_by_reading("although the parser is fast, the module was hardly useful.") == 0
    assert label_by_reading("the module was useful, although the parser is broken.") == 1


def test_sentences_are_unique_balanced_and_use_every_form_and_word():
    texts, labels = sentiment.sentences(3000, seed=0)
    assert len(set(texts)) == 3000 and abs(labels.mean() - 0.5) < 0.04
    assert sum(", but " in t for t in texts) > 600 and sum(t.startswith("although ") for t in texts) > 600
    assert sum(", although " in t for t in texts) > 600 and sum("," not in t for t in texts) > 600
    words = {w for t in texts for w in t.replace(",", "").replace(".", "").split()}
    assert set(sentiment.POSITIVE) | set(sentiment.NEGATIVE) | set(sentiment.NEGATIONS) <= words


def test_splits_are_disjoint_and_seeded():
    splits = sentiment.load(500, seed=2)
    parts = [[t for t, _ in s.as_numpy_iterator()] for s in (splits.train, splits.validation, splits.test)]
    assert [len(p) for p in parts] == [400, 50, 50]
    assert not set(parts[0]) & set(parts[2]) and not set(parts[0]) & set(parts[1])
    again = sentiment.load(500, seed=2)
    assert [t for t, _ in again.test.as_numpy_iterator()] == parts[2]


def test_a_bag_of_words_cannot_solve_it_but_reading_the_rule_can():
    texts, labels = sentiment.sentences(3000, seed=1)
    x, vocabulary = sentiment.bag_of_words(texts[:2400])
    w = sentiment.logistic_regression(x, labels[:2400])
    x_test, _ = sentiment.bag_of_words(texts[2400:], vocabulary)
    accuracy = np.mean((np.c_[x_test, np.ones(len(x_test))] @ w > 0) == labels[2400:])
    assert 0.4 < accuracy < 0.75


def test_bag_of_words_features_and_logistic_regression_by_hand():
    x, vocabulary = sentiment.bag_of_words(["a b a.", "c"], ngram=2)
    assert vocabulary == {"a": 0, "b": 1, "a b": 2, "b a": 3, "c": 4}
    assert x.tolist() == [[2, 1, 1, 1, 0], [0, 0, 0, 0, 1]]
    unseen, _ = sentiment.bag_of_words(["d a"], vocabulary)
    assert unseen.tolist() == [[1, 0, 0, 0, 0]]
    w = sentiment.logistic_regression(np.array([[1.0, 0.0], [0.0, 1.0]] * 5), np.array([1, 0] * 5))
    assert w[0] > 0 > w[1]
