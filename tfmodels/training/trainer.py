"""The one trainer: every recipe trains, checkpoints, logs and exports through :func:`train`.

A run lives in ``runs/<model>/<timestamp>/`` and is a sequence of stages, data -> fit ->
evaluate -> report -> export (:mod:`tfmodels.training.run_folder`)::

    run.json           model, preset, run id and the stages finished
    config.json        the resolved config (preset + overrides)
    assets/            vocabularies, class names, statistics and the test split (data stage)
    history.csv        one row per epoch (CSVLogger)
    logs/              TensorBoard event files
    backup/            BackupAndRestore state while the fit stage is unfinished
    best.weights.h5    the weights of the best epoch by ``cfg.monitor``
    model.keras        the final model (best weights), loadable with keras.saving.load_model
    curves.png         training curves
    metrics.json       dtype policy, best validation metrics, test metrics, recipe report, export path

``--resume`` continues a run at its first unfinished stage (mid-epoch kills resume from the last
finished epoch) and never rewrites a finished stage's files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_framework_config

from pipelines.splits import Splits
from tfmodels import registry
from tfmodels.config import ConfigError, TrainConfig, parse_overrides, resolve
from tfmodels.scratch import owned_name, remove_abandoned
from tfmodels.training.data_budget import cache_split, clear_disk_cache, example_bytes
from tfmodels.training.fit import fit_stage
from tfmodels.training.precision import resolve_policy
from tfmodels.training.run_assets import TEST_SPLIT, save_test_split, saved_test_split
from tfmodels.training.run_folder import STAGES, RunFolder, latest_run
from tfmodels.training.strategy import is_chief, make_strategy


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Args:
        run_dir: the run's directory (``None`` on a non-chief worker, which writes no run).
        metrics: the content of ``metrics.json``.
        export_path: the SavedModel version directory, or ``None`` when the export stage was skipped (``export_root=None``).
        model: the trained Keras model (best weights).
    """

    run_dir: Path | None
    metrics: dict[str, Any]
    export_path: Path | None
    model: keras.Model


def _count(ds: tf.data.Dataset) -> int:
    """The number of examples of an unbatched split (a split must not be empty)."""
    n = int(ds.cardinality())
    if n < 0:  # unknown (e.g. after filter): count once
        n = int(ds.reduce(np.int64(0), lambda count, _: count + 1))
    if n == 0:
        raise ValueError("a data split is empty: check the data source and its split fractions")
    return n


def _new_run_dir(runs_root: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = runs_root / name / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_root / name / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def resolve_config(
    name: str,
    preset: str = "default",
    data: str | None = None,
    strategy: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The config :func:`train` would use: preset, then ``overrides``, then ``data``/``strategy``."""
    values = parse_overrides(overrides)
    if data:
        values["data"] = data
    if strategy:
        values["strategy"] = strategy
    return resolve(registry.get(name).config, preset, values)


def run_config(run: RunFolder) -> TrainConfig:
    """A run folder's saved config, reading its assets from the folder (wherever it now is)."""
    recipe = registry.get(run.model)
    saved = json.loads((run.path / "config.json").read_text())
    return dataclasses.replace(resolve(recipe.config, run.preset, saved), run_dir=str(run.path))


def load_trained_model(recipe: registry.Recipe, cfg: TrainConfig, run_dir: Path) -> keras.Model:
    """The run's ``model.keras`` (best weights), compiled with the recipe's loss and metrics."""
    model = keras.saving.load_model(Path(run_dir) / "model.keras", compile=False)
    model.compile(jit_compile=cfg.jit_compile, **recipe.compile_args(cfg))
    return model


def metrics_on_test_split(model: keras.Model, test: tf.data.Dataset, cfg: TrainConfig) -> dict[str, float]:
    """The compiled metrics on the unbatched ``test`` split (batches of ``batch_size``, 256 when full-batch)."""
    results = model.evaluate(test.batch(cfg.batch_size or 256).prefetch(tf.data.AUTOTUNE), verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}


def train(
    name: str,
    preset: str = "default",
    data: str | None = None,
    strategy: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    *,
    resume: str | os.PathLike | None = None,
    runs_root: str | os.PathLike = "runs",
    export_root: str | os.PathLike | None = "saved_models",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Trains MODEL ``name``, evaluates it on the test split, reports and exports it.

    Args:
        name: a registered MODEL name (``tfmodels list``).
        preset: ``tiny``, ``default`` or ``paper``.
        data: overrides the config's data source (``embedded``, ``tfds:<name>``, ...).
        strategy: overrides the config's strategy (``default``, ``mirrored``, ``multi_worker``).
        overrides: ``["key=value", ...]`` or a mapping, type-checked against the config.
        resume: a run directory, or ``"latest"`` (the newest run of ``name`` under
            ``runs_root``): its saved preset and config are used and it continues at its first
            unfinished stage; a finished run is left unchanged.
        runs_root: where new run directories are made.
        export_root: where the SavedModel is exported (``None`` skips the export stage).
        callbacks: extra Keras callbacks (they run after the trainer's own).

    Returns:
        A :class:`TrainResult`.

    Example:
        >>> result = tfmodels.train("mnist_cnn", preset="tiny")   # doctest: +SKIP
        >>> result.metrics["test"]["accuracy"]                     # doctest: +SKIP
    """
    recipe = registry.get(name)
    run = None
    if resume is not None:
        if overrides or data or strategy:
            raise ConfigError("a resumed run keeps its saved config: drop overrides, data and strategy")
        if resume == "latest":
            resume = latest_run(runs_root, name)
        try:
            run = RunFolder.open(resume, name)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        cfg = run_config(run)
    else:
        cfg = resolve_config(name, preset, data, strategy, overrides)
    # First: multi_worker configures TensorFlow's collective ops, which must precede its runtime.
    dist = make_strategy(cfg.strategy)
    if not is_chief(dist):
        return _train_as_worker(recipe, cfg, run, preset, callbacks)
    if run is None:
        run = _create_run(Path(runs_root), name, preset, cfg)
    return _train_in(recipe, cfg, run, export_root, callbacks)


def _create_run(runs_root: Path, name: str, preset: str, cfg: TrainConfig) -> RunFolder:
    run_dir = _new_run_dir(runs_root, name)
    (run_dir / "config.json").write_text(cfg.to_json())
    return RunFolder.create(run_dir, name, preset)


def _train_as_worker(
    recipe: registry.Recipe, cfg: TrainConfig, run: RunFolder | None, preset: str,
    callbacks: Sequence[keras.callbacks.Callback],
) -> TrainResult:
    """A non-chief worker's part of a multi-worker run: the same fit steps, written to a scratch folder.

    A resumed worker starts from a copy of the chief's run folder (it must see the same backup
    and random states). The scratch folder is removed when the worker ends; one left by a killed
    worker is removed by the next worker started on the machine.
    """
    temp_root = Path(tempfile.gettempdir())
    remove_abandoned(temp_root.glob("tfmodels-worker-*"))
    scratch = temp_root / owned_name("tfmodels-worker")
    scratch.mkdir()
    try:
        if run is None:
            worker_run = _create_run(scratch, recipe.name, preset, cfg)
        else:
            copy = scratch / "run"
            shutil.copytree(run.path, copy, ignore=shutil.ignore_patterns("cache", "logs", TEST_SPLIT))
            worker_run = RunFolder.open(copy)
        result = _train_in(recipe, cfg, worker_run, None, callbacks, last_stage="fit")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("This worker's part is done; the chief writes the run folder and the export")
    return dataclasses.replace(result, run_dir=None, export_path=None)


def _train_in(
    recipe: registry.Recipe,
    cfg: TrainConfig,
    run: RunFolder,
    export_root: str | os.PathLike | None,
    callbacks: Sequence[keras.callbacks.Callback],
    last_stage: str = STAGES[-1],
) -> TrainResult:
    """The unfinished stages of ``run`` up to ``last_stage``, under the run's seed, determinism and precision."""
    cfg = dataclasses.replace(cfg, run_dir=str(run.path))
    wanted = STAGES[: STAGES.index(last_stage) + 1]
    stages = [s for s in run.unfinished() if s in wanted and not (s == "export" and export_root is None)]
    if not stages:
        print(f"{run.path} is finished ({', '.join(run.record['finished'])}): nothing to do, nothing changed")
        metrics = run.metrics()
        export_path = Path(metrics["export"]) if "export" in metrics else None
        return TrainResult(run.path, metrics, export_path, load_trained_model(recipe, cfg, run.path))
    if run.record["finished"]:
        print(f"Resuming {recipe.name} [{run.preset}] at its {stages[0]} stage ({run.path})")

    keras.utils.set_random_seed(cfg.seed)
    previous_determinism = tf_framework_config.is_op_determinism_enabled()
    _set_op_determinism(cfg.deterministic)
    previous_policy = keras.mixed_precision.global_policy()
    precision = run.metrics().get("precision")
    if precision is None:  # resolved once, so a resumed ``auto`` run keeps the policy it began with
        policy, reason = resolve_policy(cfg.mixed_precision)
        precision = run.add_metrics(precision={"setting": cfg.mixed_precision, "policy": policy, "reason": reason})["precision"]
    print(f"Precision: {precision['policy']} ({precision['reason']})")
    keras.mixed_precision.set_global_policy(precision["policy"])
    try:
        return _run(recipe, cfg, run, export_root, callbacks, stages)
    finally:  # later models built in this process get the policy and determinism they had before
        keras.mixed_precision.set_global_policy(previous_policy)
        _set_op_determinism(previous_determinism)


def _set_op_determinism(enabled: bool) -> None:
    # Op determinism is process-wide, and Keras turns XLA off while it is on, so a run with
    # deterministic=false (the XLA runs) must switch it off again; TF's public API only enables it.
    if enabled:
        tf.config.experimental.enable_op_determinism()
    else:
        tf_framework_config.disable_op_determinism()


@dataclasses.dataclass
class RunData:
    """A run's splits: cached within the memory budget for training, and as the recipe made them.

    Args:
        splits: train / validation / test, cached as ``cfg.cache`` says (:mod:`.data_budget`).
        uncached: the same splits as the recipe made them (for one-off reads).
        sizes: the number of examples of each split.
        train_example_bytes: the estimated size of one training example.
    """

    splits: Splits
    uncached: Splits
    sizes: tuple[int, int, int]
    train_example_bytes: int


def _load_data(recipe: registry.Recipe, cfg: TrainConfig, run_dir: Path) -> RunData:
    """The recipe's splits (while the data stage runs, this derives the run's assets)."""
    splits: Splits = recipe.datasets(cfg)
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    sizes = {name: _count(split) for name, split in parts.items()}
    per_example = {name: example_bytes(split) for name, split in parts.items()}
    cache_dir = run_dir / "cache"
    clear_disk_cache(cache_dir)
    cached = [cache_split(split, name, sizes[name] * per_example[name], cfg, cache_dir) for name, split in parts.items()]
    return RunData(Splits(*cached, splits.info), splits, tuple(sizes.values()), per_example["train"])


def _run(
    recipe: registry.Recipe,
    cfg: TrainConfig,
    run: RunFolder,
    export_root: str | os.PathLike | None,
    callbacks: Sequence[keras.callbacks.Callback],
    stages: Sequence[str],
) -> TrainResult:
    """``stages`` of one run (config already resolved), each recorded when done."""
    # Evaluate and export read the saved test split: the data source is needed for fit and report only.
    data = _load_data(recipe, cfg, run.path) if {"fit", "report"} & set(stages) else None
    if "fit" in stages:
        dist = make_strategy(cfg.strategy)
        with dist.scope():
            model = recipe.model(cfg)  # may derive assets too (a vocabulary's size)
        if not run.finished("data"):
            save_test_split(run.path, data.uncached.test, data.sizes[2])
            run.finish("data")
        fit_stage(recipe, cfg, run, data, model, dist, callbacks)
        if stages[-1] == "fit":
            return TrainResult(run.path, run.metrics(), None, model)
    model = load_trained_model(recipe, cfg, run.path)
    test = _test_split(recipe, cfg, run.path, data.splits.test if data else None)
    if "evaluate" in stages:
        run.add_metrics(test=metrics_on_test_split(model, test, cfg))
        run.finish("evaluate")
    if "report" in stages:
        if recipe.report is not None:
            run.add_metrics(report=recipe.report(cfg, model, data.splits, run.path))
        run.finish("report")
    if "export" in stages:
        # absolute, so that `tfmodels predict <run>` finds it from any working directory
        run.add_metrics(export=str(export_stage(recipe, cfg, run, model, Path(export_root), test).resolve()))
        run.finish("export")
    metrics = run.metrics()
    print(f"Test: {json.dumps(metrics['test'])}")
    if "report" in metrics:
        print(f"Report: {json.dumps(metrics['report'])}")
    export_path = Path(metrics["export"]) if "export" in metrics else None
    return TrainResult(run.path, metrics, export_path, model)


def export_stage(
    recipe: registry.Recipe, cfg: TrainConfig, run: RunFolder, model: keras.Model, export_root: Path, test: tf.data.Dataset
) -> Path:
    """The run's one export: the version a killed export stage already renamed into place, or a new one."""
    from tfmodels.export.saved_model import export_model, exported_version

    done = exported_version(export_root / recipe.name, run.run_id)
    if done is not None:
        print(f"{done} was exported by this run already")
        return done
    return export_model(recipe, cfg, model, export_root, test, {"run_id": run.run_id, "run_dir": str(run.path)})


def _test_split(recipe: registry.Recipe, cfg: TrainConfig, run_dir: Path, loaded: tf.data.Dataset | None = None) -> tf.data.Dataset:
    """The run's saved test split; the source's (``loaded``, or loaded now) when it was too large to save."""
    saved = saved_test_split(run_dir)
    if saved is not None:
        return saved
    return loaded if loaded is not None else recipe.datasets(cfg).test


def _open_finished(run_dir: str | os.PathLike) -> tuple[registry.Recipe, TrainConfig, RunFolder]:
    run = RunFolder.open(run_dir)
    if not run.finished("fit"):
        raise ConfigError(f"{run_dir} has not finished training (stages done: {run.record['finished']}); resume it first")
    return registry.get(run.model), run_config(run), run


def evaluate_run(run_dir: str | os.PathLike, data: str | None = None) -> dict[str, Any]:
    """Test metrics of a finished run: on its saved test split, or on the test split of ``data``.

    The model reads its assets (vocabularies, class names, ...) from the run folder either way.
    """
    recipe, cfg, run = _open_finished(run_dir)
    if data:
        cfg = dataclasses.replace(cfg, data=data)
    test = recipe.datasets(cfg).test if data else _test_split(recipe, cfg, run.path)
    model = load_trained_model(recipe, cfg, run.path)
    # The run's own op determinism, so that its saved test split evaluates to the same last bit.
    previous_determinism = tf_framework_config.is_op_determinism_enabled()
    _set_op_determinism(cfg.deterministic)
    try:
        return {"model": run.model, "data": cfg.data, "test": metrics_on_test_split(model, test, cfg)}
    finally:
        _set_op_determinism(previous_determinism)


def export_run(run_dir: str | os.PathLike, export_root: str | os.PathLike = "saved_models") -> Path:
    """A new SavedModel version of a finished run, built from the run folder alone."""
    recipe, cfg, run = _open_finished(run_dir)
    test = _test_split(recipe, cfg, run.path)
    model = load_trained_model(recipe, cfg, run.path)
    from tfmodels.export.saved_model import export_model

    return export_model(recipe, cfg, model, Path(export_root), test, {"run_id": run.run_id, "run_dir": str(run.path)})
