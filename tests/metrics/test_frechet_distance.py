"""Fréchet distance (Heusel et al. 2017) against closed forms for Gaussians the formula solves by hand."""

import doctest

import numpy as np
import pytest

from tfmodels.metrics import frechet_distance as module
from tfmodels.metrics.frechet_distance import frechet_distance, gaussian_statistics


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0


def test_diagonal_covariances_match_the_closed_form():
    """Diagonal Σ: d² = Σ_i (μ_a − μ_b)_i² + (σ_a,i − σ_b,i)² for the sample statistics."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    b = rng.normal(size=(3000, 3)) * [3.0, 1.0, 0.5] + [1.0, 1.0, 2.0]
    # decorrelate exactly: make each set's sample covariance diagonal by whitening its off-diagonal part away
    a = _with_diagonal_covariance(a)
    b = _with_diagonal_covariance(b)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.sum((a.std(0, ddof=1) - b.std(0, ddof=1)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def _with_diagonal_covariance(x):
    """x with the same per-column mean and variance and an exactly diagonal sample covariance."""
    centred = x - x.mean(0)
    q, _ = np.linalg.qr(centred)  # orthonormal columns spanning the centred data
    return q * np.sqrt(len(x) - 1) * x.std(0, ddof=1) + x.mean(0)


def test_rotated_copy_of_a_set_is_at_the_distance_of_its_means_only_when_covariance_is_isotropic():
    rng = np.random.default_rng(1)
    a = _with_diagonal_covariance(rng.normal(size=(500, 4)))
    a = (a - a.mean(0)) / a.std(0, ddof=1)  # Σ = I exactly
    angle = 0.7
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    b = a @ rotation.T + 2.0
    assert frechet_distance(a, b) == pytest.approx(4 * 2.0**2, rel=1e-6)


def test_a_constant_set_against_another_set():
    """Σ_b = 0 (a repeated image, e.g. the training mean): d² = ‖μ_a − μ_b‖² + Tr Σ_a."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=(200, 5))
    b = np.tile(rng.normal(size=(1, 5)), (50, 1))
    mean, cov = gaussian_statistics(a)
    assert frechet_distance(a, b) == pytest.approx(np.sum((mean - b[0]) ** 2) + np.trace(cov), rel=1e-6)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="widths differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
