"""``mae``: masked-autoencoder pre-training of a ViT encoder on unlabelled images (notes-001 §26).

Spec: notes-001.md §26 (seed 001 L677-718): split the image into patches, drop a random 75 % of
them, encode only the visible ones with a ViT, and let a light decoder with mask tokens and
position embeddings reconstruct the pixels; the loss is the pixel MSE. Paper defaults (He et al.
2022) where the notes are silent: the loss on the masked patches only, per-patch normalised
targets, the decoder discarded after pre-training. Network: :mod:`tfmodels.models.mae` (encoder
layers named as :func:`tfmodels.models.vit.build_vit`'s, so they move into a ViT by name).

Two steps, like ``bert_mlm`` → ``bert_classifier``::

    make train MODEL=mae                                          # this recipe: no labels used
    make train MODEL=mae_classifier ARGS="--set pretrained=runs/mae/<timestamp>"

Data: the images of :mod:`pipelines.image_classification` (``embedded`` digits at 32², or any
source there). The labels travel with the elements (the one pipeline) but the model never reads
them: :meth:`~tfmodels.models.mae.MaskedAutoencoder.compute_loss` takes the images only.

Report (``metrics.json``): the masked-patch MSE on the test split beside the baseline that
predicts 0 for every masked patch (mid-grey with plain targets; with normalised targets, each
patch's own mean), and
``reconstructions.png``: test digits in rows original | masked | reconstruction. Masks are
random, so these numbers vary a little from call to call. With ``norm_pix_loss`` the picture maps
predictions back with each original patch's mean and standard deviation (as the paper's code
does), so masked patches get their brightness from the original; the ``default`` preset trains on
plain pixels, so its picture is the model's alone.

Serving: ``serving_default`` takes ``image_bytes`` and returns the encoder's ``features``
(float32 [B, D], the class token after the final LayerNorm, masking off); ``predict_pixels``
takes pixels. A classifier is served by ``mae_classifier``. Reconstruction is not exported: it is
random by design and only a pre-training diagnostic (the picture shows it).

Presets: ``tiny`` (tests), ``default`` (the 142k-parameter ViT of ``vit``'s default with a
32-wide, 2-block decoder; 50 epochs of AdamW lr 1e-3, weight decay 0.05, 5 warm-up epochs and
cosine decay at batch 64: CPU scale) and ``paper`` (ViT-B/16 with the 512-wide, 8-block decoder,
AdamW lr 1.5e-4·4096/256, weight decay 0.05, batch 4096, 800 epochs, 40 warm-up epochs: paper
defaults, on ``tfds:imagenet2012``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import image_classification, images
from pipelines.splits import Splits
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.models.mae import build_mae, mae_config
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset


@dataclasses.dataclass
class MaeConfig(TrainConfig):
    """MAE pre-training config.

    Args:
        variant: ``tiny`` (the CPU-scale ViT: 32², patch 4, D 64, 4 layers) or ``b16``
            (ViT-B/16; :func:`tfmodels.models.mae.mae_config`).
        mask_ratio: share of the patches dropped per image (0.75, notes and paper).
        norm_pix_loss: per-patch normalised targets (paper default).
        pictures: test images shown in ``reconstructions.png``.
    """

    variant: str = "tiny"
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True
    pictures: int = 8

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "variant": ("tiny", "b16")}
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "batch_size": 32, "verbose": 2},
        # Plain pixel targets by default: with per-patch normalised targets a picture must borrow each
        # masked patch's mean and contrast from the original, and would not show what the model knows.
        "default": {"epochs": 50, "batch_size": 64, "optimizer": "adamw", "learning_rate": 1e-3,
                    "weight_decay": 0.05, "warmup_epochs": 5, "lr_schedule": "cosine", "norm_pix_loss": False},
        "paper": {"variant": "b16", "data": "tfds:imagenet2012", "epochs": 800, "batch_size": 4096,
                  "optimizer": "adamw", "learning_rate": 1.5e-4 * 4096 / 256, "weight_decay": 0.05,
                  "warmup_epochs": 40, "lr_schedule": "cosine"},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"mask_ratio must be strictly between 0 and 1, got {self.mask_ratio}")

    @property
    def image_size(self) -> int:
        return mae_config(self.variant)["image_size"]


def class_names(cfg: TrainConfig) -> list[str]:
    """The source's classes (``assets/class_names.json``): unused by MAE, kept so the run documents its data."""
    return json_asset(cfg, "class_names.json", lambda: image_classification.class_names(cfg.data))


def datasets(cfg: MaeConfig) -> Splits:
    size = (cfg.image_size, cfg.image_size)
    return image_classification.load(cfg.data, size, seed=cfg.data_seed, run_class_names=class_names(cfg))


def model(cfg: MaeConfig) -> keras.Model:
    return build_mae(**mae_config(cfg.variant), mask_ratio=cfg.mask_ratio, norm_pix_loss=cfg.norm_pix_loss, seed=cfg.seed)


def compile_args(cfg: MaeConfig) -> dict:
    return {"loss": None, "metrics": []}  # the masked-patch MSE is the model's own compute_loss


def _features(trained: keras.Model):
    return lambda pixels: trained.encode(pixels, training=False)[:, 0]


def serving(cfg: MaeConfig, trained: keras.Model) -> Serving:
    size = cfg.image_size
    features = _features(trained)
    outputs = {"features": f"float32 [B, {trained.encoder_config['hidden_dim']}]: the encoder's class token, no masking"}
    return Serving(
        {
            "serving_default": Endpoint(
                lambda image_bytes: {"features": features(images.decode_batch(image_bytes, (size, size), 3))},
                {"image_bytes": tf.TensorSpec([None], tf.string)}, outputs,
            ),
            "predict_pixels": Endpoint(
                lambda pixels: {"features": features(pixels)},
                {"pixels": tf.TensorSpec([None, size, size, 3], tf.float32)}, outputs,
            ),
        }
    )


def serving_examples(cfg: MaeConfig, trained: keras.Model, test: tf.data.Dataset, count: int = 4) -> dict:
    pixels = next(iter(test.map(lambda x, *_: x).batch(count))).numpy()
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.float32)  # what an 8-bit image file holds
    expected = {"features": np.asarray(_features(trained)(tf.constant(pixels)), np.float32)}
    encoded = np.array([images.encode_png(p).numpy() for p in pixels], dtype=object)
    return {
        "serving_default": ServingExample({"image_bytes": encoded}, expected),
        "predict_pixels": ServingExample({"pixels": pixels}, expected),
    }


def masked_mse_and_baseline(trained: keras.Model, test: tf.data.Dataset, batch_size: int) -> tuple[float, float]:
    """Mean masked-patch MSE of the model and of predicting 0 for every masked patch, on the same masks.

    0 is mid-grey in the encoder's ``[-1, 1]`` pixels (plain targets) or each patch's own mean
    (normalised targets)."""
    ours, zeros, batches = 0.0, 0.0, 0
    for pixels in test.map(lambda x, *_: x).batch(batch_size):
        out = trained(pixels, training=False)
        ours += float(trained.reconstruction_loss(pixels, out["predictions"], out["mask"]))
        zeros += float(trained.reconstruction_loss(pixels, tf.zeros_like(out["predictions"]), out["mask"]))
        batches += 1
    return ours / batches, zeros / batches


def report(cfg: MaeConfig, trained: keras.Model, splits: Splits, run_dir: Path) -> dict:
    """Masked-patch MSE beside the predict-the-mean baseline, and ``reconstructions.png``."""
    ours, baseline = masked_mse_and_baseline(trained, splits.test, cfg.batch_size)
    shown = next(iter(splits.test.map(lambda x, *_: x).batch(cfg.pictures)))
    masked, reconstructed = trained.reconstruct(shown)
    grid = images.image_grid([shown, masked, reconstructed], scale=4)  # rows: original | masked | reconstruction
    (Path(run_dir) / "reconstructions.png").write_bytes(images.encode_png(grid).numpy())
    return {
        "test_masked_mse": ours,
        "baseline_predict_zero_mse": baseline,
        "mask_ratio": cfg.mask_ratio,
        "picture": "reconstructions.png",
    }


RECIPE = register(
    Recipe(
        name="mae",
        description="Masked autoencoder: ViT encoder on 25% of the patches, light decoder, masked-patch MSE (notes-001 §26)",
        config=MaeConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
