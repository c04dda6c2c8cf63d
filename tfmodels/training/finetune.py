"""Training phases and initialisation from an earlier run: transfer learning in the one trainer.

notes-002-part1 S22-S23: (1) put a new head on a pretrained base, (2) freeze the base, (3) train
the head, (4) unfreeze the base, (5) train everything jointly with a smaller learning rate
(Adam 1e-3, then 1e-4 in the notes). Keras needs the model recompiled, with a fresh optimizer,
when ``trainable`` changes, so each phase is its own ``fit`` over its own epochs, with its own
BackupAndRestore directory; a marker file records that the frozen phase finished, so a run
killed in either phase resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from tfmodels.config import ConfigError, TrainConfig
from tfmodels.models.backbone import backbone_layers, copy_backbone_weights, set_backbone_trainable


@dataclasses.dataclass(frozen=True)
class Phase:
    """One ``fit`` of a run.

    Args:
        name: ``train`` (a one-phase run), ``frozen`` or ``finetune``.
        first_epoch: its first epoch (0-based, counted over the whole run).
        end_epoch: one past its last epoch.
        learning_rate: its peak learning rate (its schedule restarts with the phase).
        backbone_trainable: ``None`` leaves the model as built; ``False``/``True`` freezes or
            unfreezes the backbone (:func:`tfmodels.models.backbone.set_backbone_trainable`).
        backup_dir: its BackupAndRestore directory.
    """

    name: str
    first_epoch: int
    end_epoch: int
    learning_rate: float
    backbone_trainable: bool | None
    backup_dir: Path

    def optimizer_config(self, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with this phase's learning rate and length (what its optimizer is made from)."""
        return dataclasses.replace(
            cfg,
            learning_rate=self.learning_rate,
            epochs=self.end_epoch - self.first_epoch,
            freeze_epochs=0,
            warmup_epochs=min(cfg.warmup_epochs, self.end_epoch - self.first_epoch),
        )

    def prepare(self, model: keras.Model) -> None:
        """Freezes or unfreezes the backbone for this phase (then the model must be compiled)."""
        if self.backbone_trainable is not None:
            set_backbone_trainable(model, self.backbone_trainable)


def plan_phases(cfg: TrainConfig, run_dir: Path) -> list[Phase]:
    """One phase, or the frozen and fine-tuning phases when ``cfg.freeze_epochs`` is set."""
    if not cfg.freeze_epochs:
        return [Phase("train", 0, cfg.epochs, cfg.learning_rate, None, run_dir / "backup")]
    phases = [Phase("frozen", 0, cfg.freeze_epochs, cfg.learning_rate, False, run_dir / "backup" / "frozen")]
    if cfg.freeze_epochs < cfg.epochs:
        finetune_lr = cfg.finetune_learning_rate or cfg.learning_rate / 10
        phases.append(Phase("finetune", cfg.freeze_epochs, cfg.epochs, finetune_lr, True, run_dir / "backup" / "finetune"))
    return phases


def frozen_phase_marker(run_dir: Path) -> Path:
    """Weights at the end of the frozen phase; their presence means the phase is complete."""
    return run_dir / "frozen_phase.weights.h5"


def source_model_path(init_from: str) -> Path:
    """The ``.keras`` file behind ``init_from`` (a run directory or the file itself).

    Raises:
        ConfigError: when there is no such run or file.
    """
    path = Path(init_from)
    if path.is_dir():
        path = path / "model.keras"
    if path.suffix != ".keras" or not path.is_file():
        raise ConfigError(
            f"init_from={init_from!r}: expected a finished run directory (with model.keras) or a .keras file"
        )
    return path


def initialise_from(model: keras.Model, init_from: str) -> int:
    """Copies the backbone of the model saved at ``init_from`` into ``model``; returns the layer count.

    Raises:
        ConfigError: for a missing source or one whose backbone does not fit ``model``'s.
    """
    source = keras.saving.load_model(source_model_path(init_from), compile=False)
    try:
        return copy_backbone_weights(source, model)
    except ValueError as err:
        raise ConfigError(f"init_from={init_from!r}: {err}") from None


def check_phases(model: keras.Model, phases: list[Phase]) -> None:
    """Fails early, with the reason, when a model cannot be trained in frozen/fine-tune phases."""
    if any(p.backbone_trainable is not None for p in phases):
        try:
            backbone_layers(model)
        except ValueError as err:
            raise ConfigError(f"freeze_epochs: {err}") from None
