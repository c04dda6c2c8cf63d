"""The fit stage of a run: epochs of seeded batches under a strategy, checkpoints, resume.

Everything of an epoch (best checkpoint, CSV row, random-generator states) is on disk before
``BackupAndRestore`` records the epoch as done, so a run killed at any point of this stage
resumes from its last finished epoch and ends with the weights of an uninterrupted run.
Transfer-learning runs fit in two phases (:mod:`tfmodels.training.finetune`).
"""

from __future__ import annotations

import csv
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

from tfmodels import registry
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.models.backbone import reset_trainable
from tfmodels.training.callbacks import EpochBackup, LearningRateLogger, StopOnNaN
from tfmodels.training.data_budget import shuffle_buffer
from tfmodels.training.finetune import check_phases, frozen_phase_marker, initialise_from, plan_phases
from tfmodels.training.optimization import make_optimizer, schedule_callbacks
from tfmodels.training.run_folder import RunFolder


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


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
    shuffle_buffer: int | None = None,
    element_transform=None,
) -> tf.data.Dataset:
    """Epochs ``initial_epoch .. end_epoch-1`` (default: to ``cfg.epochs``) of shuffled batches, as one dataset.

    ``transform`` (the recipe's ``train_transform``) maps each batch after batching, so random
    augmentation is drawn anew every epoch rather than cached. ``element_transform`` (the
    recipe's ``train_element_transform``) maps each example after shuffling and before batching,
    as ``fn(seed, *example)`` with the stateless seed ``[epoch seed, position in the epoch]``:
    random crops of images of different sizes, which can only be batched once cropped. Both draw
    from the run seed and the epoch only, so a resumed run sees what an uninterrupted one did.
    ``shuffle_buffer`` (examples) defaults to ``cfg.shuffle_buffer``, or the whole training set.
    """
    buffer = shuffle_buffer or cfg.shuffle_buffer or n_train

    def one_epoch(epoch):
        # The shuffle seed is a tensor here; TF's seed helper compares the graph seed with 0 in
        # Python and fails when it is 0 (``--set seed=0``). This graph-level seed applies to this
        # traced function only; the order depends on the op seed alone.
        tf.random.set_seed(1)
        data = train.shuffle(buffer, seed=_epoch_seed(cfg.seed, epoch)) if cfg.shuffle else train
        if element_transform is not None:
            epoch_seed = _epoch_seed(cfg.seed, epoch)
            data = data.enumerate().map(
                lambda position, example: element_transform(tf.stack([epoch_seed, position]), *example),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
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
    with path.open() as f:
        by_epoch = {int(row["epoch"]): row for row in csv.DictReader(f)}
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [float(r[k]) for r in rows] for k in keys}


def _drop_redone_epochs(path: Path, initial_epoch: int) -> None:
    """Keeps the CSV rows of the epochs before ``initial_epoch``: a kill before an epoch's commit
    left its row behind, and the resumed run writes that epoch again."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [lines[0], *(line for line in lines[1:] if int(line.split(",", 1)[0]) < initial_epoch)]
    if len(kept) < len(lines):
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text("".join(kept))
        os.replace(partial, path)


def _plot_curves(history: Mapping[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # ``student_<key>`` (semi-supervised runs: the trained network beside the exported EMA teacher)
    # shares ``<key>``'s panel, dashed, so the two curves read against each other.
    keys = [k for k in history if not k.startswith("val_") and not (k.startswith("student_") and k[len("student_"):] in history)]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = range(1, len(history[key]) + 1)
        student = f"student_{key}" in history
        ax.plot(epochs, history[key], label="train (teacher)" if student else "train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation (teacher)" if student else "validation")
        if student:
            ax.plot(epochs, history[f"student_{key}"], "--", label="train (student)")
            if f"val_student_{key}" in history:
                ax.plot(epochs, history[f"val_student_{key}"], "--", label="validation (student)")
        if f"val_{key}" in history or student:
            ax.legend()
        ax.set_title(key)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def best_mode(monitor: str) -> str:
    """``max`` for accuracy-like metrics, ``min`` for losses and errors."""
    return "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall", "f1", "iou", "map", "bleu")) else "min"


def check_monitor(model: keras.Model, validation: tf.data.Dataset, monitor: str) -> None:
    """Fails before training when ``monitor`` is not among the logged metrics.

    ``validation`` is batched and not cached (reading one batch of a cache would discard it).

    The names come from evaluating the compiled model on one validation batch: exactly the keys
    Keras logs (``loss``, ``accuracy``, ``logits_accuracy``, ...), each also with ``val_``.
    """
    logged = list(model.evaluate(validation.take(1), verbose=0, return_dict=True))
    known = [*logged, *(f"val_{k}" for k in logged), "learning_rate"]
    if monitor not in known:
        raise ConfigError(f"monitor {monitor!r} is not a logged metric of this model; choose one of: {', '.join(known)}")


def _checkpoint(cfg: TrainConfig, best_path: Path, history_path: Path, initial_epoch: int) -> keras.callbacks.ModelCheckpoint:
    """Keeps the best epoch's weights; a resumed run keeps the better one of before the kill."""
    mode = best_mode(cfg.monitor)
    earlier = _read_history(history_path) if initial_epoch else {}
    best_so_far = None
    if earlier.get(cfg.monitor):
        best_so_far = (max if mode == "max" else min)(earlier[cfg.monitor][:initial_epoch])
    return keras.callbacks.ModelCheckpoint(
        str(best_path), monitor=cfg.monitor, mode=mode, save_best_only=True, save_weights_only=True,
        initial_value_threshold=best_so_far,
    )


def fit_stage(
    recipe: registry.Recipe,
    cfg: TrainConfig,
    run: RunFolder,
    data,
    model: keras.Model,
    dist: tf.distribute.Strategy,
    callbacks: Sequence[keras.callbacks.Callback],
) -> None:
    """Trains ``model`` to ``cfg.epochs``, then writes model.keras (best weights) and the curves."""
    name, run_dir = recipe.name, run.path
    n_train, n_val, n_test = data.sizes
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
    if initial_epoch:
        print(f"Resuming {name} from epoch {initial_epoch + 1} of {cfg.epochs} ({run_dir})")
    split_evenly = replicas > 1
    transform = recipe.train_transform(cfg) if recipe.train_transform is not None else None
    element_transform = recipe.train_element_transform(cfg) if recipe.train_element_transform is not None else None
    val_ds = data.splits.validation.batch(val_batch, drop_remainder=split_evenly).prefetch(tf.data.AUTOTUNE)

    check_phases(model, phases)
    transferred = initialise_from(model, cfg.init_from) if cfg.init_from else 0
    if transferred:
        print(f"Initialised {transferred} backbone layers from {cfg.init_from}; the head is new")
    if phases[0].name == "finetune":
        model.load_weights(str(marker))

    best_path, history_path = run_dir / "best.weights.h5", run_dir / "history.csv"
    _drop_redone_epochs(history_path, initial_epoch)
    nan_guard = StopOnNaN()
    # One instance for all phases, so the best epoch is the best of the whole run.
    checkpoint = _checkpoint(cfg, best_path, history_path, initial_epoch)
    print(
        f"Training {name} [{run.preset}] on {data.splits.info.get('source', cfg.data)}: "
        f"{n_train} train / {n_val} validation / {n_test} test examples, "
        f"global batch {global_batch} on {replicas} replica(s), "
        f"{model.count_params():,} parameters -> {run_dir}"
    )
    started = time.time()
    for i, phase in enumerate(phases):
        phase.prepare(model)
        with dist.scope():
            model.compile(
                optimizer=make_optimizer(phase.optimizer_config(cfg), steps_per_epoch),
                jit_compile=cfg.jit_compile,
                **recipe.compile_args(cfg),
            )
        if i == 0:
            check_monitor(model, data.uncached.validation.batch(val_batch), cfg.monitor)
        if phase.name != "train":
            trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            print(
                f"Phase {phase.name}: epochs {phase.first_epoch + 1}-{phase.end_epoch}, learning rate "
                f"{phase.learning_rate:g}, {trainable:,} trainable parameters"
            )
        # Order matters for "nothing lost": everything of an epoch (best checkpoint, CSV row) is
        # on disk before EpochBackup commits the epoch; a kill before the commit redoes the epoch.
        all_callbacks = [
            LearningRateLogger(),
            nan_guard,
            checkpoint,
            keras.callbacks.CSVLogger(str(history_path), append=initial_epoch > 0),
            EpochBackup(phase.backup_dir),
            keras.callbacks.TensorBoard(str(run_dir / "logs")),
            *schedule_callbacks(cfg),
            *callbacks,
        ]
        train_ds = training_dataset(
            data.splits.train, cfg, global_batch, n_train, initial_epoch, split_evenly, transform, phase.end_epoch,
            shuffle_buffer(cfg, n_train, data.train_example_bytes), element_transform,
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
    _finish_fit(cfg, run, data, model, global_batch, replicas, time.time() - started, transferred)


def _finish_fit(cfg: TrainConfig, run: RunFolder, data, model: keras.Model, global_batch: int, replicas: int,
                seconds: float, transferred: int) -> None:
    """model.keras with the best weights, the curves and the fit's metrics; then the stage is done."""
    run_dir = run.path
    reset_trainable(model)
    with warnings.catch_warnings():
        # The best epoch may come from an earlier phase, whose optimizer had other variables;
        # only the model's weights are wanted here.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(run_dir / "best.weights.h5"))
    partial = run_dir / ".model.partial.keras"
    model.save(partial)
    os.replace(partial, run_dir / "model.keras")
    hist = _read_history(run_dir / "history.csv")  # all epochs, also those before a resume
    _plot_curves(hist, run_dir / "curves.png")
    scores = hist[cfg.monitor]
    best_epoch = int(np.argmax(scores) if best_mode(cfg.monitor) == "max" else np.argmin(scores))
    fit_metrics: dict[str, Any] = {
        "model": run.model,
        "preset": run.preset,
        "data": data.splits.info,
        "parameters": int(model.count_params()),
        "replicas": int(replicas),
        "global_batch": int(global_batch),
        "epochs": len(hist["loss"]),
        "best_epoch": best_epoch + 1,
        "validation": {k[4:]: float(v[best_epoch]) for k, v in hist.items() if k.startswith("val_")},
        "train_seconds": round(seconds, 1),
    }
    if cfg.init_from or cfg.freeze_epochs:
        fit_metrics["transfer"] = {
            "init_from": cfg.init_from,
            "backbone_layers_copied": transferred,
            "frozen_epochs": cfg.freeze_epochs,
        }
    run.add_metrics(**fit_metrics)
    run.finish("fit")
