"""``logistic_regression``: P(pass | hours) = σ(w·hours + b), trained to convergence.

Spec: notes-002 S10 (seed L449-583): ``Linear(1, 1)`` then a sigmoid, binary cross-entropy, SGD,
on the toy table hours x = [1, 2, 3] -> passed y = [0, 0, 1], asking for P(pass | 4 hours).

Data (``DATA=embedded``): that table, written out in :func:`pipelines.tabular.notes_hours`. A toy:
the same three rows are the training, validation and test data.

What "trained" means here. The notes stop after 100 epochs (lr 0.01 on the summed BCE), which
leaves the model unconverged: across random initialisations P(4) ranges over about 0.32-0.73.
Running longer does not help by itself: the data are separable (any boundary between 2 and 3
classifies all three rows), so the unpenalised BCE has no minimiser; gradient descent drives w to
infinity while the boundary creeps towards 2.5. This recipe therefore minimises the penalised
objective

    J(w, b) = mean BCE + λ·w²      (λ = ``l2``, 0.01 by default; the bias is not penalised),

which is strictly convex with a unique minimiser: for λ = 0.01, w = 3.119, b = -7.829, boundary
-b/w = 2.510 and P(4) = 0.9905. The run counts as *converged* when ‖∇J‖₂ < 1e-5 at the final
parameters, which puts (w, b) within about 1.5e-3 of the minimiser (the smallest Hessian
eigenvalue there is 0.0067); the report gives ‖∇J‖ and the verdict. Plain full-batch gradient
descent at lr 1.0 gets there in about 1,200 steps, slowed by that small eigenvalue (the condition
number is about 110); heavy-ball momentum 0.8 at lr 1.0 needs under 200 from any Glorot start,
so the ``tiny`` and ``default`` presets use it, for 300 and 1,000 full-batch steps.

Report: P(pass) at 1-4 hours, the decision boundary -b/w in hours, w, b, ‖∇J‖, ``converged``, and
the accuracy beside the majority-class baseline (2/3: always "fail").

Serving: ``serving_default`` takes float32 ``hours`` [B] and returns ``probability`` [B] (of
passing) and ``label`` [B] (1 = pass, at probability > 0.5). The export's example is the three test
rows' hours, with the model's probabilities on them. Nothing is derived from the data beyond the
weights (the table is the notes' constant), so the run has no assets but its test split.

Presets: ``tiny`` (300 full-batch momentum steps, converged), ``default`` (1,000 steps) and
``paper`` (S10 as written: random init, no penalty, plain SGD, 100 full-batch epochs; PyTorch's
summed BCE with lr 0.01 on N = 3 rows is Keras' mean BCE with lr 0.03).

:func:`compile_args` (BCE + accuracy) is shared by the sigmoid MLPs ``diabetes_mlp`` and
``titanic_mlp``, which stack logistic units (S11), and so is :func:`sigmoid_classifier_examples`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import sources, tabular
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample, binary_probability
from tfmodels.models.linear import build_linear
from tfmodels.registry import Recipe, register

CONVERGED_GRADIENT_NORM = 1e-5
REPORT_HOURS = (1.0, 2.0, 3.0, 4.0)


@dataclasses.dataclass
class LogisticRegressionConfig(TrainConfig):
    """Logistic regression config.

    Args:
        l2: λ of the penalty λ·w² on the weight (0 = the notes' unpenalised BCE).
    """

    l2: float = 0.01
    epochs: int = 2
    repeats_per_epoch: int = 500
    batch_size: int = 0
    optimizer: str = "momentum"
    momentum: float = 0.8
    learning_rate: float = 1.0

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "repeats_per_epoch": 300, "verbose": 0},
        "default": {},
        "paper": {"l2": 0.0, "epochs": 100, "repeats_per_epoch": 1, "optimizer": "sgd", "momentum": 0.0,
                  "learning_rate": 0.03},
    }


def datasets(cfg: LogisticRegressionConfig):
    sources.parse(cfg.data, ("embedded",))
    return tabular.notes_hours().splits()


def model(cfg: LogisticRegressionConfig) -> keras.Model:
    net = build_linear(1, activation="sigmoid", name="logistic_regression")
    if cfg.l2:
        dense = net.get_layer("dense")
        # build_linear takes no regulariser: attach the penalty to the built kernel, and to the
        # layer's config so that a saved and reloaded model keeps it.
        dense.kernel_regularizer = dense.kernel.regularizer = keras.regularizers.L2(cfg.l2)
    return net


def compile_args(cfg: TrainConfig) -> dict:
    """Binary cross-entropy on a sigmoid output, with accuracy at threshold 0.5."""
    return {
        "loss": keras.losses.BinaryCrossentropy(),
        "metrics": [keras.metrics.BinaryAccuracy(name="accuracy")],
    }


def objective_gradient_norm(net: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """‖∇J‖₂ of the training objective (mean BCE plus the model's penalties) at its current weights.

    Example:
        >>> from tfmodels.config import resolve
        >>> net = model(resolve(LogisticRegressionConfig, "tiny"))
        >>> objective_gradient_norm(net, np.array([[1.0]]), np.array([1.0])) > 0
        True
    """
    with tf.GradientTape() as tape:
        bce = keras.losses.BinaryCrossentropy()(y[:, None], net(x, training=True))
        objective = bce + sum(net.losses, tf.constant(0.0))
    gradients = tape.gradient(objective, net.trainable_variables)
    return float(tf.linalg.global_norm(gradients))


def report(cfg: LogisticRegressionConfig, net: keras.Model, splits, run_dir) -> dict:
    table = tabular.notes_hours()
    dense = net.get_layer("dense")
    weight, bias = float(dense.kernel.numpy()[0, 0]), float(dense.bias.numpy()[0])
    probabilities = net.predict(np.array(REPORT_HOURS, np.float32)[:, None], verbose=0)[:, 0]
    gradient_norm = objective_gradient_norm(net, table.train.x, table.train.y)
    return {
        "p_pass": {f"{h:g}h": float(p) for h, p in zip(REPORT_HOURS, probabilities)},
        "decision_boundary_hours": -bias / weight,
        "weight": weight,
        "bias": bias,
        "objective_gradient_norm": gradient_norm,
        "converged": gradient_norm < CONVERGED_GRADIENT_NORM,
        **tabular.binary_report(net.predict(table.test.x, verbose=0), table),
    }


def serving(cfg: LogisticRegressionConfig, net: keras.Model) -> Serving:
    def predict(hours):
        return binary_probability(net(tabular.finite(hours, "hours")[:, None], training=False))

    return Serving(
        {
            "serving_default": Endpoint(
                predict,
                {"hours": tf.TensorSpec([None], tf.float32)},
                {
                    "probability": "float32 [B]: probability of passing after that many hours of study",
                    "label": "int32 [B]: 1 = pass (probability > 0.5), 0 = fail",
                },
            )
        }
    )


def sigmoid_classifier_examples(
    net: keras.Model, features: np.ndarray, request: Mapping[str, np.ndarray]
) -> dict[str, ServingExample]:
    """``serving_default``'s example for a sigmoid classifier (this recipe, ``diabetes_mlp``, ``titanic_mlp``).

    Args:
        net: the model, ``features -> probability [B, 1]``.
        features: test rows as the test pipeline gives them to the model.
        request: the same rows in the raw form a client sends.

    Returns:
        The request, with the model's ``probability`` on ``features`` and its ``label`` at 0.5
        (the threshold applied in NumPy, not by the serving code).
    """
    probability = np.asarray(net(features, training=False), np.float32).reshape(-1)
    expected = {"probability": probability, "label": (probability > 0.5).astype(np.int32)}
    return {"serving_default": ServingExample(request, expected)}


def serving_examples(cfg: LogisticRegressionConfig, net: keras.Model, test) -> dict[str, ServingExample]:
    hours = tabular.first_rows(test)
    return sigmoid_classifier_examples(net, hours, {"hours": hours[:, 0]})


RECIPE = register(
    Recipe(
        name="logistic_regression",
        description="logistic regression hours -> pass, L2-penalised and converged (notes-002 S10)",
        config=LogisticRegressionConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
