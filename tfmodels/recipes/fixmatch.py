"""``fixmatch``: FixMatch semi-supervised digit classification (notes-001 §32; Sohn et al. 2020).

Spec: notes-001.md §32 (seed L1052-1118). Model: :class:`tfmodels.models.fixmatch.FixMatch`
around a zoo classifier; data, labelled subset, views and serving:
:mod:`tfmodels.recipes.semi_supervised_classification`. Confident (max p ≥ τ) predictions on
weak views are hard labels for strong views (RandAugment + Cutout); each batch holds B labelled
and μ·B unlabelled images; history logs ``mask_rate`` and ``pseudo_label_accuracy`` (against the
hidden labels, monitoring only). The EMA network is evaluated and exported.

Results table of issue 17 (digits, 10 labels per class, one test set)::

    make train MODEL=fixmatch ARGS="--set unlabelled_weight=0"   # supervised-only, same labels and views
    make train MODEL=mean_teacher
    make train MODEL=fixmatch
    make train MODEL=mnist_cnn                                    # fully supervised ceiling

Presets:

* ``tiny``: tests (a few steps, 2 labels per class, 64 unlabelled digits).
* ``default``: the embedded 5,000 MNIST digits (4,000 train), 10 labels per class, the notes'
  8,490-parameter CNN, μ 7, τ 0.95, λ_u 1 (paper defaults), B 32, 100 epochs (one epoch = one
  pass over the 3,900 unlabelled digits: 18 steps) of Adam 3e-3 with cosine decay (the
  ``mnist_cnn`` default's optimizer), EMA decay 0.99: the paper's 0.999 averages over ~1,000
  steps, more than half of this run. RandAugment draws once per element's 7 strong images
  (``strong_per_image=false``; 32 independent draws per batch): Keras' RandAugment computes every
  one of its operations on each call, so per-image draws cost 23 ms of views per element on 2
  busy CPU cores against 9 ms with one draw, and the network's share of a step is about 3 ms.
* ``paper``: CIFAR-10 (``tfds:cifar10``) with 250 labels (25 per class), μ 7, B 64, τ 0.95,
  λ_u 1, EMA 0.999, SGD momentum 0.9 at 0.03 with cosine decay, horizontal flips, 2^20 steps
  (10,486 epochs of 100 steps). Differs from the paper: ResNet-18 (the zoo has no
  WideResNet-28-2), no Nesterov momentum and no weight decay 5e-4 (the trainer's SGD has
  neither), cosine decay to 0 rather than cos(7πk/16K).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras

from tfmodels.models.fixmatch import PAPER_EMA_DECAY, PAPER_THRESHOLD, PAPER_UNLABELLED_WEIGHT, FixMatch
from tfmodels.recipes import semi_supervised_classification as ssl


@dataclasses.dataclass
class FixMatchConfig(ssl.SemiSupervisedConfig):
    """FixMatch settings (and :class:`~tfmodels.recipes.semi_supervised_classification.SemiSupervisedConfig`'s).

    Args:
        threshold: τ (0.95, paper default).
        unlabelled_weight: λ_u (1, paper default); 0 = the supervised-only baseline.
        ema_decay: decay of the evaluated / exported EMA network.
    """

    threshold: float = PAPER_THRESHOLD
    unlabelled_weight: float = PAPER_UNLABELLED_WEIGHT
    ema_decay: float = PAPER_EMA_DECAY

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "batch_size": 8, "mu": 2, "labels_per_class": 2, "num_unlabelled": 64,
                 "ema_decay": 0.9, "verbose": 2},
        "default": {"epochs": 100, "batch_size": 32, "learning_rate": 3e-3, "lr_schedule": "cosine", "ema_decay": 0.99,
                    "strong_per_image": False},
        "paper": {"data": "tfds:cifar10", "backbone": "resnet18", "labels_per_class": 25, "flip": True,
                  "batch_size": 64, "epochs": 10486, "optimizer": "momentum", "momentum": 0.9,
                  "learning_rate": 0.03, "lr_schedule": "cosine"},
    }


def model(cfg: FixMatchConfig) -> keras.Model:
    return FixMatch(ssl.network(cfg), threshold=cfg.threshold, unlabelled_weight=cfg.unlabelled_weight,
                    ema_decay=cfg.ema_decay, name="fixmatch")


RECIPE = ssl.register_recipe(
    "fixmatch",
    "FixMatch: confident weak-view pseudo-labels train strong views; EMA model exported (notes-001 §32)",
    FixMatchConfig,
    model,
    strong=True,
    baseline="unlabelled_weight",
)
