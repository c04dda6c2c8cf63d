"""Two fixes that let Keras 3's ``fit`` and ``evaluate`` run under MultiWorkerMirroredStrategy.

Keras 3.15 (TensorFlow backend) fails with ``STRATEGY=multi_worker`` before the first step; the
TensorFlow multi-worker tutorial fails the same way (keras-team/keras#20585,
tensorflow/tensorflow#72388, both open):

1. ``TensorFlowTrainer._maybe_symbolic_build`` takes the first distributed batch and averages it
   across replicas with ``strategy.reduce`` to learn its shapes. MirroredStrategy accepts the
   ``(x, y)`` tuple; MultiWorkerMirroredStrategy's reduce does not ("Attempt to convert a value
   (PerReplica...) to a Tensor"). Only the shapes are needed, so this worker's own part of the
   batch serves as well.
2. ``reduce_per_replica`` averages every logged value with ``strategy.reduce("MEAN", v, axis=0)``
   in multi-worker mode, which fails on the scalar losses and metrics ("Invalid reduction
   dimension 0 for input with 0 dimensions"). A scalar is averaged across replicas with
   ``axis=None``.

Both replacements change nothing outside multi-worker mode: they call the original otherwise.
:func:`apply` is idempotent and is called when the multi-worker strategy is made.
"""

from __future__ import annotations

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer

_ORIGINAL_SYMBOLIC_BUILD = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
_ORIGINAL_REDUCE = tf_trainer.reduce_per_replica


def _in_multi_worker_mode(strategy) -> bool:
    return strategy is not None and tf_trainer._collective_all_reduce_multi_worker(strategy)


def _symbolic_build_from_local_batch(self, iterator=None, data_batch=None):
    strategy = self._distribute_strategy
    if iterator is None or not _in_multi_worker_mode(strategy):
        return _ORIGINAL_SYMBOLIC_BUILD(self, iterator=iterator, data_batch=data_batch)
    for _, _, batches in iterator:
        first = next(batches)
        break
    local = tree.map_structure(
        lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
        first,
    )
    with strategy.scope():
        self._symbolic_build(data_batch=local)


def _reduce_scalars_across_workers(values, strategy, reduction="auto"):
    if reduction not in ("auto", "mean") or not _in_multi_worker_mode(strategy):
        return _ORIGINAL_REDUCE(values, strategy, reduction)
    return tree.map_structure(
        lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0), values
    )


def apply() -> None:
    """Installs both fixes (once per process)."""
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _symbolic_build_from_local_batch
    tf_trainer.reduce_per_replica = _reduce_scalars_across_workers
