"""``nadaraya_watson``: attention pooling on the notes' 1-D regression task, non-parametric and parametric.

Spec: notes-002-part2.md §44 (seed 002 L3576–3612; the model is
:mod:`tfmodels.models.nadaraya_watson`): average pooling ``f(x) = (1/n) Σ y_i``, the non-parametric
Nadaraya–Watson regression ``f(x) = Σ_i softmax(−½ (x − x_i)²) y_i`` (Gaussian kernel, no
training) and the parametric version ``f(x) = Σ_i softmax(−½ ((x − x_i) w)²) y_i`` with a learned
width w.

Data (``DATA=embedded``, a seeded synthetic generator; the experiment is d2l's, [REF d2l] §44):
``f(x) = 2 sin(x) + x^0.8``; **training**: 50 points ``x ~ U(0, 5)``, sorted, with
``y = f(x) + ε``, ε ~ N(0, 0.5²); **validation**: 50 more noisy points drawn the same way (d2l
has none; they pick the kept epoch); **test**: d2l's query grid ``x = 0, 0.1, …, 4.9`` against
the noise-free ``f(x)`` (d2l's ``y_truth``). The 50 training pairs are the keys and values inside
the model, so a served model carries them.

Training (the parametric version only; the others have nothing to learn): d2l's leave-one-out
— each training point queries the other 49 — with the squared error **summed** over the 50
points, full-batch SGD, learning rate 0.5, 5 epochs, w starting from U(0, 1) (d2l's
``MSELoss(reduction='none')`` + ``l.sum().backward()``; Keras' ``reduction="sum"``).

Report (``metrics.json``): test MSE of average pooling (= always predicting the training mean,
the mean predictor), of the non-parametric and of the trained parametric regression, and the
learned w; ``nadaraya_watson.png`` in the run directory: the three fitted curves over the test
grid with the truth and the training points, and the attention weights of every test query
over the (sorted) training keys for both kernels as heatmaps — the learned kernel is narrower,
its curve less smooth (d2l's observation).

Serving: ``serving_default`` takes float32 ``x`` [B] and returns float32 ``prediction`` [B]
(core ops; NaN or infinite x is rejected with an error naming ``x``). The export's example is the
first four test queries (x = 0, 0.1, 0.2, 0.3) with the model's predictions for them.

Nothing needs a run asset: the training pairs are non-trainable weights of the model (saved in
``model.keras`` and in the SavedModel), and the task is drawn from ``data_seed`` only by
``datasets``, ``model`` (the keys) and the report, which all run while training.

Presets: ``tiny`` (2 epochs, tests), ``default`` and ``paper`` (both d2l's experiment above).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import sources
from pipelines.splits import Splits
from pipelines.tabular import finite, first_rows
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.models.nadaraya_watson import build_nadaraya_watson, nadaraya_watson
from tfmodels.registry import Recipe, register

X_RANGE = 5.0
TEST_STEP = 0.1


def target_function(x: np.ndarray) -> np.ndarray:
    """``f(x) = 2 sin(x) + x^0.8`` ([REF d2l] §44)."""
    return 2 * np.sin(x) + x**0.8


@dataclasses.dataclass
class NadarayaWatsonConfig(TrainConfig):
    """Nadaraya–Watson config.

    Args:
        num_train: training pairs, the keys and values of the attention pooling (d2l: 50).
        noise_std: standard deviation of the noise on the training and validation targets (d2l: 0.5).
    """

    num_train: int = 50
    noise_std: float = 0.5
    epochs: int = 5
    batch_size: int = 0
    optimizer: str = "sgd"
    learning_rate: float = 0.5

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 2, "verbose": 0},
        "default": {},
        "paper": {},
    }


@dataclasses.dataclass(frozen=True)
class RegressionTask:
    """The notes' task as arrays: ``train`` and ``validation`` noisy, ``test`` the noise-free grid (each ``(x, y)``, float32)."""

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def regression_task(cfg: NadarayaWatsonConfig) -> RegressionTask:
    """Draws the task from ``cfg.data_seed`` (see the module docstring).

    Example:
        >>> from tfmodels.config import resolve
        >>> task = regression_task(resolve(NadarayaWatsonConfig, "default"))
        >>> task.train[0].shape, task.test[0][:3].astype(float).round(1).tolist()
        ((50,), [0.0, 0.1, 0.2])
    """
    sources.parse(cfg.data, ("embedded",))
    rng = np.random.default_rng(cfg.data_seed)

    def noisy(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.sort(rng.uniform(0, X_RANGE, n))
        return x.astype(np.float32), (target_function(x) + rng.normal(0, cfg.noise_std, n)).astype(np.float32)

    train, validation = noisy(cfg.num_train), noisy(cfg.num_train)
    grid = np.arange(0, X_RANGE, TEST_STEP)
    return RegressionTask(train, validation, (grid.astype(np.float32), target_function(grid).astype(np.float32)))


def datasets(cfg: NadarayaWatsonConfig) -> Splits:
    task = regression_task(cfg)

    def examples(x, y):
        return tf.data.Dataset.from_tensor_slices((x[:, None], y[:, None]))

    return Splits(
        examples(*task.train), examples(*task.validation), examples(*task.test),
        {"source": "synthetic 2 sin(x) + x^0.8 + N(0, 0.5^2) (d2l §44, seeded)", "sizes": {"train": len(task.train[0]), "validation": len(task.validation[0]), "test": len(task.test[0])}},
    )


def model(cfg: NadarayaWatsonConfig) -> keras.Model:
    x, y = regression_task(cfg).train
    return build_nadaraya_watson(x, y, learn_width=True)


def compile_args(cfg: NadarayaWatsonConfig) -> dict:
    return {
        "loss": keras.losses.MeanSquaredError(reduction="sum"),  # d2l sums the squared errors
        "metrics": [keras.metrics.MeanSquaredError(name="mse")],
    }


def plot(task: RegressionTask, curves: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], path: Path) -> None:
    """The fitted curves over the test grid and one attention-weight heatmap per kernel (d2l's figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (x_train, y_train), (x_test, y_true) = task.train, task.test
    fig, axes = plt.subplots(1, 1 + len(weights), figsize=(5 * (1 + len(weights)), 4))
    axes[0].plot(x_test, y_true, "k-", label="truth 2 sin x + x^0.8")
    for name, prediction in curves.items():
        axes[0].plot(x_test, prediction, label=name)
    axes[0].plot(x_train, y_train, "o", color="gray", alpha=0.5, markersize=3, label="training pairs")
    axes[0].set(xlabel="x", ylabel="y", title="attention pooling fits")
    axes[0].legend(fontsize=7)
    for ax, (name, w) in zip(axes[1:], weights.items()):
        image = ax.imshow(w, cmap="Reds", aspect="auto", extent=(-0.5, len(x_train) - 0.5, x_test[-1], x_test[0]))
        ax.set(xlabel="training key i (sorted by x_i)", ylabel="test query x", title=f"attention weights, {name}")
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(cfg: NadarayaWatsonConfig, net: keras.Model, splits, run_dir) -> dict:
    task = regression_task(cfg)
    (x_train, y_train), (x_test, y_true) = task.train, task.test
    pooling = net.get_layer("attention_pooling")
    width = float(pooling.width.numpy())
    non_parametric, non_parametric_weights = (np.asarray(t) for t in nadaraya_watson(x_test, x_train, y_train, 1.0))
    parametric = net.predict(x_test[:, None], verbose=0)[:, 0]
    average = np.full_like(y_true, y_train.mean())
    curves = {"average pooling": average, "non-parametric (w = 1)": non_parametric, f"parametric (w = {width:.2f})": parametric}
    weights = {"w = 1": non_parametric_weights, f"learned w = {width:.2f}": np.asarray(pooling.weights_for(x_test[:, None]))}
    plot_path = Path(run_dir) / "nadaraya_watson.png"
    plot(task, curves, weights, plot_path)

    def mse(prediction):
        return float(np.mean((prediction - y_true) ** 2))

    return {
        "test_mse": {
            "average_pooling": mse(average),
            "non_parametric": mse(non_parametric),
            "parametric": mse(parametric),
        },
        "learned_width": width,
        "test_target": "noise-free f(x) on x = 0, 0.1, ..., 4.9",
        "plot": str(plot_path),
    }


def serving(cfg: NadarayaWatsonConfig, net: keras.Model) -> Serving:
    def predict(x):
        return {"prediction": tf.reshape(net(tf.reshape(finite(x, "x"), [-1, 1]), training=False), [-1])}

    return Serving(
        {
            "serving_default": Endpoint(
                predict,
                {"x": tf.TensorSpec([None], tf.float32)},
                {"prediction": "float32 [B]: the attention-pooled estimate of 2 sin(x) + x^0.8 at each x"},
            )
        }
    )


def serving_examples(cfg: NadarayaWatsonConfig, net: keras.Model, test) -> dict[str, ServingExample]:
    x = first_rows(test)
    prediction = np.asarray(net(x, training=False), np.float32).reshape(-1)
    return {"serving_default": ServingExample({"x": x[:, 0]}, {"prediction": prediction})}


RECIPE = register(
    Recipe(
        name="nadaraya_watson",
        description="Nadaraya-Watson attention pooling, non-parametric and with a learned width (notes-002-part2 §44)",
        config=NadarayaWatsonConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
