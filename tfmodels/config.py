"""Configs: dataclasses with named presets and type-checked ``key=value`` overrides.

Every recipe's config subclasses :class:`TrainConfig`. A recipe declares its presets as a
``PRESETS`` mapping ``{"tiny": {...}, "default": {...}, "paper": {...}}`` of field overrides on
top of the dataclass defaults; :func:`resolve` applies a preset, then the user's overrides, and
checks every value against the field's declared type.

Example:
    >>> from tfmodels.config import TrainConfig, resolve
    >>> cfg = resolve(TrainConfig, "default", ["epochs=3", "learning_rate=0.1"])
    >>> cfg.epochs, cfg.learning_rate
    (3, 0.1)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from typing import Any, ClassVar, Mapping, Sequence

PRESET_NAMES = ("tiny", "default", "paper")


class ConfigError(ValueError):
    """A preset, a key or a value that the config does not accept."""


@dataclasses.dataclass
class TrainConfig:
    """Settings every recipe shares: data, optimisation, schedule, scale and reproducibility.

    Args:
        data: where the data comes from: ``embedded`` (shipped with a dependency, offline),
            ``tfds:<name>`` or a recipe-specific source; see each recipe.
        epochs: passes of the training loop (an "epoch" may repeat small data, see
            ``repeats_per_epoch``).
        batch_size: per-replica batch size; the global batch is this times the replica count.
            ``0`` means the whole training set in one batch (full-batch gradient descent).
        repeats_per_epoch: passes over the training data per Keras epoch, so that tiny data sets
            do not pay per-epoch checkpointing for every one of thousands of steps.
        optimizer: ``sgd``, ``momentum`` (SGD with ``momentum``), ``adam`` or ``adamw``.
        learning_rate: peak learning rate.
        momentum: momentum of ``momentum`` (and ``sgd`` when non-zero).
        weight_decay: decoupled weight decay for ``adamw``.
        lr_schedule: ``constant``, ``step`` (x ``lr_gamma`` every ``lr_step_epochs``),
            ``multistep`` (x ``lr_gamma`` at each of ``lr_milestones``), ``cosine`` or ``plateau``
            (x ``lr_gamma`` after ``lr_patience`` epochs without ``val_loss`` improvement).
        warmup_epochs: linear warm-up from 0 (``constant`` and ``cosine`` schedules).
        clip_global_norm: clip gradients to this global norm (0 = off).
        init_from: transfer learning: a run directory (or its ``model.keras``) of the same
            architecture whose backbone weights initialise this model; the head is new
            (notes-002 S22). ``""`` = as the recipe builds it.
        freeze_epochs: fine-tuning in two phases (notes-002 S22-S23): the first
            ``freeze_epochs`` epochs train the head on a frozen backbone at ``learning_rate``;
            the remaining epochs train everything at ``finetune_learning_rate``. 0 = one phase.
        finetune_learning_rate: learning rate of the second phase (0 = ``learning_rate / 10``).
        seed: seeds Python, NumPy, TensorFlow, shuffling, initialisation and every random
            training transform (augmentation, MixUp, CutMix, BERT's re-masking).
        data_seed: seeds what defines the data: splits, generated tasks, vocabulary learning,
            evaluation masks. Kept apart from ``seed`` so a seed sweep is scored on one test set.
        deterministic: make TensorFlow ops deterministic (bitwise-repeatable runs).
        strategy: ``default``, ``mirrored`` or ``multi_worker`` (needs ``TF_CONFIG``).
        mixed_precision: the Keras dtype policy of training (:mod:`tfmodels.training.precision`):
            ``none`` (float32), ``float16`` (``mixed_float16``), ``bfloat16`` (``mixed_bfloat16``)
            or ``auto`` (``mixed_bfloat16`` where the CPU has AMX / AVX512-BF16 or every GPU is
            Ampere or newer, else float32). Variables, losses and served tensors stay float32.
            The booleans of older configs still read: ``true`` is ``float16``, ``false`` ``none``.
        jit_compile: compile the train step with XLA (needs ``deterministic=false``).
        shuffle: reshuffle the training data every epoch (seeded by ``seed`` and the epoch).
        shuffle_buffer: shuffle buffer in examples (0 = the whole training set when it fits in
            half of ``cache_budget_mb``, else as many examples as fit, at least 1,024).
        cache: where splits are cached between epochs: ``auto`` (in RAM when a split fits its share
            of ``cache_budget_mb``, else streamed from its source), ``memory``, ``disk`` (files
            in the run folder) or ``none`` (:mod:`tfmodels.training.data_budget`).
        cache_budget_mb: the memory budget of caches and the shuffle buffer, in MiB.
        monitor: metric that selects the best checkpoint, e.g. ``val_loss`` or ``val_accuracy``.
        verbose: Keras progress output (1 = progress bar, 2 = one line per epoch).
        run_dir: the run folder whose saved assets (vocabularies, class names, statistics) the
            recipe uses (:mod:`tfmodels.training.run_assets`). Set by the trainer and by
            ``evaluate``/``export``, never saved in ``config.json`` and never set by hand;
            ``""`` outside a run (``tfmodels.build``): assets are then derived from the data.
    """

    data: str = "embedded"
    epochs: int = 10
    batch_size: int = 64
    repeats_per_epoch: int = 1
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_gamma: float = 0.1
    lr_step_epochs: int = 10
    lr_milestones: tuple[int, ...] = ()
    lr_patience: int = 5
    warmup_epochs: int = 0
    clip_global_norm: float = 0.0
    init_from: str = ""
    freeze_epochs: int = 0
    finetune_learning_rate: float = 0.0
    seed: int = 42
    data_seed: int = 42
    deterministic: bool = True
    strategy: str = "default"
    mixed_precision: str = "none"
    jit_compile: bool = False
    shuffle: bool = True
    shuffle_buffer: int = 0
    cache: str = "auto"
    cache_budget_mb: int = 4096
    monitor: str = "val_loss"
    verbose: int = 1
    run_dir: str = dataclasses.field(default="", compare=False)

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1},
        "default": {},
        "paper": {},
    }

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "optimizer": ("sgd", "momentum", "adam", "adamw"),
        "lr_schedule": ("constant", "step", "multistep", "cosine", "plateau"),
        "strategy": ("default", "mirrored", "multi_worker"),
        "cache": ("auto", "memory", "disk", "none"),
        "mixed_precision": ("none", "float16", "bfloat16", "auto"),
    }

    def __post_init__(self) -> None:
        for key, allowed in self.CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"bad value for {key!r}: {getattr(self, key)!r}; choose one of: {', '.join(allowed)}"
                )
        if self.epochs < 1 or self.batch_size < 0 or self.repeats_per_epoch < 1 or min(self.seed, self.data_seed) < 0:
            raise ConfigError("epochs and repeats_per_epoch must be >= 1; batch_size, seed and data_seed >= 0")
        if not 0 <= self.freeze_epochs <= self.epochs:
            raise ConfigError(f"freeze_epochs must be between 0 and epochs ({self.epochs}), got {self.freeze_epochs}")
        if self.jit_compile and self.deterministic:
            raise ConfigError(
                "jit_compile=true needs deterministic=false: Keras runs without XLA while TensorFlow's op "
                "determinism is on (not every XLA kernel is deterministic)"
            )
        if self.cache_budget_mb < 0 or self.shuffle_buffer < 0:
            raise ConfigError("cache_budget_mb and shuffle_buffer must be >= 0")
        if self.warmup_epochs and self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError("warmup_epochs works with the constant and cosine schedules only")

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``run_dir`` (a copied run folder must not point at its old place)."""
        values = dataclasses.asdict(self)
        del values["run_dir"]
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def field_names(config_cls: type[TrainConfig]) -> list[str]:
    return [f.name for f in dataclasses.fields(config_cls)]


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def _upgrade_mixed_precision(value: Any) -> Any:
    """``mixed_precision`` was a bool until bfloat16 came (issue 11): ``true`` meant ``mixed_float16``.

    Saved ``config.json`` files and ``--set mixed_precision=true`` keep working; other values pass
    through to the usual checks.
    """
    if isinstance(value, str):
        try:
            value = _parse_bool(value)
        except ValueError:
            return value
    if isinstance(value, bool):
        return "float16" if value else "none"
    return value


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Converts ``value`` (a string from the command line, or a Python value) to ``annotation``."""
    origin = typing.get_origin(annotation)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                return _parse_bool(value)
            raise ValueError(f"expected a bool, got {value!r}")
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError(f"expected a number, got {value!r}")
            return float(value)
        if annotation is str:
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            return value
        if origin is tuple:
            (item_type, _ellipsis) = typing.get_args(annotation)
            if isinstance(value, str):
                items = [v for v in value.replace(" ", "").split(",") if v]
            else:
                items = list(value)
            return tuple(_coerce(key, v, item_type) for v in items)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad value for {key!r}: {err}") from None
    raise ConfigError(f"field {key!r} has an unsupported type {annotation!r}")


def _field_types(config_cls: type[TrainConfig]) -> dict[str, Any]:
    return typing.get_type_hints(config_cls)


def parse_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Turns ``["k=v", ...]`` (the CLI's ``--set``) or a mapping into a dict of raw values."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad override {item!r}: expected key=value")
        parsed[key.strip()] = value
    return parsed


def resolve(
    config_cls: type[TrainConfig],
    preset: str = "default",
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Builds a config: dataclass defaults, then the preset, then the overrides.

    Raises:
        ConfigError: unknown preset, unknown key (with close matches) or a value of the wrong type.
    """
    if preset not in config_cls.PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}; choose one of: {', '.join(config_cls.PRESETS)}"
        )
    types = _field_types(config_cls)
    values = dict(config_cls.PRESETS[preset])
    values.update(parse_overrides(overrides))
    for key in values:
        if key not in types or key in ("PRESETS", "CHOICES"):
            close = difflib.get_close_matches(key, field_names(config_cls), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"unknown config key {key!r} for {config_cls.__name__}{hint}; "
                f"known keys: {', '.join(field_names(config_cls))}"
            )
    if "run_dir" in values:
        raise ConfigError("run_dir is not a setting: the trainer, evaluate and export set it to the run folder")
    if "mixed_precision" in values:
        values["mixed_precision"] = _upgrade_mixed_precision(values["mixed_precision"])
    typed = {key: _coerce(key, value, types[key]) for key, value in values.items()}
    return config_cls(**typed)
