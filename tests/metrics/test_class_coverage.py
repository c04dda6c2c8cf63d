"""Confident share and class-histogram entropy of classifier outputs on generated images."""

import doctest

import numpy as np
import pytest
import scipy.stats

from tfmodels.metrics import class_coverage as module
from tfmodels.metrics.class_coverage import class_histogram_entropy, confident_share


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0


def test_entropy_equals_scipy_on_the_argmax_histogram():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 10)) + np.linspace(0, 2, 10)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    counts = np.bincount(probabilities.argmax(1), minlength=10)
    assert class_histogram_entropy(probabilities) == pytest.approx(scipy.stats.entropy(counts, base=2))


def test_confident_share_uses_a_strict_threshold():
    assert confident_share([[0.9, 0.1], [0.91, 0.09]], threshold=0.9) == 0.5
