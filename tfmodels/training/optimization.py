"""Optimizer, learning-rate schedule and gradient clipping, all from the config."""

from __future__ import annotations

import keras

from tfmodels.config import TrainConfig


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    """The learning rate as a Keras schedule over optimizer steps (or a float).

    ``step``/``multistep`` count in epochs like the notes' ``StepLR``/``MultiStepLR`` (S25);
    ``plateau`` is a callback (:func:`schedule_callbacks`), so the rate here is a plain float.
    """
    lr = cfg.learning_rate
    epoch_steps = max(1, steps_per_epoch)
    if cfg.lr_schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=cfg.lr_step_epochs * epoch_steps, decay_rate=cfg.lr_gamma, staircase=True
        )
    if cfg.lr_schedule == "multistep":
        milestones = sorted(cfg.lr_milestones)
        if not milestones:
            raise ValueError("lr_schedule=multistep needs lr_milestones, e.g. --set lr_milestones=20,50,80")
        values = [lr * cfg.lr_gamma**i for i in range(len(milestones) + 1)]
        # PiecewiseConstantDecay keeps values[i] while step <= boundaries[i]; the decay takes
        # effect at the first step of each milestone epoch, as MultiStepLR does.
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [m * epoch_steps - 1 for m in milestones], values
        )
    warmup_steps = cfg.warmup_epochs * epoch_steps
    if cfg.lr_schedule == "cosine":
        total = cfg.epochs * epoch_steps
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else lr,
            decay_steps=max(1, total - warmup_steps),
            warmup_target=lr if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    if warmup_steps:  # constant after a linear warm-up: a cosine whose floor (alpha) is 1
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=lr, warmup_steps=warmup_steps
        )
    return lr


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg, steps_per_epoch)
    clip = {"global_clipnorm": cfg.clip_global_norm} if cfg.clip_global_norm > 0 else {}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, **clip)
    if cfg.optimizer == "momentum":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum or 0.9, **clip)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay, **clip)
    return keras.optimizers.Adam(lr, **clip)


def schedule_callbacks(cfg: TrainConfig) -> list[keras.callbacks.Callback]:
    if cfg.lr_schedule != "plateau":
        return []
    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", mode="min", factor=cfg.lr_gamma, patience=cfg.lr_patience, verbose=1
        )
    ]
