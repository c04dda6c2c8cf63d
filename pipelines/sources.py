"""Data-source specs (``DATA=...``) and the TFDS loader.

A spec is ``embedded`` (data a dependency ships, offline), ``tfds:<name>`` (TensorFlow Datasets,
downloaded on first use and cached under ``~/tensorflow_datasets``) or a recipe-specific
``kind:argument`` such as ``sklearn:digits``.
"""

from __future__ import annotations

import tensorflow as tf


class DataSourceError(ValueError):
    """A ``DATA=...`` spec the recipe does not know."""


def parse(spec: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    """Splits ``kind:argument`` and checks it against ``allowed``.

    ``allowed`` holds exact specs (``embedded``, ``sklearn:digits``) and open kinds written
    ``kind:*`` (``tfds:*`` accepts any ``tfds:<name>``).

    Example:
        >>> parse("tfds:mnist", ("embedded", "tfds:*"))
        ('tfds', 'mnist')
    """
    kind, _, argument = spec.partition(":")
    if spec in allowed or (argument and f"{kind}:*" in allowed):
        return kind, argument
    choices = ", ".join(a.replace(":*", ":<name>") for a in allowed)
    raise DataSourceError(f"unknown data source {spec!r}; this model accepts: {choices}")


def tfds_load(name: str, split, as_supervised: bool = False, data_dir: str | None = None):
    """``tfds.load`` with one clear error for every way it fails (unknown name, no network, ...)."""
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, split=split, as_supervised=as_supervised, data_dir=data_dir)
    except Exception as err:  # TFDS raises many types (DatasetNotFoundError, network, parsing)
        raise DataSourceError(
            f"could not load TFDS dataset {name!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "TFDS downloads a dataset on first use (this needs the network) and reads it from "
            "~/tensorflow_datasets afterwards."
        ) from err


def tfds_splits(
    name: str, splits: tuple[str, ...] = ("train[:90%]", "train[90%:]", "test"), data_dir: str | None = None
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """Loads train / validation / test splits of a TFDS dataset as ``(features, label)`` pairs."""
    return tuple(tfds_load(name, list(splits), as_supervised=True, data_dir=data_dir))
