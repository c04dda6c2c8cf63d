"""How much of a run's data is held in memory: split caches and the shuffle buffer, within a budget.

``cache`` (config):

* ``auto``: a split is cached in memory when its estimated size fits its share of
  ``cache_budget_mb`` (the training split the whole budget, validation and test a quarter each);
  a larger one streams from its source every epoch (TFDS and TFRecord sources read their files
  in parallel), so ImageNet at 224x224 (about 770 GB as float pixels) never has to fit in RAM;
* ``memory``: every split in RAM; ``disk``: every split in cache files under the run folder
  (``cache/``, removed when the run's fit stage starts again); ``none``: every split streams.

The shuffle buffer (``shuffle_buffer=0``) is the whole training set when it fits in half the
budget, otherwise as many examples as fit there, and never fewer than 1,024.

Sizes are estimated from one example of the split (strings by their length) times its size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow as tf

from tfmodels.config import TrainConfig

SHARES = {"train": 1.0, "validation": 0.25, "test": 0.25}
MIN_SHUFFLE_BUFFER = 1024


def example_bytes(split: tf.data.Dataset) -> int:
    """The size of the split's first example in bytes (a string counts its length)."""
    first = next(iter(split.take(1)))
    total = 0
    for tensor in tf.nest.flatten(first):
        if tensor.dtype == tf.string:
            total += int(tf.reduce_sum(tf.strings.length(tensor)))
        else:
            total += int(tf.size(tensor)) * tensor.dtype.size
    return max(total, 1)


def budget_bytes(cfg: TrainConfig) -> int:
    return cfg.cache_budget_mb * 2**20


def cache_split(split: tf.data.Dataset, name: str, size_bytes: int, cfg: TrainConfig, cache_dir: Path) -> tf.data.Dataset:
    """``split`` cached as ``cfg.cache`` says (``name``: train, validation or test)."""
    mode = cfg.cache
    if mode == "auto":
        mode = "memory" if size_bytes <= SHARES[name] * budget_bytes(cfg) else "none"
        if mode == "none":
            print(f"Note: the {name} split (~{size_bytes >> 20} MiB) is over its cache budget; it streams from its source")
    if mode == "memory":
        return split.cache()
    if mode == "disk":
        cache_dir.mkdir(parents=True, exist_ok=True)
        return split.cache(str(cache_dir / name))
    return split


def clear_disk_cache(cache_dir: Path) -> None:
    """Removes cache files (and the lock files a killed run leaves) before a fit starts."""
    shutil.rmtree(cache_dir, ignore_errors=True)


def shuffle_buffer(cfg: TrainConfig, n_train: int, bytes_per_example: int) -> int:
    """``cfg.shuffle_buffer``, or the whole training set within half the budget (at least 1,024)."""
    if cfg.shuffle_buffer:
        return cfg.shuffle_buffer
    fits = budget_bytes(cfg) // 2 // bytes_per_example
    return int(min(n_train, max(MIN_SHUFFLE_BUFFER, fits)))
