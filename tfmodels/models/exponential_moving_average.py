"""Exponential moving average of a network's weights, kept in a second network: DDPM's sampling
weights and the teachers of Mean Teacher / FixMatch / Soft Teacher.

Update, after every optimizer step (Polyak averaging; Ho et al. 2020 §4 and Tarvainen & Valpola
2017 eq. 1, paper default): ``ema ← d · ema + (1 − d) · θ`` for every weight, trainable or not
(BatchNorm's moving statistics are averaged too, as in the Mean Teacher code).

Under a ``tf.distribute`` strategy the update runs once per mirrored variable in a merge call, like
Keras' own optimizer updates; outside one it is a plain assignment.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def ema_copy(network: keras.Model) -> keras.Model:
    """A frozen clone of ``network`` with the same weights, to hold its moving average.

    Args:
        network: the trained network.

    Returns:
        A ``keras.Model`` of the same architecture, ``trainable=False``, weights equal to
        ``network``'s.

    Example:
        >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> ema = ema_copy(net)
        >>> ema.trainable, all((a == b).all() for a, b in zip(ema.get_weights(), net.get_weights()))
        (False, True)
    """
    ema = keras.models.clone_model(network)
    ema.trainable = False
    ema.set_weights(network.get_weights())
    return ema


def update_ema(ema_network: keras.Model, network: keras.Model, decay) -> None:
    """``ema ← decay · ema + (1 − decay) · θ`` for every weight of ``network`` (module docstring).

    Call it inside a train step, after ``optimizer.apply_gradients``.

    Args:
        ema_network: the average (from :func:`ema_copy`).
        network: the trained network, the same architecture.
        decay: d in ``[0, 1)``, a float or a scalar tensor (a ramped decay).

    Example:
        >>> import numpy as np
        >>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
        >>> ema = ema_copy(net)
        >>> net.set_weights([np.array([[1.0]])]); ema.set_weights([np.array([[0.0]])])
        >>> update_ema(ema, net, 0.9)
        >>> float(ema.get_weights()[0][0, 0])  # 0.9 · 0 + 0.1 · 1
        0.1...
    """

    def update(strategy, pairs):
        for ema, weight in pairs:
            strategy.extended.update(ema, lambda e, w: e.assign(decay * e + (1.0 - decay) * w), args=(weight,), group=False)

    pairs = [(ema.value, weight.value) for ema, weight in zip(ema_network.weights, network.weights)]
    tf.distribute.get_replica_context().merge_call(update, args=(pairs,))


def step_and_average(optimizer, tape: tf.GradientTape, loss, network, ema_network, decay) -> None:
    """One optimizer step of ``network`` on ``loss`` (recorded on ``tape``), then :func:`update_ema`.

    The train step of every model here that keeps an EMA (DDPM, Mean Teacher, FixMatch, Soft
    Teacher). ``loss`` is the replica's mean; Keras' convention under ``tf.distribute`` is the mean
    divided by the replica count, summed over replicas by the optimizer (and scaled for float16 by
    ``scale_loss``).

    Args:
        optimizer: the compiled model's optimizer.
        tape: the ``tf.GradientTape`` that recorded ``loss``.
        loss: the scalar loss.
        network: the trained network, or a list of them (a detector's backbone and head); their
            trainable weights get the gradients.
        ema_network: its average (from :func:`ema_copy`), or the matching list.
        decay: the EMA decay, a float or a scalar tensor.
    """
    networks = list(network) if isinstance(network, (list, tuple)) else [network]
    averages = list(ema_network) if isinstance(ema_network, (list, tuple)) else [ema_network]
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tape:
        scaled = optimizer.scale_loss(loss / replicas)
    weights = [weight for net in networks for weight in net.trainable_weights]
    optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
    for average, net in zip(averages, networks, strict=True):
        update_ema(average, net, decay)
