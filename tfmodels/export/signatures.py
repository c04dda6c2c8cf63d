"""Serving signatures: what an exported model takes (raw inputs) and returns (named outputs).

A recipe's ``serving(cfg, model)`` returns a :class:`Serving`: one :class:`Endpoint` per
signature. ``serving_default`` is the one TF-Serving uses when a request names none. Each
endpoint carries an example request, which becomes the export's warm-up request, its REST
example and the input that ``verify-export`` replays.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Endpoint:
    """One serving signature.

    Args:
        fn: takes the inputs as keyword arguments named like the specs, returns a dict of
            named output tensors; it closes over the Keras model.
        inputs: ``{name: tf.TensorSpec}``; the batch dimension is ``None``.
        example: ``{name: np.ndarray}``, a valid request (used for warm-up and verification).
        outputs: ``{name: description}``, documented in the README and the REST example.
    """

    fn: Callable[..., Mapping[str, tf.Tensor]]
    inputs: Mapping[str, tf.TensorSpec]
    example: Mapping[str, np.ndarray]
    outputs: Mapping[str, str]

    def input_signature(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in self.inputs.items()]

    def positional(self) -> Callable[..., Mapping[str, tf.Tensor]]:
        """``fn`` with positional arguments in spec order (what ExportArchive traces)."""
        names = list(self.inputs)

        def call(*args: tf.Tensor) -> Mapping[str, tf.Tensor]:
            return self.fn(**dict(zip(names, args)))

        return call


@dataclasses.dataclass
class Serving:
    """The signatures of one export; ``serving_default`` must be among them."""

    endpoints: Mapping[str, Endpoint]

    def __post_init__(self) -> None:
        if "serving_default" not in self.endpoints:
            raise ValueError("a Serving needs a 'serving_default' endpoint")


def class_probabilities(logits: tf.Tensor, class_names: list[str]) -> dict[str, tf.Tensor]:
    """Named classifier outputs: ``probabilities`` [B, C], ``class_id`` [B], ``class_name`` [B]."""
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
    class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    names = tf.gather(tf.constant(class_names), class_id)
    return {"probabilities": probabilities, "class_id": class_id, "class_name": names}


def binary_probability(probability: tf.Tensor, threshold: float = 0.5) -> dict[str, tf.Tensor]:
    """Named outputs of a sigmoid classifier: ``probability`` [B] and ``label`` [B] (0/1)."""
    p = tf.reshape(tf.cast(probability, tf.float32), [-1])
    return {"probability": p, "label": tf.cast(p > threshold, tf.int32)}


def describe(serving: Serving) -> dict[str, Any]:
    """A JSON-friendly description of the signatures (for the README and ``export.json``)."""
    return {
        name: {
            "inputs": {k: {"dtype": v.dtype.name, "shape": v.shape.as_list()} for k, v in ep.inputs.items()},
            "outputs": dict(ep.outputs),
        }
        for name, ep in serving.endpoints.items()
    }
