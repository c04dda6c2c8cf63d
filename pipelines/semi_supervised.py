"""Labelled and unlabelled parts of a classification source, and the elements a semi-supervised run trains on.

Spec: notes-001.md §31-32 (Mean Teacher, FixMatch: few labels, many unlabelled images) and issue 17
("a split of any classification source into a small labelled part, e.g. 10 labels per class;
the rest is unlabelled, its labels dropped before the model sees it; seeded").

**Split** (:func:`split_labelled`): a seeded permutation of the source's training split; per class
the first ``labels_per_class`` examples of that order are labelled, all others unlabelled (in the
same seeded order, optionally only the first ``num_unlabelled``). The validation and test splits
are untouched, so a run's test set is the fully supervised model's.

**Elements** (:func:`training_elements`), FixMatch's batch composition (Sohn et al. 2020 §3: B
labelled and μ·B unlabelled images per step, paper default) through the trainer's ordinary
batching: every element holds *one* labelled image and *μ* unlabelled ones, so a batch of B
elements holds B and μ·B. One epoch is one pass over the unlabelled images (the last group wraps
around to the start); the labelled images cycle, each about ``elements / labelled`` times per
epoch. The grouping is fixed per ``seed`` (the trainer reshuffles the elements every epoch)::

    ({"labelled": [H, W, C], "unlabelled": [μ, H, W, C]},
     {"label": int32 [], "hidden_labels": int32 [μ]})

``hidden_labels`` are the true classes of the unlabelled images. They are kept *only* to measure
how often pseudo-labels are right (a monitoring metric, as the FixMatch paper's pseudo-label
accuracy); the training losses never read them (tested: permuting them changes nothing).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from pipelines.sources import DataSourceError
from pipelines.splits import Splits

LABELLED, UNLABELLED = "labelled", "unlabelled"
LABEL, HIDDEN_LABELS = "label", "hidden_labels"


def split_labelled(
    labels: np.ndarray, labels_per_class: int, num_classes: int, seed: int, num_unlabelled: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded labelled / unlabelled index arrays into ``labels`` (module docstring).

    Args:
        labels: the training split's classes, int ``[N]``.
        labels_per_class: labelled examples of each class.
        num_classes: K; every class in ``[0, K)`` must have ``labels_per_class`` examples.
        seed: the split's seed (the run's ``data_seed``).
        num_unlabelled: keep only this many unlabelled examples (0: all the rest).

    Returns:
        ``(labelled, unlabelled)``: disjoint int64 index arrays; ``labelled`` sorted, K ·
        ``labels_per_class`` long; ``unlabelled`` in the seeded order.

    Raises:
        DataSourceError: a class has fewer than ``labels_per_class`` examples.

    Example:
        >>> labelled, unlabelled = split_labelled(np.array([0, 1, 0, 1, 0, 1]), 1, 2, seed=0)
        >>> len(labelled), len(unlabelled), sorted(np.array([0, 1, 0, 1, 0, 1])[labelled].tolist())
        (2, 4, [0, 1])
    """
    labels = np.asarray(labels)
    if labels_per_class < 1:
        raise ValueError(f"labels_per_class must be >= 1, got {labels_per_class}")
    order = np.random.default_rng(seed).permutation(len(labels))
    picked = []
    for c in range(num_classes):
        of_class = order[labels[order] == c]
        if len(of_class) < labels_per_class:
            raise DataSourceError(f"class {c} has {len(of_class)} training examples, fewer than labels_per_class={labels_per_class}")
        picked.append(of_class[:labels_per_class])
    labelled = np.sort(np.concatenate(picked)).astype(np.int64)
    unlabelled = order[~np.isin(order, labelled)].astype(np.int64)
    if num_unlabelled:
        unlabelled = unlabelled[:num_unlabelled]
    if not len(unlabelled):
        raise DataSourceError("no unlabelled examples are left: lower labels_per_class")
    return labelled, unlabelled


def split_fraction(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded labelled / unlabelled index arrays for a ``fraction`` of ``count`` examples (detection
    scenes, whose labels are boxes, not one class: no per-class balance).

    Returns:
        ``(labelled, unlabelled)``: disjoint sorted int64 arrays covering ``range(count)``, with
        ``round(fraction · count)`` (at least 1) labelled.

    Raises:
        ValueError: ``fraction`` is not in (0, 1).
        DataSourceError: nothing would be left unlabelled (``round(fraction · count) == count``).

    Example:
        >>> labelled, unlabelled = split_fraction(10, 0.2, seed=0)
        >>> len(labelled), len(unlabelled), sorted([*labelled, *unlabelled]) == list(range(10))
        (2, 8, True)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the labelled fraction must be in (0, 1), got {fraction}")
    size = max(1, int(round(fraction * count)))
    if size >= count:
        raise DataSourceError(f"a labelled fraction of {fraction:g} of {count} examples leaves none unlabelled")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:size]).astype(np.int64), np.sort(order[size:]).astype(np.int64)


def select_examples(split: tf.data.Dataset, indices: np.ndarray) -> tf.data.Dataset:
    """The examples of an unbatched ``split`` at ``indices`` (sorted), in the split's order.

    Example:
        >>> picked = select_examples(tf.data.Dataset.range(10, 20), np.array([1, 4]))
        >>> [int(x) for x in picked], int(picked.cardinality())
        ([11, 14], 2)
    """
    wanted = tf.constant(np.asarray(indices, np.int64))
    picked = split.enumerate().filter(lambda position, *_: tf.reduce_any(tf.equal(position, wanted)))
    picked = picked.map(lambda position, *example: example[0] if len(example) == 1 else example)
    return picked.apply(tf.data.experimental.assert_cardinality(len(indices)))


def element_groups(num_labelled: int, num_unlabelled: int, mu: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of each element's labelled example ``[E]`` and unlabelled examples ``[E, μ]``.

    ``E = max(ceil(U / μ), L)``: every unlabelled and every labelled example is in at least one
    element; both are seeded permutations, repeated to fill ``E`` elements.

    Example:
        >>> l, u = element_groups(2, 5, 2, seed=0)
        >>> l.shape, u.shape, sorted(set(u.ravel().tolist()))
        ((3,), (3, 2), [0, 1, 2, 3, 4])
    """
    if mu < 1:
        raise ValueError(f"mu must be >= 1, got {mu}")
    rng = np.random.default_rng(seed)
    count = max(math.ceil(num_unlabelled / mu), num_labelled)
    unlabelled = np.resize(rng.permutation(num_unlabelled), count * mu).reshape(count, mu)
    labelled = np.resize(rng.permutation(num_labelled), count)
    return labelled, unlabelled


def training_elements(
    images: np.ndarray, labels: np.ndarray, labelled: np.ndarray, unlabelled: np.ndarray, mu: int, seed: int
) -> tf.data.Dataset:
    """The unbatched training elements of a semi-supervised run (module docstring).

    Args:
        images: the training split's images ``[N, H, W, C]``.
        labels: its classes ``[N]``.
        labelled, unlabelled: indices from :func:`split_labelled`.
        mu: μ, unlabelled images per labelled one.
        seed: seeds the fixed grouping.

    Returns:
        A ``tf.data.Dataset`` of ``({"labelled", "unlabelled"}, {"label", "hidden_labels"})``.

    Example:
        >>> ds = training_elements(np.zeros([6, 2, 2, 1], np.float32), np.arange(6) % 2, np.array([0, 1]),
        ...                        np.array([2, 3, 4, 5]), mu=2, seed=0)
        >>> x, y = next(iter(ds))
        >>> tuple(x["unlabelled"].shape), tuple(y["hidden_labels"].shape), int(ds.cardinality())
        ((2, 2, 2, 1), (2,), 2)
    """
    which_labelled, which_unlabelled = element_groups(len(labelled), len(unlabelled), mu, seed)
    labelled_ids, unlabelled_ids = labelled[which_labelled], unlabelled[which_unlabelled]
    labels = np.asarray(labels, np.int32)
    features = {LABELLED: images[labelled_ids], UNLABELLED: images[unlabelled_ids]}
    targets = {LABEL: labels[labelled_ids], HIDDEN_LABELS: labels[unlabelled_ids]}
    return tf.data.Dataset.from_tensor_slices((features, targets))


def as_arrays(split: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, ...], labels int32 [N])`` of an unbatched ``(image, label)`` split, read once.

    The split must fit in memory (digits, CIFAR-10 and MNIST do; ImageNet does not).
    """
    images, labels = [], []
    for x, y in split.batch(1024).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def semi_supervised_splits(splits: Splits, images: np.ndarray, labels: np.ndarray, subset: dict, mu: int, seed: int) -> Splits:
    """``splits`` with its training split replaced by the elements of the run's labelled ``subset``.

    Args:
        splits: the source's labelled train / validation / test splits.
        images, labels: its training split as arrays (:func:`as_arrays`).
        subset: ``{"labelled": [...], "labels": [...], "unlabelled": [...]}`` (indices into the
            training split and the labelled ones' classes), as :func:`subset_record` makes it
            and the run saves it.
        mu: μ.
        seed: seeds the grouping (the run's ``data_seed``).

    Raises:
        DataSourceError: the source's training split no longer has the saved classes at the
            saved indices (it changed since the run began).
    """
    labelled, unlabelled = (np.asarray(subset[key], np.int64) for key in (LABELLED, UNLABELLED))
    if max(labelled.max(), unlabelled.max()) >= len(labels) or labels[labelled].tolist() != list(subset["labels"]):
        raise DataSourceError(
            f"{splits.info.get('source', 'the data source')} no longer holds the run's labelled subset "
            "(other classes at the saved indices): the source changed since the run began"
        )
    train = training_elements(images, labels, labelled, unlabelled, mu, seed)
    sizes = {**splits.info.get("sizes", {}), "train": int(train.cardinality()), LABELLED: len(labelled), UNLABELLED: len(unlabelled)}
    return Splits(train, splits.validation, splits.test, {**splits.info, "sizes": sizes, "mu": mu})


def subset_record(labels: np.ndarray, labels_per_class: int, num_classes: int, seed: int, num_unlabelled: int = 0) -> dict:
    """The run asset of a split: JSON-ready labelled / unlabelled indices and the labelled classes.

    Example:
        >>> record = subset_record(np.array([0, 1, 0, 1]), 1, 2, seed=0)
        >>> sorted(record["labels"]), len(record["unlabelled"])
        ([0, 1], 2)
    """
    labelled, unlabelled = split_labelled(labels, labels_per_class, num_classes, seed, num_unlabelled)
    return {
        LABELLED: labelled.tolist(),
        "labels": np.asarray(labels)[labelled].astype(int).tolist(),
        UNLABELLED: unlabelled.tolist(),
        "labels_per_class": labels_per_class,
        "seed": seed,
    }
