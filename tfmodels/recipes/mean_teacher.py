"""``mean_teacher``: Mean Teacher semi-supervised digit classification (notes-001 §31; Tarvainen & Valpola 2017).

Spec: notes-001.md §31 (seed L1009-1048). Model: :class:`tfmodels.models.mean_teacher.MeanTeacher`
around a zoo classifier; data, labelled subset, views and serving:
:mod:`tfmodels.recipes.semi_supervised_classification`. The student learns from the labelled
cross-entropy plus w(t) times the MSE between its softmax on one weak view of each unlabelled
image and the EMA teacher's on another; w ramps up as exp(−5(1 − t/T)²) over ``rampup_epochs``;
the teacher's EMA decay is 0.99 during the ramp-up and 0.999 after (paper defaults). The teacher
is evaluated and exported; history and ``curves.png`` show ``accuracy`` (teacher) beside
``student_accuracy``.

Supervised-only baseline on the same labels: ``--set consistency_weight=0`` (the exported model
is then the EMA of a student trained on the labels alone), or ``fixmatch``'s
``unlabelled_weight=0`` (see :mod:`tfmodels.recipes.fixmatch` for the table's commands).

Presets:

* ``tiny``: tests.
* ``default``: the embedded digits, 10 labels per class, the notes' 8,490-parameter CNN, μ 3
  (the notes' tiny FixMatch set-up; neither the notes nor the paper fix it for digits), B 32,
  50 epochs (41 steps each: one pass over the 3,900 unlabelled digits) of Adam 3e-3 with cosine
  decay, w_max 10 (the notes' CPU range 1-10; the paper's 100 is in ``paper``), ramp-up over 15
  epochs (30 % of the run, as the paper's code's 40k of 150k steps).
* ``paper``: CIFAR-10 with 4,000 labels (400 per class), w_max 100, ramp-up 80 epochs, flips,
  Adam 3e-3, B 100 with μ 1, 300 epochs. Differs from the paper: ResNet-18 instead of its
  13-layer ConvNet (not in the zoo); no learning-rate / Adam β1 ramp-down; batch composition and
  epoch count are our choice (not checked against the paper offline).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras

from tfmodels.config import ConfigError
from tfmodels.models.mean_teacher import PAPER_CONSISTENCY_WEIGHT, PAPER_EMA_DECAY, PAPER_RAMPUP_EMA_DECAY, MeanTeacher
from tfmodels.recipes import semi_supervised_classification as ssl


@dataclasses.dataclass
class MeanTeacherConfig(ssl.SemiSupervisedConfig):
    """Mean Teacher settings (and :class:`~tfmodels.recipes.semi_supervised_classification.SemiSupervisedConfig`'s).

    Args:
        consistency_weight: w_max (100, paper default); 0 = the supervised-only baseline.
        rampup_epochs: epochs of the sigmoid ramp-up of w (and of the ramp-up EMA decay).
        ema_decay: the teacher's EMA decay after the ramp-up (0.999, paper default).
        rampup_ema_decay: the decay during the ramp-up (0.99, paper default).
    """

    mu: int = 3
    consistency_weight: float = PAPER_CONSISTENCY_WEIGHT
    rampup_epochs: int = 80
    ema_decay: float = PAPER_EMA_DECAY
    rampup_ema_decay: float = PAPER_RAMPUP_EMA_DECAY

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 2, "batch_size": 8, "mu": 2, "labels_per_class": 2, "num_unlabelled": 32,
                 "consistency_weight": 10.0, "rampup_epochs": 1, "verbose": 2},
        "default": {"epochs": 50, "batch_size": 32, "learning_rate": 3e-3, "lr_schedule": "cosine",
                    "consistency_weight": 10.0, "rampup_epochs": 15},
        "paper": {"data": "tfds:cifar10", "backbone": "resnet18", "labels_per_class": 400, "flip": True,
                  "mu": 1, "batch_size": 100, "epochs": 300, "learning_rate": 3e-3, "rampup_epochs": 80},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rampup_epochs < 0 or self.consistency_weight < 0:
            raise ConfigError("rampup_epochs and consistency_weight must be >= 0")


def model(cfg: MeanTeacherConfig) -> keras.Model:
    return MeanTeacher(
        ssl.network(cfg),
        consistency_weight=cfg.consistency_weight,
        rampup_steps=cfg.rampup_epochs * ssl.steps_per_epoch(cfg),
        ema_decay=cfg.ema_decay,
        rampup_ema_decay=cfg.rampup_ema_decay,
        name="mean_teacher",
    )


RECIPE = ssl.register_recipe(
    "mean_teacher",
    "Mean Teacher: student CE + ramped MSE consistency to its EMA teacher; teacher exported (notes-001 §31)",
    MeanTeacherConfig,
    model,
    strong=False,
    baseline="consistency_weight",
)
