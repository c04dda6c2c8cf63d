import keras
import numpy as np
import pytest

from tfmodels.config import TrainConfig, resolve
from tfmodels.training.optimization import learning_rate, make_optimizer, schedule_callbacks

STEPS = 10  # optimizer steps per epoch


def _rates(cfg, epochs):
    schedule = learning_rate(cfg, STEPS)
    return [float(schedule(e * STEPS)) if callable(schedule) else schedule for e in epochs]


def test_step_schedule_matches_the_notes_steplr():
    # notes-002 S25: StepLR(step_size=5, gamma=0.9) from 1e-3: 1e-3, 9e-4 from epoch 5, 8.1e-4 from 10.
    cfg = resolve(TrainConfig, "default", {"lr_schedule": "step", "lr_step_epochs": 5, "lr_gamma": 0.9})
    np.testing.assert_allclose(_rates(cfg, [0, 4, 5, 9, 10, 14]), [1e-3, 1e-3, 9e-4, 9e-4, 8.1e-4, 8.1e-4], rtol=1e-5)


def test_multistep_schedule_matches_the_notes_milestones():
    # notes-002 S25: MultiStepLR([20, 50, 80], gamma=0.9) (the notes' "[20.50, 80]" is a typo).
    cfg = resolve(TrainConfig, "default", ["lr_schedule=multistep", "lr_milestones=20,50,80", "lr_gamma=0.9"])
    np.testing.assert_allclose(
        _rates(cfg, [19, 20, 49, 50, 80]), [1e-3, 9e-4, 9e-4, 8.1e-4, 7.29e-4], rtol=1e-5
    )


def test_cosine_with_warmup_rises_then_decays_to_zero():
    cfg = resolve(TrainConfig, "default", {"lr_schedule": "cosine", "warmup_epochs": 2, "epochs": 10})
    rates = _rates(cfg, [0, 1, 2, 6, 10])
    np.testing.assert_allclose(rates[:3], [0.0, 5e-4, 1e-3], atol=1e-9)
    assert rates[2] > rates[3] > rates[4] and rates[4] == pytest.approx(0.0, abs=1e-9)


def test_constant_with_warmup_holds_after_warmup():
    cfg = resolve(TrainConfig, "default", {"warmup_epochs": 2})
    np.testing.assert_allclose(_rates(cfg, [0, 1, 2, 5, 50]), [0.0, 5e-4, 1e-3, 1e-3, 1e-3], atol=1e-9)


def test_multistep_needs_milestones():
    with pytest.raises(ValueError, match="lr_milestones"):
        learning_rate(resolve(TrainConfig, "default", {"lr_schedule": "multistep"}), STEPS)


def test_plateau_is_a_callback():
    cfg = resolve(TrainConfig, "default", {"lr_schedule": "plateau", "lr_gamma": 0.1, "lr_patience": 5})
    (callback,) = schedule_callbacks(cfg)
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau) and callback.patience == 5
    assert learning_rate(cfg, STEPS) == 1e-3


@pytest.mark.parametrize(
    "name, cls", [("sgd", keras.optimizers.SGD), ("momentum", keras.optimizers.SGD), ("adam", keras.optimizers.Adam), ("adamw", keras.optimizers.AdamW)]
)
def test_optimizers_and_global_norm_clipping(name, cls):
    optimizer = make_optimizer(resolve(TrainConfig, "default", {"optimizer": name, "clip_global_norm": 1.0}), STEPS)
    assert isinstance(optimizer, cls) and optimizer.global_clipnorm == 1.0
