"""DDPM training: a ``keras.Model`` that learns ε_θ with the paper's loss and keeps EMA weights.

Spec: notes-003-004.md F1 (seed 004 L1: one noise predictor, shared across steps) and DESIGN.md
("EMA teachers, diffusion ... a ``keras.Model`` subclass with its own ``train_step``, state as model
variables"). Training is Ho et al. 2020's Algorithm 1 (paper default), with 0-based steps:

    x_0 ~ data (in [−1, 1]),  t ~ Uniform{0 … T−1},  ε ~ N(0, I)
    loss = mean ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖²

t and ε come from the model's own ``keras.random.SeedGenerator``, so a seeded run draws the same
steps and noise, and the generator's state is saved with the run's backups (the trainer's
``EpochBackup`` saves every layer's seed generator).

**EMA.** After every optimizer step, ``ema ← d · ema + (1 − d) · θ`` for every weight of the
network (decay d = 0.9999, paper default; less at small scale, where 0.9999 would average over
more steps than the run has). The EMA weights are the weights of :attr:`ema_network`, a copy of
the network that is never trained: they are model variables, so ``.keras`` files, ``save_weights``
checkpoints and ``BackupAndRestore`` carry them, and sampling (:meth:`predict_noise`) uses them.
The update is :func:`~tfmodels.models.exponential_moving_average.update_ema`.

``model(inputs)`` is the *trained* network's ε̂ (``{"x_t", "t"}`` as the U-Net takes them).
Validation (``evaluate``) reports the same loss with the EMA network, the one that samples.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.models.diffusion_schedule import PAPER_TIMESTEPS, DiffusionSchedule
from tfmodels.models.exponential_moving_average import ema_copy, step_and_average

PAPER_EMA_DECAY = 0.9999  # paper default


@keras.saving.register_keras_serializable(package="tfmodels")
class DiffusionModel(keras.Model):
    """A DDPM: trains ``network`` (an ε-predictor) by Algorithm 1 and keeps its EMA (module docstring).

    Args:
        network: a ``keras.Model`` ``{"x_t": [B, H, W, C], "t": [B] int32}`` → ε̂, e.g.
            :func:`~tfmodels.models.ddpm_unet.build_ddpm_unet`.
        num_timesteps: T (1000, paper default).
        schedule: ``"linear"`` (paper default) or ``"cosine"`` (:class:`DiffusionSchedule`).
        ema_decay: EMA decay d (0.9999, paper default).
        seed: seed of the generator that draws t and ε (``None``: unseeded).
        **kwargs: ``keras.Model`` arguments (``name``).

    Example:
        >>> from tfmodels.models.ddpm_unet import build_ddpm_unet
        >>> net = build_ddpm_unet(8, 1, base_channels=8, channel_multipliers=(1,), num_res_blocks=1,
        ...                       attention_resolutions=(), norm_groups=4)
        >>> model = DiffusionModel(net, num_timesteps=50, ema_decay=0.9, seed=0)
        >>> tuple(model.predict_noise(tf.zeros([2, 8, 8, 1]), tf.constant([0, 49])).shape)
        (2, 8, 8, 1)
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> history = model.fit(tf.zeros([4, 8, 8, 1]), epochs=1, batch_size=4, verbose=0)  # doctest: +SKIP
    """

    def __init__(
        self,
        network: keras.Model,
        num_timesteps: int = PAPER_TIMESTEPS,
        schedule: str = "linear",
        ema_decay: float = PAPER_EMA_DECAY,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.network = network
        self.ema_network = ema_copy(network)
        self.schedule = DiffusionSchedule(num_timesteps, schedule)
        self.ema_decay = float(ema_decay)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="diffusion_seed_generator")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def predict_noise(self, x_t, t):
        """ε̂ of the EMA network, the one that samples: ``(x_t [N, H, W, C], t [N] int32) → ε̂``.

        Args:
            x_t: noisy images.
            t: integer steps in ``0 … T−1``.

        Returns:
            float32 ε̂, ``x_t``'s shape.
        """
        return self.ema_network({"x_t": x_t, "t": t}, training=False)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def _noising(self, images):
        """``(x_t, t, ε)`` for a batch of clean images: t ~ U{0 … T−1}, ε ~ N(0, I), seeded."""
        images = tf.cast(images, tf.float32)
        t = keras.random.randint(tf.shape(images)[:1], 0, self.schedule.num_timesteps, dtype="int32", seed=self.seed_generator)
        noise = keras.random.normal(tf.shape(images), seed=self.seed_generator)
        return self.schedule.q_sample(images, t, noise), t, noise

    @staticmethod
    def _images(data):
        """The clean images of a batch: ``fit(images)`` or ``fit(dataset of (images, ...))``."""
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        x_t, t, noise = self._noising(self._images(data))
        with tf.GradientTape() as tape:
            predicted = tf.cast(self.network({"x_t": x_t, "t": t}, training=True), tf.float32)
            loss = tf.reduce_mean(tf.square(noise - predicted))
        step_and_average(self.optimizer, tape, loss, self.network, self.ema_network, self.ema_decay)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x_t, t, noise = self._noising(self._images(data))
        predicted = tf.cast(self.predict_noise(x_t, t), tf.float32)
        self.loss_tracker.update_state(tf.reduce_mean(tf.square(noise - predicted)))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "num_timesteps": self.schedule.num_timesteps,
            "schedule": self.schedule.kind,
            "ema_decay": self.ema_decay,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
