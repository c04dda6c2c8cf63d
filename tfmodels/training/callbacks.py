"""Callbacks the trainer adds to every run beyond Keras' own."""

from __future__ import annotations

import math

import keras


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
