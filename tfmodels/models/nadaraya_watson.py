"""Nadaraya–Watson kernel regression: attention pooling without (and with one) learned parameter.

Specs: notes-002-part2.md §44 (seed 002 L3576–3612): the query x is compared with every key x_i
of the (x_i, y_i) pairs by a kernel K, and the values y_i are averaged with the normalised kernel
weights, ``f(x) = Σ_i K(x − x_i) / Σ_j K(x − x_j) · y_i`` [IMG L3590]; with the **Gaussian kernel**
``K(u) = exp(−u²/2) / √(2π)`` this is ``f(x) = Σ_i softmax(−½ (x − x_i)²) y_i`` — no parameter
(non-parametric attention pooling, L3588–3597). The **parametric** version learns a width w:
``f(x) = Σ_i softmax(−½ ((x − x_i) w)²) y_i`` [IMG L3599]. Both are the general attention pooling
``f(x) = Σ_i α(x, x_i) y_i`` with weights ``α ≥ 0`` summing to 1 (L3609–3618); §45: the exponent
``−½ ((x − x_i) w)²`` is the attention *score*, the softmax turns scores into weights. Average
pooling ``f(x) = (1/n) Σ_i y_i`` (L3580–3586) is the limit w → 0; w → ∞ tends to the nearest
neighbour's value.

Training the parametric version (d2l, [REF d2l] §44): each training point is a query over the
*other* training points (leave-one-out, d2l's ``1 − eye(n)`` mask) — otherwise a large w would
let every point simply return its own y. :class:`NadarayaWatson` applies that mask when called
with ``training=True``: a key equal to the query gets weight 0. Evaluation and serving use every
key.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def attention_weights(queries, keys, width=1.0, leave_one_out: bool = False):
    """``α(x, x_i) = softmax_i(−½ ((x − x_i) w)²)``: ``[Q]`` queries × ``[K]`` keys → ``[Q, K]`` weights, rows summing to 1.

    Args:
        queries: ``[Q]`` floats x.
        keys: ``[K]`` floats x_i.
        width: w; 1 is the notes' non-parametric Gaussian kernel (notes-002-part2 §44 L3590).
        leave_one_out: give a key equal to the query weight 0 (training the parametric version).

    Example:
        >>> attention_weights([0.0], [0.0, 1.0]).numpy().round(4).tolist()   # softmax([0, -0.5])
        [[0.6225, 0.3775]]
    """
    queries = ops.convert_to_tensor(queries, "float32")
    keys = ops.convert_to_tensor(keys, "float32")
    distances = ops.expand_dims(queries, -1) - ops.expand_dims(keys, 0)
    scores = -0.5 * ops.square(distances * ops.cast(width, "float32"))
    if leave_one_out:
        scores = ops.where(distances == 0, -np.inf, scores)
    return ops.softmax(scores, axis=-1)


def nadaraya_watson(queries, keys, values, width=1.0):
    """The notes' closed form ``f(x) = Σ_i softmax(−½ ((x − x_i) w)²) y_i`` (no training): ``[Q]`` predictions and ``[Q, K]`` weights.

    Args:
        queries: ``[Q]`` floats x.
        keys: ``[K]`` floats x_i.
        values: ``[K]`` floats y_i.
        width: w (1 = the non-parametric Gaussian kernel).

    Example:
        >>> prediction, _ = nadaraya_watson([0.5], [0.0, 1.0], [2.0, 4.0])
        >>> float(prediction[0])                       # equidistant keys: the average
        3.0
    """
    weights = attention_weights(queries, keys, width)
    return ops.matmul(weights, ops.convert_to_tensor(values, "float32")), weights


@keras.saving.register_keras_serializable(package="tfmodels")
class NadarayaWatson(keras.layers.Layer):
    """Attention pooling over stored key–value pairs with a Gaussian kernel of width w: ``[B, 1]`` x → ``[B, 1]`` ŷ.

    Args:
        keys: the training inputs x_i (stored as non-trainable weights).
        values: the training targets y_i.
        learn_width: ``True`` trains w (the parametric version, notes-002-part2 §44 [IMG L3599]);
            ``False`` keeps it at ``initial_width``.
        initial_width: the start of w; ``None`` draws it from U(0, 1) as d2l's ``torch.rand(1)``
            ([REF d2l]); the non-parametric version is ``learn_width=False, initial_width=1``.

    Call args:
        inputs: ``[B, 1]`` float queries.
        training: leave-one-out on (a key equal to the query gets no weight).

    Example:
        >>> layer = NadarayaWatson([0.0, 1.0], [2.0, 4.0], learn_width=False, initial_width=1.0)
        >>> layer(np.array([[0.5]], "float32")).numpy().tolist()
        [[3.0]]
    """

    def __init__(self, keys, values, learn_width: bool = True, initial_width: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.keys_list = [float(k) for k in np.ravel(keys)]
        self.values_list = [float(v) for v in np.ravel(values)]
        if len(self.keys_list) != len(self.values_list) or not self.keys_list:
            raise ValueError(f"need as many keys as values, at least one; got {len(self.keys_list)} and {len(self.values_list)}")
        self.learn_width = learn_width
        self.initial_width = initial_width

    def build(self, inputs_shape):
        def stored(name, numbers):
            return self.add_weight(
                name=name, shape=(len(numbers),), initializer=keras.initializers.Constant(numbers), trainable=False
            )

        self.keys = stored("keys", self.keys_list)
        self.values = stored("values", self.values_list)
        width_init = (
            keras.initializers.RandomUniform(0.0, 1.0) if self.initial_width is None
            else keras.initializers.Constant(self.initial_width)
        )
        self.width = self.add_weight(name="width", shape=(), initializer=width_init, trainable=self.learn_width)

    def weights_for(self, inputs, training=None):
        """The ``[B, K]`` attention weights of the queries ``[B, 1]`` (what :meth:`call` averages the values with)."""
        return attention_weights(ops.reshape(inputs, (-1,)), self.keys, self.width, leave_one_out=bool(training))

    def call(self, inputs, training=None):
        return ops.matmul(self.weights_for(inputs, training), ops.expand_dims(ops.cast(self.values, self.compute_dtype), -1))

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "keys": self.keys_list,
            "values": self.values_list,
            "learn_width": self.learn_width,
            "initial_width": self.initial_width,
        }


def build_nadaraya_watson(keys, values, learn_width: bool = True, initial_width: float | None = None, name: str = "nadaraya_watson") -> keras.Model:
    """A Keras model ``x [B, 1] → ŷ [B, 1]`` of Nadaraya–Watson regression over ``(keys, values)``.

    Args:
        keys, values, learn_width, initial_width: see :class:`NadarayaWatson`.
        name: the model name.

    Example:
        >>> model = build_nadaraya_watson([0.0, 1.0, 2.0], [0.0, 1.0, 4.0])
        >>> [w.name for w in model.trainable_weights]
        ['width']
    """
    queries = keras.Input((1,), name="x")
    return keras.Model(queries, NadarayaWatson(keys, values, learn_width, initial_width, name="attention_pooling")(queries), name=name)
