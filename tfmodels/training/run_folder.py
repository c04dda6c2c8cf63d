"""A run folder and the stages it has finished: what makes ``--resume`` safe at any point.

A run is the sequence of stages :data:`STAGES`::

    data      the recipe's assets (vocabularies, class names, statistics) and the test split,
              written into the folder; the monitor checked against the compiled metrics
    fit       all epochs; best.weights.h5, history.csv, model.keras, curves.png
    evaluate  the test metrics (metrics.json "test")
    report    the recipe's report (metrics.json "report" and the recipe's own files)
    export    one SavedModel version, tagged with this run's id (metrics.json "export")

``run.json`` records the model, the preset, a run id and the stages finished, and is replaced
atomically after each one. A resumed run starts at the first unfinished stage and never rewrites
a finished stage's files; a finished run is left as it is.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

STAGES = ("data", "fit", "evaluate", "report", "export")
RUN_FILE = "run.json"


def latest_run(runs_root: str | os.PathLike, model: str) -> Path:
    """The newest run folder of ``model`` under ``runs_root`` (what ``--resume latest`` means).

    Raises:
        FileNotFoundError: ``model`` has no run there.
    """
    folders = sorted(p.parent for p in Path(runs_root, model).glob(f"*/{RUN_FILE}"))
    if not folders:
        raise FileNotFoundError(f"no run of {model!r} under {Path(runs_root, model)} to resume")
    return folders[-1]


def write_json_atomically(path: Path, value: Any) -> None:
    """Writes ``value`` as JSON so that a kill leaves either the old file or the new one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=2))
    os.replace(partial, path)


class RunFolder:
    """``runs/<model>/<timestamp>/`` with its ``run.json``.

    Args:
        path: the folder.
        record: the content of ``run.json``: ``model``, ``preset``, ``run_id``, ``finished``.
    """

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path = Path(path)
        self.record = record

    @classmethod
    def create(cls, path: Path, model: str, preset: str) -> "RunFolder":
        """A new run: writes ``run.json`` with no stage finished."""
        run = cls(path, {"model": model, "preset": preset, "run_id": uuid.uuid4().hex, "finished": []})
        run._save()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, model: str | None = None) -> "RunFolder":
        """An existing run folder (to resume, evaluate or export it).

        Raises:
            FileNotFoundError: ``path`` is not a run folder of this version of tfmodels.
            ValueError: it is a run of another model than ``model``.
        """
        path = Path(path)
        record_path = path / RUN_FILE
        if not record_path.exists():
            what = "an older tfmodels run (no run.json): train it again" if (path / "config.json").exists() else "not a run folder"
            raise FileNotFoundError(f"{path} is {what}")
        record = json.loads(record_path.read_text())
        if model is not None and record["model"] != model:
            raise ValueError(f"{path} is a run of {record['model']!r}, not of {model!r}")
        return cls(path, record)

    @property
    def model(self) -> str:
        return self.record["model"]

    @property
    def preset(self) -> str:
        return self.record["preset"]

    @property
    def run_id(self) -> str:
        return self.record["run_id"]

    def finished(self, stage: str) -> bool:
        return stage in self.record["finished"]

    def unfinished(self) -> list[str]:
        return [s for s in STAGES if not self.finished(s)]

    def finish(self, stage: str) -> None:
        """Records ``stage`` as finished; call it only after every file of the stage is on disk."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        if not self.finished(stage):
            self.record["finished"].append(stage)
            self._save()

    def metrics(self) -> dict[str, Any]:
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def add_metrics(self, **entries: Any) -> dict[str, Any]:
        """Adds ``entries`` to ``metrics.json`` (atomically); returns the whole content."""
        metrics = {**self.metrics(), **entries}
        write_json_atomically(self.path / "metrics.json", metrics)
        return metrics

    def _save(self) -> None:
        write_json_atomically(self.path / RUN_FILE, self.record)
