"""DiffusionModel: Algorithm 1 training, seeded draws, and EMA weights that are saved and restored."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import ddpm as module
from tfmodels.models.ddpm import DiffusionModel
from tfmodels.models.ddpm_unet import build_ddpm_unet


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _network(dropout=0.0):
    return build_ddpm_unet(8, 1, base_channels=8, channel_multipliers=(1, 2), num_res_blocks=1,
                           attention_resolutions=(4,), dropout=dropout, norm_groups=4)


def _randomise(weights, seed):
    rng = np.random.default_rng(seed)
    for weight in weights:
        weight.assign(rng.normal(0, 0.1, weight.shape))


@pytest.fixture
def model():
    return DiffusionModel(_network(), num_timesteps=50, ema_decay=0.9, seed=3)


def test_ema_starts_as_the_network_and_is_not_trained(model):
    assert len(model.ema_network.weights) == len(model.network.weights)
    for ema, weight in zip(model.ema_network.weights, model.network.weights):
        np.testing.assert_array_equal(ema.numpy(), weight.numpy())
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in model.network.trainable_weights}
    ema_ids = {id(w) for w in model.ema_network.weights}
    assert ema_ids <= {id(w) for w in model.non_trainable_weights}


def test_a_train_step_moves_the_ema_one_step_towards_the_new_weights(model):
    """After one optimizer step: ema = 0.9 · ema_before + 0.1 · θ_after (decay 0.9)."""
    _randomise(model.ema_network.weights, 1)
    before = [e.numpy() for e in model.ema_network.weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(tf.zeros([4, 8, 8, 1]), epochs=1, batch_size=4, verbose=0)
    for ema, e, w in zip(model.ema_network.weights, before, model.network.weights):
        np.testing.assert_allclose(ema.numpy(), 0.9 * e + 0.1 * w.numpy(), rtol=1e-5, atol=1e-6)


def test_draws_are_seeded_uniform_steps_and_standard_noise(model):
    images = tf.fill([4096, 1, 1, 1], 0.5)
    x_t, t, noise = model._noising(images)
    counts = np.bincount(t.numpy(), minlength=50)
    assert t.numpy().min() >= 0 and t.numpy().max() <= 49 and len(counts) == 50
    expected = 4096 / 50
    assert ((counts - expected) ** 2 / expected).sum() < 100  # χ² with 49 dof: p ≈ 3e-5 at 100
    assert abs(noise.numpy().mean()) < 0.06 and abs(noise.numpy().std() - 1) < 0.05
    bar = model.schedule.alphas_cumprod[t.numpy()][:, None, None, None]
    np.testing.assert_allclose(x_t.numpy(), np.sqrt(bar) * 0.5 + np.sqrt(1 - bar) * noise.numpy(), rtol=1e-5, atol=1e-6)
    same = DiffusionModel(_network(), num_timesteps=50, seed=3)._noising(images)
    other = DiffusionModel(_network(), num_timesteps=50, seed=4)._noising(images)
    np.testing.assert_array_equal(same[1].numpy(), t.numpy())
    assert not np.array_equal(other[2].numpy(), noise.numpy())


def _distinct_ema(model):
    _randomise(model.network.weights, 5)
    _randomise(model.ema_network.weights, 6)
    return [w.numpy() for w in model.ema_network.weights]


def test_ema_survives_a_keras_round_trip(model, tmp_path):
    ema = _distinct_ema(model)
    path = tmp_path / "ddpm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DiffusionModel)
    assert (loaded.schedule.num_timesteps, loaded.schedule.kind, loaded.ema_decay) == (50, "linear", 0.9)
    for saved, restored in zip(ema, loaded.ema_network.weights):
        np.testing.assert_array_equal(saved, restored.numpy())
    for weight, restored in zip(model.network.weights, loaded.network.weights):
        np.testing.assert_array_equal(weight.numpy(), restored.numpy())
    x, t = tf.ones([1, 8, 8, 1]), tf.constant([10])
    np.testing.assert_allclose(loaded.predict_noise(x, t).numpy(), model.predict_noise(x, t).numpy(), atol=1e-6)


def test_ema_survives_weight_checkpoints(model, tmp_path):
    ema = _distinct_ema(model)
    model.save_weights(tmp_path / "ckpt.weights.h5")
    checkpoint_path = tf.train.Checkpoint(model=model).write(str(tmp_path / "tf_ckpt"))
    for restore in ("h5", "tf.train.Checkpoint"):
        fresh = DiffusionModel(_network(), num_timesteps=50, ema_decay=0.9, seed=3)
        if restore == "h5":
            fresh.load_weights(tmp_path / "ckpt.weights.h5")
        else:
            tf.train.Checkpoint(model=fresh).read(checkpoint_path).assert_existing_objects_matched()
        for saved, restored in zip(ema, fresh.ema_network.weights):
            np.testing.assert_array_equal(saved, restored.numpy())


def test_trainer_backup_restores_ema_and_the_noise_generator(model, tmp_path):
    """The trainer's resume path (EpochBackup): EMA weights and the t/ε generator's state come back."""
    from tfmodels.training.callbacks import EpochBackup

    ema = _distinct_ema(model)
    model._noising(tf.zeros([2, 8, 8, 1]))  # advance the generator
    state = model.seed_generator.state.numpy()
    model.compile(optimizer=keras.optimizers.Adam())
    model.optimizer.build(model.trainable_variables)  # as after a training step
    backup = EpochBackup(tmp_path / "backup")
    backup.set_model(model)
    backup._current_epoch, backup._last_batch_seen = 1, 0
    backup._save_model()

    resumed = DiffusionModel(_network(), num_timesteps=50, ema_decay=0.9, seed=3)
    resumed.compile(optimizer=keras.optimizers.Adam())
    restore = EpochBackup(tmp_path / "backup")
    restore.set_model(resumed)
    restore._load_model()
    for saved, restored in zip(ema, resumed.ema_network.weights):
        np.testing.assert_array_equal(saved, restored.numpy())
    np.testing.assert_array_equal(resumed.seed_generator.state.numpy(), state)
    np.testing.assert_array_equal(resumed._noising(tf.zeros([2, 8, 8, 1]))[2].numpy(),
                                  model._noising(tf.zeros([2, 8, 8, 1]))[2].numpy())


class _RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.history = []

    def on_train_begin(self, logs=None):
        self.history.append([w.numpy() for w in self.model.network.weights])

    def on_train_batch_end(self, batch, logs=None):
        self.history.append([w.numpy() for w in self.model.network.weights])


@pytest.mark.slow
def test_fit_lowers_the_loss_and_keeps_the_ema_of_every_step():
    keras.utils.set_random_seed(0)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype(np.float32))
    model = DiffusionModel(_network(dropout=0.1), num_timesteps=50, ema_decay=0.8, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    record = _RecordWeights()
    history = model.fit(images, epochs=30, batch_size=8, verbose=0, callbacks=[record])
    losses = history.history["loss"]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    ema = record.history[0]
    for weights in record.history[1:]:
        ema = [0.8 * e + 0.2 * w for e, w in zip(ema, weights)]
    for expected, got in zip(ema, model.ema_network.weights):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert set(model.evaluate(images, batch_size=8, verbose=0, return_dict=True)) == {"loss"}


@pytest.mark.slow
def test_fit_under_mirrored_strategy_keeps_replicas_and_ema_in_step():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = DiffusionModel(_network(), num_timesteps=50, ema_decay=0.5, seed=1)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [w.numpy() for w in model.network.weights]
    images = tf.data.Dataset.from_tensor_slices(np.random.default_rng(1).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32))
    model.fit(images.batch(4), epochs=1, verbose=0)
    for ema, start, weight in zip(model.ema_network.weights, before, model.network.weights):
        np.testing.assert_allclose(ema.numpy(), 0.5 * start + 0.5 * weight.numpy(), rtol=1e-5, atol=1e-6)
        replicas = ema.value.values
        np.testing.assert_array_equal(replicas[0].numpy(), replicas[1].numpy())
