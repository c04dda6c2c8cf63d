"""The notes' BLEU (notes-002-part2 §42, seed lines 3435–3462).

NLTK and sacreBLEU are not dependencies, and their (Papineni) BLEU uses other weights, so the
cross-checks are cases worked by hand from the notes' formula
``BLEU = exp(min(0, 1 − len_label/len_pred)) · Π_{n=1..k} p_n^(1/2^n)``:

1. the notes' example, prediction A B B C D, label A B C D E F: p1 = 4/5, p2 = 3/4, p3 = 1/3,
   p4 = 0/2; penalty exp(1 − 6/5) = e^−0.2 = 0.8187308;
   k = 2: 0.8187308 · 0.8944272 · 0.9306049 = 0.6814773; k = 3: · (1/3)^(1/8) = 0.8716855 → 0.5940339;
   k = 4: p4 = 0 → 0. (Papineni's uniform weights, N = 2, would give e^−0.2·(4/5·3/4)^(1/2) = 0.634.)
2. a short prediction, "a b" for "a b c d": p1 = p2 = 1, penalty exp(1 − 4/2) = e^−1 = 0.367879.
3. a long prediction, "a b c d e" for "a b c": no penalty; p1 = 3/5, p2 = 2/4 →
   (3/5)^(1/2)·(1/2)^(1/4) = 0.7745967 · 0.8408964 = 0.6513556.
4. clipping, "the the the" for "the" (k = 1): p1 = 1/3 (not 3/3), no penalty → (1/3)^(1/2) = 0.5773503.
5. a one-token prediction with k = 2 has no bigram: p2 is left out; "a" for "a b" → e^−1.
6. corpus: (A B B C D | A B C D E F) and (a b | a b): lengths 7 and 8, p1 = 6/7, p2 = 4/5 →
   e^(1 − 8/7) · (6/7)^(1/2) · (4/5)^(1/4) = 0.8668779 · 0.9258201 · 0.9457416 = 0.7590267.
"""

import math

import pytest

import tfmodels.metrics
from tfmodels.metrics import bleu, corpus_bleu
from tfmodels.metrics.bleu import ngram_matches

PRED, LABEL = "A B B C D", "A B C D E F"


def test_notes_example_precisions():
    assert [ngram_matches(PRED, LABEL, n) for n in (1, 2, 3, 4)] == [(4, 5), (3, 4), (1, 3), (0, 2)]


def test_notes_example_scores():
    assert round(bleu(PRED, LABEL, k=2), 4) == 0.6815
    assert bleu(PRED, LABEL, k=2) == pytest.approx(math.exp(-0.2) * (4 / 5) ** 0.5 * (3 / 4) ** 0.25, rel=1e-12)
    assert bleu(PRED, LABEL, k=2) == pytest.approx(0.6814773, abs=1e-7)
    assert bleu(PRED, LABEL, k=3) == pytest.approx(0.5940339, abs=1e-7)
    assert bleu(PRED, LABEL, k=4) == 0.0
    assert bleu(PRED.split(), LABEL.split(), k=2) == bleu(PRED, LABEL, k=2)  # token lists or strings


def test_perfect_match_and_no_overlap():
    for k in (1, 2, 4):
        assert bleu("the cat sat on the mat", "the cat sat on the mat", k=k) == 1.0
        assert bleu([3, 1, 4, 1, 5], [3, 1, 4, 1, 5], k=k) == 1.0
        assert bleu("x y z", "a b c", k=k) == 0.0


def test_brevity_penalty_only_for_short_predictions():
    assert bleu("a b", "a b c d", k=2) == pytest.approx(math.exp(-1))
    assert bleu("a b c d e", "a b c", k=2) == pytest.approx(0.6513556, abs=1e-7)


def test_clipped_counts_and_short_predictions():
    assert ngram_matches("the the the", "the", 1) == (1, 3)
    assert bleu("the the the", "the", k=1) == pytest.approx(0.5773503, abs=1e-7)
    assert bleu("a", "a", k=4) == 1.0
    assert bleu("a", "a b", k=2) == pytest.approx(math.exp(-1))
    assert bleu("", "a b", k=2) == 0.0
    assert bleu("", "", k=2) == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        bleu("a", "a", k=0)


def test_corpus_bleu_aggregates_counts():
    assert corpus_bleu([PRED], [LABEL], k=3) == bleu(PRED, LABEL, k=3)
    assert corpus_bleu([PRED, "a b"], [LABEL, "a b"], k=2) == pytest.approx(0.7590267, abs=1e-7)
    with pytest.raises(ValueError):
        corpus_bleu([PRED], [LABEL, LABEL])
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_bleu([], [])


def test_exported_from_tfmodels_metrics():
    assert tfmodels.metrics.bleu is bleu and callable(bleu)
