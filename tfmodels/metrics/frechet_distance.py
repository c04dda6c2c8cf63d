"""Fréchet distance between two sets of feature vectors: FID's formula on any feature extractor.

Heusel et al. 2017 (FID), paper default: fit a Gaussian to each set of features and report

    d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})

FID proper uses Inception-v3 pool features of 299² colour images; for digits, where Inception's
features do not fit, the usual practice is the same formula on a digit classifier's features
(issue 16). The distance is biased upwards for small sets, so compare numbers computed with the
same number of samples per set (the real-vs-real floor is the reference).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N−1) covariance of ``features`` ``[N, D]``, in float64.

    Example:
        >>> mean, cov = gaussian_statistics([[0.0, 1.0], [2.0, 3.0]])
        >>> mean.tolist(), cov.tolist()
        ([1.0, 2.0], [[2.0, 2.0], [2.0, 2.0]])
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance d² between Gaussians fitted to two feature sets (module docstring).

    Args:
        features_a, features_b: ``[N_a, D]`` and ``[N_b, D]`` feature vectors.

    Returns:
        d² ≥ 0 (the FID convention reports the squared distance).

    Example:
        >>> a = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]
        >>> round(frechet_distance(a, a), 6)
        0.0
        >>> round(frechet_distance(a, np.asarray(a) + [3.0, 4.0]), 6)   # a shift: ‖μ_a − μ_b‖² = 25
        25.0
    """
    mean_a, cov_a = gaussian_statistics(features_a)
    mean_b, cov_b = gaussian_statistics(features_b)
    if mean_a.shape != mean_b.shape:
        raise ValueError(f"feature widths differ: {mean_a.shape[0]} vs {mean_b.shape[0]}")
    with warnings.catch_warnings():  # singular products are expected (a repeated image has Σ = 0)
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(root):  # round-off on (near-)singular products leaves tiny imaginary parts
        root = root.real
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root)
    return float(max(distance, 0.0))
