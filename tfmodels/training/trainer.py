"""The one trainer: every recipe trains, checkpoints, logs and exports through :func:`train`.

A run lives in ``runs/<model>/<timestamp>/``::

    config.json        the resolved config (preset + overrides)
    history.csv        one row per epoch (CSVLogger)
    logs/              TensorBoard event files
    backup/            BackupAndRestore state while a run is unfinished (resume after a kill)
    best.weights.h5    the weights of the best epoch by ``cfg.monitor``
    model.keras        the final model (best weights), loadable with keras.saving.load_model
    curves.png         training curves
    metrics.json       test metrics, best validation metrics, recipe report, export path
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_framework_config

from pipelines.splits import Splits
from tfmodels import registry
from tfmodels.config import ConfigError, TrainConfig, parse_overrides, resolve
from tfmodels.models.backbone import reset_trainable
from tfmodels.training.callbacks import LearningRateLogger, RandomStateBackup, StopOnNaN
from tfmodels.training.finetune import check_phases, frozen_phase_marker, initialise_from, plan_phases
from tfmodels.training.optimization import make_optimizer, schedule_callbacks
from tfmodels.training.strategy import make_strategy


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Args:
        run_dir: the run's directory.
        metrics: the content of ``metrics.json``.
        export_path: the SavedModel version directory, or ``None`` with ``export=False``.
        model: the trained Keras model (best weights).
    """

    run_dir: Path
    metrics: dict[str, Any]
    export_path: Path | None
    model: keras.Model


def _count(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    if n < 0:  # unknown (e.g. after filter): count once
        n = int(ds.reduce(np.int64(0), lambda count, _: count + 1))
    if n == 0:
        raise ValueError("a data split is empty: check the data source and its split fractions")
    return n


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
    # A per-epoch shuffle seed that depends only on (seed, epoch), so a resumed run sees exactly
    # the batches the uninterrupted run would have seen.
    return tf.cast(epoch, tf.int64) * 1_000_003 + seed


def training_dataset(
    train: tf.data.Dataset,
    cfg: TrainConfig,
    global_batch: int,
    n_train: int,
    initial_epoch: int,
    drop_remainder: bool = False,
    transform=None,
    end_epoch: int | None = None,
) -> tf.data.Dataset:
    """Epochs ``initial_epoch .. end_epoch-1`` (default: to ``cfg.epochs``) of shuffled batches, as one dataset.

    ``transform`` (the recipe's ``train_transform``) maps each batch after batching, so random
    augmentation is drawn anew every epoch rather than cached.
    """
    buffer = cfg.shuffle_buffer or n_train

    def one_epoch(epoch):
        # The shuffle seed is a tensor here; TF's seed helper compares the graph seed with 0 in
        # Python and fails when it is 0 (``--set seed=0``). This graph-level seed applies to this
        # traced function only; the order depends on the op seed alone.
        tf.random.set_seed(1)
        data = train.shuffle(buffer, seed=_epoch_seed(cfg.seed, epoch)) if cfg.shuffle else train
        batches = data.batch(global_batch, drop_remainder=drop_remainder)
        if transform is not None:
            batches = batches.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
        return batches.repeat(cfg.repeats_per_epoch)

    epochs = tf.data.Dataset.range(initial_epoch, cfg.epochs if end_epoch is None else end_epoch)
    return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)


def replica_batches(n: int, batch: int, replicas: int) -> tuple[int, int]:
    """(global batch, batches per pass) for ``n`` examples.

    With several replicas every batch must split evenly across them (Keras 3 under
    MirroredStrategy fails on a batch that does not: "AddN must have the same size and shape"),
    so the batch is rounded down to a multiple of the replica count and the last partial batch
    is dropped; with one replica nothing is dropped.
    """
    batch = min(batch, n)
    if replicas == 1:
        return batch, math.ceil(n / batch)
    if n < replicas:
        raise ConfigError(f"{n} examples cannot be split across {replicas} replicas")
    batch = max(replicas, batch - batch % replicas)
    return batch, n // batch


def _resumed_epoch(backup_dir: Path) -> int:
    """The epoch a BackupAndRestore state will resume from (0 when there is none)."""
    meta = backup_dir / "training_metadata.json"
    if not meta.exists():
        return 0
    return int(json.loads(meta.read_text())["epoch"])


def _read_history(path: Path) -> dict[str, list[float]]:
    """Columns of the CSVLogger file, keyed by metric (the ``epoch`` column dropped)."""
    if not path.exists():
        return {}
    import csv

    with path.open() as f:
        # An epoch redone after a kill appears twice: the later row wins.
        by_epoch = {int(row["epoch"]): row for row in csv.DictReader(f)}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [float(r[k]) for r in rows] for k in keys}


def _plot_curves(history: Mapping[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history if not k.startswith("val_")]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation")
            ax.legend()
        ax.set_title(key)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    """Trains MODEL ``name``, evaluates it on the test split and exports it.

    Args:
        name: a registered MODEL name (``tfmodels list``).
        preset: ``tiny``, ``default`` or ``paper``.
        data: overrides the config's data source (``embedded``, ``tfds:<name>``, ...).
        strategy: overrides the config's strategy (``default``, ``mirrored``, ``multi_worker``).
        overrides: ``["key=value", ...]`` or a mapping, type-checked against the config.
        resume: a run directory of an interrupted run: its saved config is used and training
            continues from its last completed epoch.
        runs_root: where new run directories are made.
        export_root: where the SavedModel is exported (``None`` skips the export).
        callbacks: extra Keras callbacks (they run after the trainer's own).

    Returns:
        A :class:`TrainResult`.

    Example:
        >>> result = tfmodels.train("mnist_cnn", preset="tiny")   # doctest: +SKIP
        >>> result.metrics["test"]["accuracy"]                     # doctest: +SKIP
    """
    recipe = registry.get(name)
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.json").exists():
            raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
        if overrides or data or strategy:
            raise ConfigError("a resumed run keeps its saved config: drop overrides, data and strategy")
        cfg = resolve(recipe.config, preset, json.loads((run_dir / "config.json").read_text()))
    else:
        cfg = resolve_config(name, preset, data, strategy, overrides)
        run_dir = _new_run_dir(Path(runs_root), name)
        (run_dir / "config.json").write_text(cfg.to_json())

    keras.utils.set_random_seed(cfg.seed)
    previous_determinism = tf_framework_config.is_op_determinism_enabled()
    _set_op_determinism(cfg.deterministic)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.mixed_precision else "float32")
    try:
        return _run(recipe, cfg, preset, run_dir, export_root, callbacks)
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


def _run(
    recipe: registry.Recipe,
    cfg: TrainConfig,
    preset: str,
    run_dir: Path,
    export_root: str | os.PathLike | None,
    callbacks: Sequence[keras.callbacks.Callback],
) -> TrainResult:
    """Data, model, fit, evaluation, report and export of one run (config already resolved)."""
    name = recipe.name
    dist = make_strategy(cfg.strategy)

    splits: Splits = recipe.datasets(cfg)
    train_split, val_split, test_split = (s.cache() for s in (splits.train, splits.validation, splits.test))
    n_train, n_val, n_test = (_count(s) for s in (train_split, val_split, test_split))
    replicas = dist.num_replicas_in_sync
    # batch_size is per replica; 0 means the whole training set in one (global) batch.
    global_batch, batches = replica_batches(n_train, cfg.batch_size * replicas or n_train, replicas)
    steps_per_epoch = batches * cfg.repeats_per_epoch
    val_batch, _ = replica_batches(n_val, cfg.batch_size * replicas or n_val, replicas)

    phases = plan_phases(cfg, run_dir)
    marker = frozen_phase_marker(run_dir)
    if len(phases) > 1 and marker.exists():  # resumed after the frozen phase had finished
        phases = phases[1:]
    initial_epoch = max(_resumed_epoch(phases[0].backup_dir), phases[0].first_epoch)
    if initial_epoch >= cfg.epochs:
        raise ConfigError(f"{run_dir} has already finished all {cfg.epochs} epochs")
    if initial_epoch:
        print(f"Resuming {name} from epoch {initial_epoch + 1} of {cfg.epochs} ({run_dir})")
    split_evenly = replicas > 1
    transform = recipe.train_transform(cfg) if recipe.train_transform is not None else None
    val_ds = val_split.batch(val_batch, drop_remainder=split_evenly).prefetch(tf.data.AUTOTUNE)

    with dist.scope():
        model = recipe.model(cfg)
    check_phases(model, phases)
    transferred = initialise_from(model, cfg.init_from) if cfg.init_from else 0
    if transferred:
        print(f"Initialised {transferred} backbone layers from {cfg.init_from}; the head is new")
    if phases[0].name == "finetune":
        model.load_weights(str(marker))

    best_path = run_dir / "best.weights.h5"
    history_path = run_dir / "history.csv"
    mode = "max" if any(k in cfg.monitor for k in ("acc", "auc", "precision", "recall")) else "min"
    earlier = _read_history(history_path) if initial_epoch else {}
    best_so_far = None
    if earlier.get(cfg.monitor):  # a resumed run must not overwrite a better checkpoint
        best_so_far = (max if mode == "max" else min)(earlier[cfg.monitor][:initial_epoch])
    nan_guard = StopOnNaN()
    # One instance for all phases, so the best epoch is the best of the whole run.
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(best_path),
        monitor=cfg.monitor,
        mode=mode,
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=best_so_far,
    )
    print(
        f"Training {name} [{preset}] on {splits.info.get('source', cfg.data)}: "
        f"{n_train} train / {n_val} validation / {n_test} test examples, "
        f"global batch {global_batch} on {dist.num_replicas_in_sync} replica(s), "
        f"{model.count_params():,} parameters -> {run_dir}"
    )
    started = time.time()
    for phase in phases:
        phase.prepare(model)
        with dist.scope():
            model.compile(
                optimizer=make_optimizer(phase.optimizer_config(cfg), steps_per_epoch),
                jit_compile=cfg.jit_compile,
                **recipe.compile_args(cfg),
            )
        if phase.name != "train":
            trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            print(
                f"Phase {phase.name}: epochs {phase.first_epoch + 1}-{phase.end_epoch}, learning rate "
                f"{phase.learning_rate:g}, {trainable:,} trainable parameters"
            )
        # Order matters for "nothing lost": everything of an epoch (best checkpoint, CSV row) is
        # on disk before BackupAndRestore records the epoch as done; a kill in between redoes it.
        all_callbacks = [
            LearningRateLogger(),
            nan_guard,
            checkpoint,
            keras.callbacks.CSVLogger(str(history_path), append=initial_epoch > 0),
            RandomStateBackup(phase.backup_dir / "random_states.npz"),
            keras.callbacks.BackupAndRestore(str(phase.backup_dir)),
            keras.callbacks.TensorBoard(str(run_dir / "logs")),
            *schedule_callbacks(cfg),
            *callbacks,
        ]
        train_ds = training_dataset(
            train_split, cfg, global_batch, n_train, initial_epoch, split_evenly, transform, phase.end_epoch
        )
        model.fit(
            train_ds,
            epochs=phase.end_epoch,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=val_ds,
            shuffle=False,  # the dataset is already shuffled, per epoch, by training_dataset()
            callbacks=all_callbacks,
            verbose=cfg.verbose,
        )
        if nan_guard.where:
            saved = f"; the best weights so far are in {best_path}" if best_path.exists() else ""
            raise TrainingDivergedError(
                f"training {name} stopped: the loss became non-finite at {nan_guard.where}{saved}. "
                "Try a lower learning_rate or gradient clipping (--set clip_global_norm=1.0)."
            )
        if phase.name == "frozen":
            model.save_weights(str(marker))
        initial_epoch = phase.end_epoch
    train_seconds = time.time() - started
    reset_trainable(model)

    with warnings.catch_warnings():
        # The best epoch may come from an earlier phase, whose optimizer had other variables;
        # only the model's weights are wanted here.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(best_path))
    if replicas > 1:
        # Test, report and export run on one device with every test example, not only the ones
        # that fill replica-divisible batches.
        best_weights = model.get_weights()
        model = recipe.model(cfg)
        model.compile(**recipe.compile_args(cfg))
        model.set_weights(best_weights)
    test_ds = test_split.batch(cfg.batch_size or n_test).prefetch(tf.data.AUTOTUNE)
    test_metrics = model.evaluate(test_ds, verbose=0, return_dict=True)
    hist = _read_history(history_path)  # all epochs, also those before a resume
    if cfg.monitor not in hist:
        raise ConfigError(f"monitor {cfg.monitor!r} is not a logged metric; logged: {', '.join(hist)}")
    best_epoch = int(np.argmax(hist[cfg.monitor]) if mode == "max" else np.argmin(hist[cfg.monitor]))
    metrics: dict[str, Any] = {
        "model": name,
        "preset": preset,
        "data": splits.info,
        "parameters": int(model.count_params()),
        "replicas": int(dist.num_replicas_in_sync),
        "global_batch": int(global_batch),
        "epochs": len(hist["loss"]),
        "best_epoch": best_epoch + 1,
        "validation": {k[4:]: float(v[best_epoch]) for k, v in hist.items() if k.startswith("val_")},
        "test": {k: float(v) for k, v in test_metrics.items()},
        "train_seconds": round(train_seconds, 1),
    }
    if cfg.init_from or cfg.freeze_epochs:
        metrics["transfer"] = {
            "init_from": cfg.init_from,
            "backbone_layers_copied": transferred,
            "frozen_epochs": cfg.freeze_epochs,
        }
    if recipe.report is not None:
        metrics["report"] = recipe.report(cfg, model, splits, run_dir)

    model.save(run_dir / "model.keras")
    _plot_curves(hist, run_dir / "curves.png")
    export_path = None
    if export_root is not None:
        from tfmodels.export import export_model

        export_path = export_model(recipe, cfg, model, Path(export_root))
        metrics["export"] = str(export_path)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"Test: {json.dumps(metrics['test'])}")
    if "report" in metrics:
        print(f"Report: {json.dumps(metrics['report'])}")
    return TrainResult(run_dir, metrics, export_path, model)
