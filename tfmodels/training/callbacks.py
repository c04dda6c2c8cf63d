"""Callbacks the trainer adds to every run beyond Keras' own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np

from tfmodels.training.run_folder import write_json_atomically


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


class EpochBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose state of an epoch is committed by one atomic write.

    Keras' callback overwrites ``latest.weights.h5`` in place and then its metadata: a kill in the
    middle of the weights leaves a file that cannot be read, and a kill between the two leaves new
    weights under the old epoch number. It also leaves out the states of the layers'
    ``SeedGenerator``s (dropout masks), without which a resumed run draws other masks than the
    uninterrupted one. Here the weights and the random states of epoch N go to new files named
    after N, and then ``training_metadata.json`` is replaced atomically to name them: the one
    commit. A kill at any moment leaves the last committed epoch readable.

    Args:
        backup_dir: the folder of the backup (removed when training finishes).
    """

    def __init__(self, backup_dir) -> None:
        super().__init__(str(backup_dir))
        self.folder = Path(backup_dir)

    def _random_states(self) -> list:
        return [sg.state for layer in self.model._flatten_layers(include_self=True) for sg in layer._seed_generators]

    def _load_model(self):
        metadata_path = self.folder / "training_metadata.json"
        metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
        if "weights" not in metadata:  # nothing committed yet: start from the beginning
            return
        self._weights_path = str(self.folder / metadata["weights"])
        super()._load_model()
        with np.load(self.folder / metadata["random_states"]) as saved:
            states = self._random_states()
            if len(saved.files) != len(states):
                raise ValueError(f"{self.folder} holds {len(saved.files)} random states, the model has {len(states)}")
            for i, state in enumerate(states):
                state.assign(saved[f"state_{i}"])

    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = self._current_epoch
        weights, random_states = f"epoch-{epoch}.weights.h5", f"epoch-{epoch}.random_states.npz"
        self.model.save_weights(str(self.folder / weights), overwrite=True)
        np.savez(self.folder / random_states,
                 **{f"state_{i}": keras.ops.convert_to_numpy(s.value) for i, s in enumerate(self._random_states())})
        write_json_atomically(self.folder / "training_metadata.json", {
            "epoch": epoch, "batch": self._last_batch_seen, "weights": weights, "random_states": random_states,
        })
        for old in self.folder.glob("epoch-*"):
            if old.name not in (weights, random_states):
                old.unlink()
