"""Data-source specs (``DATA=...``) and the TFDS loader.

A spec is ``embedded`` (data a dependency ships, offline), ``tfds:<name>`` (TensorFlow Datasets,
downloaded on first use and cached under ``~/tensorflow_datasets``) or a recipe-specific
``kind:argument`` such as ``sklearn:digits``. Files named by URL are downloaded once, checked
against a published checksum and cached (:func:`cached_download`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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


def cached_download(url: str, sha1: str, cache_dir: str | None = None, cache_subdir: str = "tfmodels") -> Path:
    """Downloads ``url`` once into Keras' cache (``$KERAS_HOME``, default ``~/.keras``) and checks its SHA-1.

    ``keras.utils.get_file`` downloads and caches; it checks SHA-256 and MD5 only, and the
    published checksums of the notes' files (d2l's ``DATA_HUB``) are SHA-1, so the check is here.
    A file whose checksum differs is deleted, so the next call downloads it again.

    Args:
        url: where the file is (any URL ``urllib`` opens, ``file://`` included).
        sha1: the expected SHA-1 hex digest.
        cache_dir: the cache's root (``None``: Keras' home).
        cache_subdir: folder under it.

    Raises:
        DataSourceError: the download failed (e.g. offline) or the checksum differs.
    """
    import keras

    name = url.rstrip("/").rsplit("/", 1)[-1]
    if cache_dir is not None:  # get_file falls back to /tmp/.keras for a folder that does not exist yet
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    try:
        path = Path(keras.utils.get_file(name, origin=url, cache_dir=cache_dir, cache_subdir=cache_subdir))
    except Exception as err:  # urllib raises URLError, HTTPError, OSError, ...
        raise DataSourceError(
            f"could not download {url} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            "it is downloaded once and read from the cache afterwards, so the first use needs the network"
        ) from err
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    if digest != sha1:
        path.unlink()
        raise DataSourceError(f"{url} has SHA-1 {digest}, expected {sha1}: the download was deleted; try again")
    return path
