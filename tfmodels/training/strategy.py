"""``STRATEGY=default|mirrored|multi_worker`` -> a ``tf.distribute.Strategy``."""

from __future__ import annotations

import functools
import json
import os

import tensorflow as tf


@functools.lru_cache(maxsize=None)
def make_strategy(name: str) -> tf.distribute.Strategy:
    """Builds the strategy named by the config, once per process.

    ``mirrored`` replicates over every GPU, or, on a machine without GPUs, over every logical
    CPU device (tests split the CPU into two). ``multi_worker`` needs ``TF_CONFIG``.

    The instance is reused by later runs in the same process: two MirroredStrategy instances
    number their collective ops from the same key, and the second one's all-reduce then fails
    with "Shape mismatch in the collective instance".
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            raise ValueError(
                "STRATEGY=multi_worker needs TF_CONFIG describing the cluster, e.g. "
                "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                "\"task\": {\"type\": \"worker\", \"index\": 0}}'"
            )
        json.loads(tf_config)  # a malformed TF_CONFIG fails here, with its own message
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multi_worker")
