"""``mae_classifier``: a ViT classifier whose encoder is a finished ``mae`` run's, fine-tuned or linearly probed.

Spec: notes-001.md §26 (seed 001 L699-703): the decoder is used only in pre-training and
discarded for downstream tasks; the pre-trained encoder carries over. Paper defaults (He et al.
2022): fine-tuning trains everything with a new head; the *linear probe* trains only a linear
head on frozen features (the paper adds a BatchNorm without affine parameters before it; here the
head reads the class token directly, a plain linear probe). Masking is **off**: the classifier is
a plain :func:`tfmodels.models.vit.build_vit` with no masking layer in it, so fine-tuning,
evaluation and serving all see every patch (the mistake of facebookresearch/mae#203 cannot happen).

Pre-trained weights: ``pretrained`` names a finished ``mae`` run directory (or its
``model.keras``); its encoder layers (patch projection, position embeddings, class token,
Transformer blocks, final LayerNorm) are copied by name into the ViT
(:func:`tfmodels.models.mae.encoder_weights_to_vit`), and the run's ``model.keras`` holds them
afterwards: evaluate, export and a copied run work after the ``mae`` run folder is deleted.
With ``pretrained`` empty the recipe stops with a :class:`~tfmodels.config.ConfigError` naming
the command to run first. Example::

    make train MODEL=mae
    make train MODEL=mae_classifier ARGS="--set pretrained=runs/mae/<timestamp>"
    make train MODEL=mae_classifier ARGS="--set pretrained=runs/mae/<timestamp> --set linear_probe=true"

Data, labels, augmentation, serving and class names: as ``vit``'s (:mod:`tfmodels.recipes.image_classifiers`),
so a ``vit`` run from scratch and this one are comparable on the same split and budget.

Presets: ``tiny`` (tests), ``default`` (``vit``'s default budget: 30 epochs, RandAugment,
AdamW 1e-3 with weight decay 0.05, 2 warm-up epochs, cosine), ``paper`` (the MAE paper's
ViT-B fine-tuning: AdamW at base lr 5e-4 × 1024/256 = 2e-3, batch 1024, weight decay 0.05,
100 epochs, 5 warm-up epochs, RandAugment, MixUp 0.8, CutMix 1.0: paper defaults, on
``tfds:imagenet2012``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras

from tfmodels.config import ConfigError
from tfmodels.models.mae import MaskedAutoencoder, encoder_weights_to_vit
from tfmodels.models.vit import build_vit
from tfmodels.recipes import mae
from tfmodels.recipes.image_classifiers import TRANSFORMER_DEFAULT, ImageClassifierConfig
from tfmodels.registry import Recipe, register


@dataclasses.dataclass
class MaeClassifierConfig(ImageClassifierConfig):
    """Fine-tuning / linear-probe config (shared fields: :class:`ImageClassifierConfig`).

    Args:
        pretrained: a finished ``mae`` run directory, or its ``model.keras`` (required).
        linear_probe: train only the new head on the frozen encoder.
    """

    pretrained: str = ""
    linear_probe: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights or self.init_from or self.freeze_epochs:
            raise ConfigError("mae_classifier takes its encoder from `pretrained` (an mae run); weights, init_from "
                              "and freeze_epochs do not apply (use linear_probe=true to freeze the encoder)")

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "batch_size": 32, "verbose": 2},
        "default": TRANSFORMER_DEFAULT,
        "paper": {"data": "tfds:imagenet2012", "image_size": 224, "epochs": 100, "batch_size": 1024,
                  "optimizer": "adamw", "learning_rate": 2e-3, "weight_decay": 0.05, "warmup_epochs": 5,
                  "lr_schedule": "cosine", "augment": "randaugment", "mixup": 0.8, "cutmix": 1.0},
    }


def _newest_pretraining_run() -> Path | None:
    runs = sorted(p.parent for p in Path("runs", "mae").glob("*/model.keras"))
    return runs[-1] if runs else None


def pretrained_mae(cfg: MaeClassifierConfig) -> MaskedAutoencoder:
    """The ``mae`` model of the ``pretrained`` run.

    Raises:
        ConfigError: ``pretrained`` is empty or does not name a finished ``mae`` run.
    """
    if not cfg.pretrained:
        newest = _newest_pretraining_run()
        hint = f" (the newest here: --set pretrained={newest})" if newest else ""
        raise ConfigError(
            "mae_classifier fine-tunes a pre-trained encoder: run `make train MODEL=mae` first, then name "
            f"its run directory with --set pretrained=runs/mae/<timestamp>{hint}"
        )
    path = Path(cfg.pretrained)
    path = path / "model.keras" if path.is_dir() else path
    if path.suffix != ".keras" or not path.is_file():
        raise ConfigError(f"pretrained={cfg.pretrained!r}: expected a finished mae run directory (with model.keras)")
    source = keras.saving.load_model(path, compile=False)
    if not isinstance(source, MaskedAutoencoder):
        raise ConfigError(f"pretrained={cfg.pretrained!r} is a {type(source).__name__}, not an mae model")
    return source


def model(cfg: MaeClassifierConfig) -> keras.Model:
    """A ViT with the pre-trained encoder and a new head; the encoder frozen for a linear probe."""
    source = pretrained_mae(cfg)
    size = source.encoder_config["image_size"]
    if cfg.image_size != size:
        print(f"Note: the mae run's encoder was pre-trained at {size}²; its position grid is interpolated to {cfg.image_size}²")
    net = build_vit(len(mae.class_names(cfg)), input_shape=(cfg.image_size, cfg.image_size, 3), **source.encoder_config)
    copied = encoder_weights_to_vit(source, net)
    print(f"Initialised {copied} encoder layers from {cfg.pretrained}; the head is new")
    if cfg.linear_probe:
        for layer in net.layers:
            layer.trainable = layer.name == "head"
    return net


def _vit_recipe() -> Recipe:
    """``vit``'s recipe: the same data, loss, augmentation and serving (only the model differs)."""
    from tfmodels import registry

    return registry.get("vit")


RECIPE = register(
    Recipe(
        name="mae_classifier",
        description="ViT classifier from an mae run's encoder: fine-tuning or linear probe, masking off (notes-001 §26)",
        config=MaeClassifierConfig,
        datasets=lambda cfg: _vit_recipe().datasets(cfg),
        model=model,
        compile_args=lambda cfg: _vit_recipe().compile_args(cfg),
        serving=lambda cfg, trained: _vit_recipe().serving(cfg, trained),
        serving_examples=lambda cfg, trained, test: _vit_recipe().serving_examples(cfg, trained, test),
        train_transform=lambda cfg: _vit_recipe().train_transform(cfg),
    )
)
