"""BLEU as the notes define it (notes-002-part2 §42, seed lines 3435–3462).

    BLEU = exp(min(0, 1 − len_label / len_pred)) · Π_{n=1..k} p_n^(1 / 2^n)

``p_n`` is the n-gram precision of the prediction: the number of its n-grams that also occur in
the label, each counted at most as often as it occurs there ("clipped": in the notes' example
the second B of ``A B B C D`` is unmatched because the label has one B), over the number of
n-grams in the prediction. The first factor is the brevity penalty: a prediction shorter than
the label is penalised, a longer one is not. Identical sequences score 1; the maximum is 1.

The notes' worked example: prediction ``A B B C D``, label ``A B C D E F`` gives
p1 = 4/5, p2 = 3/4, p3 = 1/3, p4 = 0/2 and BLEU = e^(−0.2)·(4/5)^(1/2)·(3/4)^(1/4) ≈ 0.6815 with
k = 2 (0.5940 with k = 3, 0 with k = 4).

How this differs from standard BLEU (Papineni et al., 2002, as in sacreBLEU or NLTK):

* **weights**: standard BLEU is a geometric mean, ``exp(Σ_n w_n log p_n)`` with ``w_n = 1/N``
  (N = 4). The notes use ``w_n = 1/2^n`` (1/2, 1/4, 1/8, …), which do not sum to 1, and shrink
  towards longer n-grams: a factor ``p_n^(1/2^n)`` is closer to 1 the longer the n-gram. The
  notes call this giving long n-grams "more weight" (a poor long-n-gram precision costs less);
  in log space their influence is smaller.
* **brevity penalty**: the same formula, ``exp(1 − r/c)`` when the prediction is shorter; standard
  BLEU computes it once over a corpus with the reference length closest to each prediction.
* **references**: standard BLEU clips each n-gram against the maximum count over several
  references; the notes have one label.
* **corpus level**: standard BLEU sums the clipped matches, n-gram counts and lengths over the
  corpus before dividing (it is not the mean of sentence scores); :func:`corpus_bleu` does the
  same with the notes' weights and penalty.
* **no smoothing**: as in standard BLEU, one ``p_n = 0`` makes the score 0. Where the prediction
  is shorter than n it has no n-grams; that ``p_n`` (0/0) is left out of the product here (so
  identical short sequences still score 1, as the notes require); d2l's code divides by zero.
"""

from __future__ import annotations

import collections
import math
from typing import Iterable, Sequence

Tokens = Sequence  # a sequence of tokens (str or int), or a string split on whitespace


def _tokens(sequence) -> list:
    return sequence.split() if isinstance(sequence, str) else list(sequence)


def _ngrams(tokens: list, n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def ngram_matches(prediction: Tokens, label: Tokens, n: int) -> tuple[int, int]:
    """``(matches, total)`` for ``p_n``: clipped n-gram matches of the prediction and its n-gram count.

    Args:
        prediction: the predicted tokens (a string is split on whitespace).
        label: the label (reference) tokens.
        n: the n-gram order.

    Example (the notes' example, §42):
        >>> [ngram_matches("A B B C D", "A B C D E F", n) for n in (1, 2, 3, 4)]
        [(4, 5), (3, 4), (1, 3), (0, 2)]
    """
    predicted, reference = _ngrams(_tokens(prediction), n), _ngrams(_tokens(label), n)
    matches = sum(min(count, reference[gram]) for gram, count in predicted.items())
    return matches, sum(predicted.values())


def _score(matches: Sequence[int], totals: Sequence[int], len_pred: int, len_label: int) -> float:
    if len_pred == 0:
        return 1.0 if len_label == 0 else 0.0
    score = math.exp(min(0.0, 1.0 - len_label / len_pred))
    for n, (matched, total) in enumerate(zip(matches, totals), start=1):
        if total:  # an order with no n-grams in the prediction is left out (see the module docstring)
            score *= (matched / total) ** (0.5**n)
    return score


def bleu(prediction: Tokens, label: Tokens, k: int = 2) -> float:
    """The notes' BLEU of one prediction against one label (§42).

    Args:
        prediction: the predicted tokens (a list of str/int, or a string split on whitespace).
        label: the label tokens.
        k: the longest n-gram order; the notes' example and d2l's translation evaluation use 2.

    Returns:
        A score in [0, 1]; 1 for identical sequences. An empty prediction scores 0 (1 if the
        label is empty too).

    Example:
        >>> round(bleu("A B B C D", "A B C D E F", k=2), 4)
        0.6815
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    prediction, label = _tokens(prediction), _tokens(label)
    counts = [ngram_matches(prediction, label, n) for n in range(1, k + 1)]
    return _score([m for m, _ in counts], [t for _, t in counts], len(prediction), len(label))


def corpus_bleu(predictions: Iterable[Tokens], labels: Iterable[Tokens], k: int = 2) -> float:
    """The notes' BLEU over a corpus: matches, n-gram counts and lengths summed before dividing.

    ``p_n = Σ matches_n / Σ n-grams_n`` and the brevity penalty uses the total lengths, as
    Papineni's corpus BLEU aggregates; the weights ``1/2^n`` and the penalty are the notes'. For
    one pair it equals :func:`bleu`.

    Args:
        predictions: the predicted token sequences.
        labels: one label sequence per prediction.
        k: the longest n-gram order.

    Example (lengths 7 and 8, p1 = (4+2)/(5+2), p2 = (3+1)/(4+1)):
        >>> round(corpus_bleu(["A B B C D", "a b"], ["A B C D E F", "a b"], k=2), 4)
        0.759
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    matches, totals = [0] * k, [0] * k
    len_pred = len_label = pairs = 0
    for prediction, label in zip(predictions, labels, strict=True):
        prediction, label = _tokens(prediction), _tokens(label)
        for n in range(1, k + 1):
            matched, total = ngram_matches(prediction, label, n)
            matches[n - 1] += matched
            totals[n - 1] += total
        len_pred, len_label, pairs = len_pred + len(prediction), len_label + len(label), pairs + 1
    if pairs == 0:
        raise ValueError("corpus_bleu of an empty corpus")
    return _score(matches, totals, len_pred, len_label)
