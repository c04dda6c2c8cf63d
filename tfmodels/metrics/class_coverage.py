"""How a classifier sees a set of generated images: the share it labels with confidence, and how
evenly the predicted classes spread (mode coverage). Issue 16's companions to the Fréchet distance.

* ``confident_share``: the share of images whose top class probability exceeds a threshold (0.9):
  blurry or ambiguous samples fall below it.
* ``class_histogram_entropy``: the entropy, in bits, of the histogram of predicted classes;
  log₂ K for K equally frequent classes (3.32 for ten digits), 0 when every sample is one class
  (mode collapse).
"""

from __future__ import annotations

import numpy as np


def confident_share(probabilities, threshold: float = 0.9) -> float:
    """Share of rows of ``probabilities`` ``[N, K]`` whose largest entry is above ``threshold``.

    Example:
        >>> confident_share([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98], [0.5, 0.5]])
        0.5
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean(probabilities.max(axis=1) > threshold))


def class_histogram_entropy(probabilities) -> float:
    """Entropy in bits of the histogram of the argmax classes of ``probabilities`` ``[N, K]``.

    Example:
        >>> class_histogram_entropy(np.eye(4))                       # four classes, once each
        2.0
        >>> class_histogram_entropy([[0.9, 0.1], [0.8, 0.2]])       # one class only
        0.0
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log2(shares)).sum() + 0.0)
