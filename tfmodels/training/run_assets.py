"""What a model needs besides its weights, written into its run folder at training time.

Vocabularies, tokenizer settings, class names, normalisation statistics and label maps are
*derived from the data* once, during a run's ``data`` stage, and saved under
``<run>/assets/``. From then on (fit, evaluate, report, export, a copied run folder, a resumed
run) they are read back from there and never derived again, so an edited ``file:`` source,
another class folder or another Python's ``pydoc_data`` cannot silently change what a model's
ids mean. The test split is saved there too, so ``tfmodels evaluate`` and the export check work
with the data sources gone.

A recipe asks for an asset with a function that derives it::

    names = json_asset(cfg, "class_names.json", lambda: scan_class_names(folder))

Outside a run (``cfg.run_dir == ""``: ``tfmodels.build``, unit tests) the asset is derived.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, TypeVar

import tensorflow as tf

from tfmodels.config import TrainConfig
from tfmodels.training.data_budget import example_bytes
from tfmodels.training.run_folder import RunFolder

T = TypeVar("T")
ASSETS = "assets"
TEST_SPLIT = "test_split"
# A test split larger than this is not copied into the run (ImageNet's 50,000 validation images
# at 224x224 would be 30 GB); evaluate then reads the data source again.
MAX_SAVED_TEST_BYTES = 512 * 2**20


class MissingAssetError(FileNotFoundError):
    """A finished run folder lacks an asset its model needs."""


def asset_path(cfg: TrainConfig, name: str) -> Path:
    return Path(cfg.run_dir) / ASSETS / name


def _deriving(cfg: TrainConfig) -> bool:
    """True while the run's data stage is unfinished: the only time assets are derived."""
    return not RunFolder.open(cfg.run_dir).finished("data")


def run_asset(
    cfg: TrainConfig,
    name: str,
    derive: Callable[[], T],
    save: Callable[[T, Path], None],
    load: Callable[[Path], T],
) -> T:
    """The run's saved asset ``name``; derived from the data and saved during the data stage.

    Raises:
        MissingAssetError: the run's data stage is finished but the file is not there.
    """
    if not cfg.run_dir:
        return derive()
    path = asset_path(cfg, name)
    if path.exists():
        return load(path)
    if not _deriving(cfg):
        raise MissingAssetError(
            f"{path} is missing: a finished run folder must hold every asset its model needs; "
            "copy the whole run folder, or train again"
        )
    value = derive()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    save(value, partial)
    os.replace(partial, path)
    return load(path)  # what later stages will read, so every stage sees the same value


def json_asset(cfg: TrainConfig, name: str, derive: Callable[[], Any]) -> Any:
    """A JSON-serialisable asset (class names, statistics, settings)."""
    return run_asset(
        cfg, name, derive,
        save=lambda value, path: path.write_text(json.dumps(value, indent=1, ensure_ascii=False), encoding="utf-8"),
        load=lambda path: json.loads(path.read_text(encoding="utf-8")),
    )


def lines_asset(cfg: TrainConfig, name: str, derive: Callable[[], list[str]]) -> list[str]:
    """A list of strings without newlines (a vocabulary), one per line in a text file."""

    def save(lines: list[str], path: Path) -> None:
        bad = [line for line in lines if "\n" in line or "\r" in line]
        if bad:
            raise ValueError(f"{name}: entries with line breaks cannot be saved one per line: {bad[:3]!r}")
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")

    return run_asset(cfg, name, derive, save, lambda path: path.read_text(encoding="utf-8").split("\n")[:-1])


def save_test_split(run_dir: Path, test: tf.data.Dataset, size: int) -> bool:
    """Saves the (unbatched) test split of ``size`` examples into the run; False when too large."""
    if example_bytes(test) * size > MAX_SAVED_TEST_BYTES:
        print(f"Note: the test split is over {MAX_SAVED_TEST_BYTES >> 20} MiB; evaluate will read it from its source again")
        return False
    target = Path(run_dir) / ASSETS / TEST_SPLIT
    partial = target.with_name(f".{TEST_SPLIT}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    test.save(str(partial))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return True


def saved_test_split(run_dir: Path) -> tf.data.Dataset | None:
    """The test split saved by :func:`save_test_split`, or None."""
    path = Path(run_dir) / ASSETS / TEST_SPLIT
    return tf.data.Dataset.load(str(path)) if path.exists() else None
