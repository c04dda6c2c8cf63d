"""Train / validation / test splits as unbatched ``tf.data`` datasets.

Recipes hand the trainer unbatched ``(features, label)`` datasets; the trainer owns caching,
shuffling, batching and prefetching, so that every model gets the same, correct input pipeline.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Splits:
    """Unbatched datasets of examples: ``(features, label)`` pairs for the trainer, or plain
    documents (strings) for a text corpus before it becomes examples.

    Args:
        train: training examples.
        validation: examples that select the best checkpoint and drive plateau schedules.
        test: held-out examples, evaluated once after training.
        info: facts about the data for logs and reports (source, sizes, class names, ...).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def split_indices(
    n: int, fractions: tuple[float, float] = (0.1, 0.1), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, disjoint train / validation / test index arrays covering ``range(n)``.

    ``fractions`` are the validation and test shares; the rest is training data.

    Example:
        >>> train, val, test = split_indices(100, (0.1, 0.25), seed=0)
        >>> len(train), len(val), len(test)
        (65, 10, 25)
    """
    val_fraction, test_fraction = fractions
    if n < 3 or not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"cannot split {n} examples with fractions {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * val_fraction)))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def from_arrays(
    x: Any, y: np.ndarray, fractions: tuple[float, float] = (0.1, 0.1), seed: int = 0, **info: Any
) -> Splits:
    """Splits in-memory arrays (``x`` may be a dict of arrays) into :class:`Splits`."""
    train, val, test = split_indices(len(y), fractions, seed)

    def take(idx: np.ndarray) -> tf.data.Dataset:
        features = {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]
        return tf.data.Dataset.from_tensor_slices((features, y[idx]))

    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    return Splits(take(train), take(val), take(test), {"sizes": sizes, **info})
