"""``tfmodels predict``: an export's serving signature run on a user's files, one JSON line per input.

The SavedModel is loaded with ``tf.saved_model.load`` and the chosen signature is called, so the
answers come from the serving graph itself (its decoding, tokenising and post-processing): what
you predict is what you serve. The signature's input spec decides how inputs are read:

- one string input ``image_bytes``: image files, and folders searched recursively for
  ``.png .jpg .jpeg .gif .bmp``; ``"input"`` is the file's path;
- one other string input (``text``, ``source``, ``prefix``): each line of text files (``-`` is
  stdin); ``"input"`` is the line;
- several (or one non-string) ``[B]`` inputs, as tabular models take: CSV rows whose header names
  every input (other columns are ignored); ``"input"`` is ``<file>:<line number>``;
- one numeric ``[B, k]`` input (a feature vector, e.g. ``linear_regression``'s ``features``):
  CSV rows of ``k`` numbers, in the order of the model's features; a first line that is not
  numbers is taken for a header and skipped. ``"input"`` is ``<file>:<line number>``.

Scalar inputs of a signature (``temperature``, ``num_tokens``, ``seed`` of LM generation) take
the values of the export's REST example, ``assets.extra/rest_requests/<signature>.json``.

Inputs that cannot be read (a missing file, a line that is not UTF-8, a CSV value that is not a
number) or that the signature refuses (a corrupt image, a non-finite feature) are named on stderr
and skipped: a batch the signature refuses is rerun one input at a time to find them.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import itertools
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, TextIO

import numpy as np
import tensorflow as tf

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
PROGRESS_EVERY = 10  # batches between progress lines on a terminal


class PredictInputError(ValueError):
    """A signature ``tfmodels predict`` cannot feed from files, or inputs that do not fit it."""


@dataclasses.dataclass
class Item:
    """One input read: ``input`` (what its JSON line names), where it came from, its values or why it was skipped."""

    input: str
    where: str
    values: Mapping[str, Any] | None = None
    problem: str | None = None


@dataclasses.dataclass
class Summary:
    """How many inputs were predicted and how many skipped (the exit code is 1 when any were)."""

    predicted: int = 0
    skipped: int = 0


def run_export(run_dir: Path) -> Path:
    """The export a run folder recorded (``metrics.json`` ``"export"``).

    Raises:
        FileNotFoundError: the run has no export, or the recorded one is gone.
    """
    metrics_path = Path(run_dir) / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if "export" not in metrics:
        raise FileNotFoundError(f"run {run_dir} has no export yet: write one with `tfmodels export {run_dir}`")
    export = Path(metrics["export"])
    if not (export / "saved_model.pb").exists():
        raise FileNotFoundError(f"the export {export} of run {run_dir} is gone: write a new one with `tfmodels export {run_dir}`")
    return export


def _kind(specs: Mapping[str, tf.TensorSpec]) -> str | None:
    """``images``, ``lines``, ``csv`` or ``vectors`` for the signature's batched inputs, ``None`` if none fits."""
    batched = {name: spec for name, spec in specs.items() if spec.shape.rank != 0}
    if len(batched) == 1:
        (spec,) = batched.values()
        if spec.shape.rank == 2 and spec.shape[1] is not None and spec.dtype.is_floating:
            return "vectors"
    if any(spec.shape.rank != 1 for spec in batched.values()) or not batched:
        return None
    if len(batched) == 1:
        ((name, spec),) = batched.items()
        if spec.dtype == tf.string:
            return "images" if name == "image_bytes" else "lines"
    return "csv"


def _scalar_defaults(export: Path, signature: str, specs: Mapping[str, tf.TensorSpec]) -> dict[str, tf.Tensor]:
    """The scalar inputs' values in the export's REST example of ``signature``."""
    scalars = [name for name, spec in specs.items() if spec.shape.rank == 0]
    if not scalars:
        return {}
    request = json.loads((export / "assets.extra" / "rest_requests" / f"{signature}.json").read_text())["inputs"]
    values = {}
    for name in scalars:
        value = request[name]
        if isinstance(value, dict):  # {"b64": ...}: a binary string over REST
            value = base64.b64decode(value["b64"])
        values[name] = tf.constant(value, specs[name].dtype)
    return values


def _read_images(paths: Iterable[str], name: str) -> Iterator[Item]:
    for path in map(Path, paths):
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
        for file in files:
            try:
                yield Item(str(file), str(file), {name: file.read_bytes()})
            except OSError as err:
                yield Item(str(file), str(file), problem=err.strerror or str(err))


def _read_files(paths: Iterable[str], read: Callable[[str, BinaryIO], Iterator[Item]]) -> Iterator[Item]:
    """``read(path, stream)``'s items of each file in turn (``-`` is stdin); a file that cannot be opened is skipped."""
    for path in paths:
        try:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")
        except OSError as err:
            yield Item(path, path, problem=err.strerror or str(err))
            continue
        with stream:
            yield from read(path, stream)


def _lines(path: str, stream: BinaryIO, name: str) -> Iterator[Item]:
    for number, raw in enumerate(stream, 1):
        where = f"{path}:{number}"
        line = raw.rstrip(b"\r\n")
        try:
            yield Item(line.decode("utf-8"), where, {name: line})
        except UnicodeDecodeError as err:
            yield Item(where, where, problem=f"not UTF-8 text ({err.reason})")


def _parse(value: str, spec: tf.TensorSpec) -> Any:
    if spec.dtype == tf.string:
        return value.encode()
    return spec.dtype.as_numpy_dtype(value)


def _csv_rows(path: str, stream: BinaryIO, specs: Mapping[str, tf.TensorSpec]) -> Iterator[Item]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.DictReader(text)
    missing = [name for name in specs if name not in (reader.fieldnames or [])]
    if missing:
        raise PredictInputError(f"{path}: the CSV header {reader.fieldnames} lacks the signature's input(s) {missing}")
    try:
        for row in reader:
            yield _csv_item(f"{path}:{reader.line_num}", row, reader.fieldnames, specs)
    except UnicodeDecodeError as err:
        where = f"{path}:{reader.line_num + 1}"
        yield Item(where, where, problem=f"not UTF-8 text ({err.reason}); the rest of the file is skipped")
    text.detach()  # the caller closes the stream


def _csv_item(where: str, row: Mapping[str | None, Any], header: list[str], specs: Mapping[str, tf.TensorSpec]) -> Item:
    # DictReader fills a short row with None, and puts a long row's extra fields under the key None.
    fields = sum(value is not None for key, value in row.items() if key is not None) + len(row.get(None, []))
    if fields != len(header):
        return Item(where, where, problem=f"{fields} fields, the header has {len(header)}")
    values = {}
    for name, spec in specs.items():
        try:
            values[name] = _parse(row[name], spec)
        except (ValueError, OverflowError) as err:
            return Item(where, where, problem=f"column {name!r} ({spec.dtype.name}): {err}")
    return Item(where, where, values)


def _vector_rows(path: str, stream: BinaryIO, name: str, spec: tf.TensorSpec) -> Iterator[Item]:
    width = spec.shape[1]
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        for number, row in enumerate(csv.reader(text), 1):
            where = f"{path}:{number}"
            try:
                values = [spec.dtype.as_numpy_dtype(v) for v in row]
            except ValueError as err:
                if number > 1:
                    yield Item(where, where, problem=f"not {width} numbers: {err}")
                continue  # a header line
            if len(values) != width:
                yield Item(where, where, problem=f"{len(values)} values, the model takes {width}")
            else:
                yield Item(where, where, {name: values})
    except UnicodeDecodeError as err:
        yield Item(path, path, problem=f"not UTF-8 text ({err.reason}); the rest of the file is skipped")
    text.detach()  # the caller closes the stream


def _refusal(error: tf.errors.OpError) -> str:
    """The refusing op's own message, without TensorFlow's "Graph execution error" frame around it."""
    lines = [line.strip() for line in error.message.splitlines()]
    frame = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")
    return next((line for line in lines if line and not line.startswith(frame)), type(error).__name__)


def _plain(value: Any) -> Any:
    """A signature output for JSON: numbers and lists, bytes decoded to str."""
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def predict(
    export: Path,
    inputs: list[str],
    signature: str = "serving_default",
    batch_size: int = 32,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> Summary:
    """Runs ``signature`` of the SavedModel ``export`` on ``inputs``; prints one JSON line per input to ``out``.

    Args:
        export: a SavedModel version directory.
        inputs: files and folders (and ``-`` for stdin where lines or CSV rows are read).
        signature: the signature to run; one whose inputs cannot be read from files (e.g.
            ``predict_pixels``) is refused with the list of those that can.
        batch_size: inputs per call of the signature.
        out, err: where JSON lines and the names of skipped inputs go (stdout and stderr).

    Raises:
        PredictInputError: an unknown or unreadable signature, a bad batch size, a CSV header
            without the signature's inputs, or no inputs at all.
    """
    out, err = out or sys.stdout, err or sys.stderr
    if batch_size < 1:
        raise PredictInputError(f"--batch-size must be at least 1, not {batch_size}")
    signatures = tf.saved_model.load(str(export)).signatures
    readable = [name for name, fn in signatures.items() if _kind(fn.structured_input_signature[1])]
    if signature not in signatures:
        raise PredictInputError(f"{export} has no signature {signature!r}; it has {sorted(signatures)}")
    fn = signatures[signature]
    specs = fn.structured_input_signature[1]
    kind = _kind(specs)
    if kind is None:
        shapes = ", ".join(f"{name} {spec.dtype.name} {spec.shape}" for name, spec in specs.items())
        raise PredictInputError(f"signature {signature!r} takes {shapes}, which predict cannot read from files; use --signature with one of {readable}")
    scalars = _scalar_defaults(export, signature, specs)
    batched = {name: spec for name, spec in specs.items() if name not in scalars}
    if kind == "images":
        items = _read_images(inputs, "image_bytes")
    elif kind == "lines":
        items = _read_files(inputs, lambda path, stream: _lines(path, stream, next(iter(batched))))
    elif kind == "vectors":
        ((name, spec),) = batched.items()
        items = _read_files(inputs, lambda path, stream: _vector_rows(path, stream, name, spec))
    else:
        items = _read_files(inputs, lambda path, stream: _csv_rows(path, stream, batched))

    def call(batch: list[Item]) -> dict[str, np.ndarray]:
        feed = {name: tf.constant(np.array([item.values[name] for item in batch], spec.dtype.as_numpy_dtype)) for name, spec in batched.items()}
        return {name: value.numpy() for name, value in fn(**feed, **scalars).items()}

    def skip(item: Item, problem: str) -> None:
        summary.skipped += 1
        print(f"tfmodels predict: skipped {item.where}: {problem}", file=err)

    summary = Summary()
    for number, chunk in enumerate(iter(lambda: list(itertools.islice(items, batch_size)), []), 1):
        for item in chunk:
            if item.problem is not None:
                skip(item, item.problem)
        answered = []  # (item, outputs, row) in input order
        batch = [item for item in chunk if item.problem is None]
        try:
            outputs = call(batch) if batch else {}
            answered = [(item, outputs, row) for row, item in enumerate(batch)]
        except tf.errors.OpError:  # someone in the batch is refused: find who, one at a time
            for item in batch:
                try:
                    answered.append((item, call([item]), 0))
                except tf.errors.OpError as refusal:
                    skip(item, _refusal(refusal))
        for item, outputs, row in answered:
            print(json.dumps({"input": item.input, **{name: _plain(value[row]) for name, value in outputs.items()}}), file=out)
        summary.predicted += len(answered)
        if err.isatty() and number % PROGRESS_EVERY == 0:
            print(f"tfmodels predict: {summary.predicted} predicted, {summary.skipped} skipped so far", file=err)
    if summary.predicted + summary.skipped == 0:
        raise PredictInputError(f"no inputs found in {' '.join(inputs)} for signature {signature!r} ({kind})")
    print(f"tfmodels predict: {summary.predicted} predicted, {summary.skipped} skipped", file=err)
    return summary
