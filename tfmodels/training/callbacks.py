"""Callbacks the trainer adds to every run beyond Keras' own."""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where it happened.

    Keras' ``TerminateOnNaN`` only prints a line; the trainer turns ``self.where`` into an error
    that says what to try, after the best checkpoint so far is safely on disk.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.where: str | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.where = f"epoch {self.epoch + 1}, batch {batch + 1} (loss={float(loss)})"
            self.model.stop_training = True


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate an epoch started with to its logs (CSV, TensorBoard, plot)."""

    def __init__(self) -> None:
        super().__init__()
        self.rate = float("nan")

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.rate


class RandomStateBackup(keras.callbacks.Callback):
    """Backs up the model's random-generator states (dropout masks) beside BackupAndRestore's.

    Keras' ``save_weights`` (and so ``BackupAndRestore``) leaves out the states of the layers'
    ``SeedGenerator``s. Without them a resumed run would draw its dropout masks from the start
    of the sequence again, and end with other weights than the uninterrupted run. Put it before
    ``BackupAndRestore`` so the states of an epoch are on disk before the epoch counts as done.

    Args:
        path: the ``.npz`` file holding the states.
    """

    def __init__(self, path) -> None:
        super().__init__()
        self.path = Path(path)

    def _states(self) -> list:
        return [sg.state for layer in self.model._flatten_layers(include_self=True) for sg in layer._seed_generators]

    def on_train_begin(self, logs=None):
        if not self.path.exists():
            return
        with np.load(self.path) as saved:
            states = self._states()
            if len(saved.files) != len(states):
                raise ValueError(f"{self.path} holds {len(saved.files)} random states, the model has {len(states)}")
            for i, state in enumerate(states):
                state.assign(saved[f"state_{i}"])

    def on_epoch_end(self, epoch, logs=None):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial.npz")
        np.savez(partial, **{f"state_{i}": keras.ops.convert_to_numpy(s.value) for i, s in enumerate(self._states())})
        os.replace(partial, self.path)  # a kill mid-write leaves the previous epoch's states intact
