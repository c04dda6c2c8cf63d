"""EMA of a network's weights (Polyak averaging, Ho et al. 2020 §4; Tarvainen & Valpola 2017 eq. 1)."""

import doctest

import keras
import numpy as np
import tensorflow as tf

from tfmodels.models import exponential_moving_average as ema_module
from tfmodels.models.exponential_moving_average import ema_copy, update_ema


def _net():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(2)])


def test_docstring_examples():
    result = doctest.testmod(ema_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_repeated_updates_follow_the_closed_form_for_every_weight():
    """With θ held fixed, n updates give ema_n = θ + dⁿ (ema_0 − θ), including BatchNorm's moving statistics."""
    net = _net()
    ema = ema_copy(net)
    rng = np.random.default_rng(0)
    start = [rng.normal(size=w.shape).astype("float32") for w in ema.get_weights()]
    target = [rng.normal(size=w.shape).astype("float32") for w in net.get_weights()]
    ema.set_weights(start)
    net.set_weights(target)
    decay, n = 0.8, 5
    for _ in range(n):
        update_ema(ema, net, decay)
    for got, s, t in zip(ema.get_weights(), start, target):
        np.testing.assert_allclose(got, t + decay**n * (s - t), rtol=1e-5, atol=1e-6)


def test_update_under_mirrored_strategy_runs_once_per_variable():
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])  # conftest splits the CPU in two
    with strategy.scope():
        net = _net()
        ema = ema_copy(net)
    target = [np.full(w.shape, 1.0, "float32") for w in net.get_weights()]
    net.set_weights(target)
    ema.set_weights([np.zeros(w.shape, "float32") for w in target])

    @tf.function
    def step():
        strategy.run(lambda: update_ema(ema, net, 0.5))

    step()
    for got in ema.get_weights():
        np.testing.assert_allclose(got, 0.5)  # one update (0.5·0 + 0.5·1), not one per replica
