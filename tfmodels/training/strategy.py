"""``STRATEGY=default|mirrored|multi_worker`` -> a ``tf.distribute.Strategy``, and who writes the run.

Under ``multi_worker`` every worker runs the same command and the same steps (the all-reduce needs
them all), but only the chief writes: the run folder, checkpoints, history and export. The other
workers write into temporary folders that they remove when they finish (the pattern of Keras'
multi-worker guide). Parameter-server training is not offered: Keras 3's ``fit`` has no
``ClusterCoordinator`` path (keras/src/backend/tensorflow/trainer.py distributes only through
``strategy.run``), and its maintainers say "Parameter server training is not supported in
Keras 3" (keras-team/keras#18624).
"""

from __future__ import annotations

import functools
import json
import os

import tensorflow as tf

from tfmodels.training import keras_multi_worker


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
        keras_multi_worker.apply()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multi_worker")


def is_chief(dist: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run: always, except on the non-chief workers of a cluster.

    The chief is the task of type ``chief``, or worker 0 of a cluster without one (TF_CONFIG's rule).
    """
    resolver = getattr(dist, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
