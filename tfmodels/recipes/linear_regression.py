"""``linear_regression``: ``ŷ = x·w + b`` fitted by gradient descent, beside its closed-form solution.

Spec: notes-002 S1 (seed L25-69: ``ŷ = x·w``, MSE, grid search over w), S3 (L93-138: full-batch
gradient descent from w = 1, lr 0.01), S4 (L140-175: SGD, one update per example), S5 (L177-179:
mini-batches), S7 (L241-299, L391-447: ``nn.Linear`` with a bias, MSE, SGD); notes-001 §29
(L821-932: the normal equation θ = (XᵀX)⁻¹Xᵀy) and §30 (L936-1005: vectorised gradient descent on
the half-MSE 1/(2m)·Σ(Xθ - y)² from θ = 0).

Data (``DATA=``):

* ``embedded``: scikit-learn's diabetes regression table in raw units (442 x 10, split 70/10/20).
  The features are standardised with the training split's mean and standard deviation by a
  ``Rescaling`` layer inside the model, so serving takes raw features. The target (25..346) is
  left in its own units: the bias absorbs its mean, the stable step size depends only on the
  standardised features (largest Hessian eigenvalue of the MSE about 8, so lr < 0.25), and the
  served prediction needs no inverse transform.
* ``notes``: the notes' toy line x = [1, 2, 3], y = [2, 4, 6] (S1-S7), unscaled. A toy: the same
  three points are the training, validation and test data.
* ``notes-normal-equation``: notes-001 §30's X = [[1, 1], [1, 2], [1, 3]], y = [1, 2, 3], whose
  first column of ones plays the bias (use ``use_bias=false``); same toy caveat.

Run asset: ``features.json`` (:class:`pipelines.tabular.Features`), the feature names and their
scaling (the training split's standardisation for ``embedded``, the identity for the toys),
derived in the data stage; building the model, the report and serving read it from there.

``batch_size`` 0 is full-batch gradient descent (S3, §30), 1 is SGD (S4, with ``shuffle=false``
for the notes' fixed order), k is mini-batch gradient descent (S5). ``repeats_per_epoch`` lets one
Keras epoch make many steps (§30's 1,000 iterations are ``epochs=1, repeats_per_epoch=1000``).

The kept checkpoint is the one with the lowest *training* loss (``monitor=loss``): the model is
the gradient-descent estimate of the training-set least-squares fit, to be compared with its
closed form. (Selecting by the 44 validation rows of ``embedded`` keeps, with the default seed,
the first epoch's weights: 100 steps, long before the poorly conditioned directions converge.)

Report (``metrics.json["report"]``): the normal-equation solution on the training split, its test
MSE beside the gradient-descent model's, the distance between the two parameter vectors (in the
model's input space, i.e. standardised features for ``embedded``), and the test MSE of always
predicting the training mean.

Serving: ``serving_default`` takes float32 ``features`` [B, F] in raw units and returns float32
``prediction`` [B]. The export's example is the first four test rows (three for the toys) with
the model's predictions on them.

Presets: ``tiny`` (a few full-batch steps, seconds), ``default`` (3,000 full-batch steps at lr 0.2
on the diabetes table, converging to the closed form) and ``paper`` (S7 exactly: a random-init
``Linear(1, 1)`` with bias on the toy line, full batch, 100 epochs; PyTorch's
``MSELoss(reduction='sum')`` with lr 0.01 on N = 3 points is Keras' mean MSE with lr 0.03).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import sources, tabular
from pipelines.tabular import Features, Scaling, Table
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.models.linear import build_linear, normal_equation
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset

SOURCES = ("embedded", "notes", "notes-normal-equation")


@keras.saving.register_keras_serializable(package="tfmodels")
def half_mean_squared_error(y_true, y_pred):
    """notes-001 §30's loss 1/(2m)·Σ(ŷ - y)², whose gradient is Xᵀ(Xθ - y)/m."""
    return 0.5 * keras.losses.mean_squared_error(y_true, y_pred)


@dataclasses.dataclass
class LinearRegressionConfig(TrainConfig):
    """Linear regression config.

    Args:
        use_bias: learn a bias b (S7's ``nn.Linear``); the notes' ``ŷ = x·w`` (S1-S4) and §30's
            ``Xθ`` have none.
        initializer: ``glorot_uniform`` (Keras' default) or ``constant`` (every weight starts at
            ``initial_weight``).
        initial_weight: the constant start of ``initializer=constant``: 1.0 in S3/S4, 0.0 in §30.
        loss: ``mse`` (mean of (ŷ - y)², notes-002) or ``half_mse`` (half of it, notes-001 §30).
    """

    use_bias: bool = True
    initializer: str = "glorot_uniform"
    initial_weight: float = 0.0
    loss: str = "mse"
    epochs: int = 30
    repeats_per_epoch: int = 100
    batch_size: int = 0
    optimizer: str = "sgd"
    learning_rate: float = 0.2
    monitor: str = "loss"

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 2, "repeats_per_epoch": 10, "verbose": 0},
        "default": {},
        "paper": {"data": "notes", "epochs": 100, "repeats_per_epoch": 1, "learning_rate": 0.03},
    }
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **TrainConfig.CHOICES,
        "initializer": ("glorot_uniform", "constant"),
        "loss": ("mse", "half_mse"),
    }


def load_table(cfg: LinearRegressionConfig) -> Table:
    kind, _ = sources.parse(cfg.data, SOURCES)
    if kind == "embedded":
        return tabular.sklearn_diabetes(cfg.data_seed)
    return tabular.notes_line() if kind == "notes" else tabular.notes_normal_equation()


def feature_asset(cfg: LinearRegressionConfig) -> Features:
    """The run asset ``features.json``: the feature names and their scaling, standardisation with
    the training split's statistics (the notes' worked examples stay in raw x: the identity)."""

    def derive():
        table = load_table(cfg)
        if cfg.data == "embedded":
            return Features.of(table, Scaling.standardize(table.train.x)).to_json()
        return Features.of(table, Scaling.identity(table.num_features)).to_json()

    return Features.from_json(json_asset(cfg, "features.json", derive))


def datasets(cfg: LinearRegressionConfig):
    return load_table(cfg).splits()


def model(cfg: LinearRegressionConfig) -> keras.Model:
    features = feature_asset(cfg)
    initial = cfg.initial_weight if cfg.initializer == "constant" else None
    linear = build_linear(len(features.names), use_bias=cfg.use_bias, initial_weight=initial)
    inputs = keras.Input((len(features.names),), name="features")
    scaled = keras.layers.Rescaling(*features.scaling.rescale, name="standardize")(inputs)
    return keras.Model(inputs, linear(scaled), name="linear_regression")


def fitted_parameters(net: keras.Model) -> tuple[np.ndarray, float]:
    """The model's ``(w [F], b)``, acting on its scaled input (b is 0 without a bias).

    Example:
        >>> from tfmodels.config import resolve
        >>> cfg = resolve(LinearRegressionConfig, "tiny", {"data": "notes", "use_bias": False,
        ...               "initializer": "constant", "initial_weight": 1.0})
        >>> fitted_parameters(model(cfg))
        (array([1.], dtype=float32), 0.0)
    """
    dense = net.get_layer("linear").get_layer("dense")
    bias = float(dense.bias.numpy()[0]) if dense.use_bias else 0.0
    return dense.kernel.numpy()[:, 0], bias


def compile_args(cfg: LinearRegressionConfig) -> dict:
    loss = half_mean_squared_error if cfg.loss == "half_mse" else keras.losses.MeanSquaredError()
    return {"loss": loss, "metrics": [keras.metrics.MeanSquaredError(name="mse")]}


def report(cfg: LinearRegressionConfig, net: keras.Model, splits, run_dir) -> dict:
    table = load_table(cfg)
    scaling = feature_asset(cfg).scaling
    weights, bias = fitted_parameters(net)
    exact_weights, exact_bias = normal_equation(scaling(table.train.x), table.train.y, cfg.use_bias)

    def test_mse(prediction: np.ndarray) -> float:
        return float(np.mean((prediction - table.test.y) ** 2))

    return {
        "gradient_descent_test_mse": test_mse(net.predict(table.test.x, verbose=0)[:, 0]),
        "normal_equation_test_mse": test_mse(scaling(table.test.x) @ exact_weights + exact_bias),
        "mean_predictor_test_mse": test_mse(np.full_like(table.test.y, table.train.y.mean())),
        "parameter_distance": float(np.linalg.norm(np.append(weights - exact_weights, bias - exact_bias))),
        "gradient_descent_parameters": {"weights": weights.tolist(), "bias": bias},
        "normal_equation_parameters": {"weights": exact_weights.tolist(), "bias": exact_bias},
        "parameter_space": "standardised features" if cfg.data == "embedded" else "raw features",
    }


def serving(cfg: LinearRegressionConfig, net: keras.Model) -> Serving:
    names = feature_asset(cfg).names

    def predict(features):
        return {"prediction": tf.reshape(net(tabular.finite(features, "features"), training=False), [-1])}

    return Serving(
        {
            "serving_default": Endpoint(
                predict,
                {"features": tf.TensorSpec([None, len(names)], tf.float32)},
                {"prediction": f"float32 [B]: the predicted target from the raw features {', '.join(names)}"},
            )
        }
    )


def serving_examples(cfg: LinearRegressionConfig, net: keras.Model, test) -> dict[str, ServingExample]:
    features = tabular.first_rows(test)  # raw: the standardisation is inside the model
    prediction = np.asarray(net(features, training=False), np.float32).reshape(-1)
    return {"serving_default": ServingExample({"features": features}, {"prediction": prediction})}


RECIPE = register(
    Recipe(
        name="linear_regression",
        description="linear regression by gradient descent vs the normal equation (notes-002 S1-S7, notes-001 §29-30)",
        config=LinearRegressionConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
