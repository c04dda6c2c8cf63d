"""Serving signatures: what an exported model takes (raw inputs) and returns (named outputs).

A recipe's ``serving(cfg, model)`` returns a :class:`Serving`: one :class:`Endpoint` per
signature. ``serving_default`` is the one TF-Serving uses when a request names none.

A recipe's ``serving_examples(cfg, model, test)`` returns one :class:`ServingExample` per
signature: test examples in the raw form a client sends (encoded image bytes, strings), and the
answers of the *evaluation path* (the model called on the test pipeline's preprocessed tensors)
for them, computed without the signature's code. They become the export's warm-up requests, its
REST examples and what ``verify-export`` compares the served answers with, so an export passes
only when its in-graph preprocessing, decoding and post-processing agree with evaluation.
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
        outputs: ``{name: description}``, documented in the README and the REST example.
    """

    fn: Callable[..., Mapping[str, tf.Tensor]]
    inputs: Mapping[str, tf.TensorSpec]
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
class ServingExample:
    """A request built from test examples, and what evaluation answers to it.

    Args:
        request: ``{input name: np.ndarray}`` in the raw form a client sends.
        expected: ``{output name: np.ndarray}``: the evaluation path's answers for the same
            examples (a subset of the signature's outputs is fine: e.g. no sampled outputs).
    """

    request: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]


def check_examples(serving: "Serving", examples: Mapping[str, ServingExample]) -> None:
    """Every signature needs an example whose request names exactly its inputs."""
    for name, endpoint in serving.endpoints.items():
        if name not in examples:
            raise ValueError(f"signature {name!r} has no serving example")
        example = examples[name]
        if set(example.request) != set(endpoint.inputs):
            raise ValueError(f"{name}: the example's inputs {sorted(example.request)} are not {sorted(endpoint.inputs)}")
        unknown = set(example.expected) - set(endpoint.outputs)
        if not example.expected or unknown:
            raise ValueError(f"{name}: expected outputs {sorted(example.expected)} must be a non-empty subset of {sorted(endpoint.outputs)}")


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
