"""``tfmodels verify-export PATH``: would stock TF-Serving load and answer this export?

The check runs :mod:`tfmodels.export.stock_tf_check` in a fresh Python process that imports
only TensorFlow, so no custom op library can be registered there by accident. It
1. checks every op of the graph and its function library against core TensorFlow's registry,
2. replays the export's TF-Serving warm-up requests (test examples in raw form) through both
   the TF2 loader and a TF1 Session over the ``serve`` MetaGraph, as TF-Serving's server runs it,
3. compares each answer with the evaluation path's answer recorded at export time (the model
   called on the test pipeline's tensors), with a tolerance that follows the model's compute
   dtype (:data:`TOLERANCES`).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfmodels.export.saved_model import WARMUP_FILE


# (atol, rtol) by the model's compute dtype: float32 keeps the strict check; the half-precision
# ones allow about eight units in the last place of their 11-bit / 8-bit significands, since
# the served graph and the evaluation path may pick other kernels (AMX, AVX512-FP16, GPUs).
TOLERANCES = {"float32": (1e-4, 1e-4), "float16": (8 * 2.0**-10, 8 * 2.0**-10), "bfloat16": (8 * 2.0**-7, 8 * 2.0**-7)}


class VerificationError(RuntimeError):
    """The export would not load or not answer correctly on stock TF-Serving."""


def _warmup_requests(export_dir: Path) -> list[dict[str, Any]]:
    from tensorflow_serving.apis import prediction_log_pb2

    path = export_dir / "assets.extra" / WARMUP_FILE
    requests: list[dict[str, Any]] = []
    if not path.exists():
        return requests
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        requests.append(
            {
                "signature_name": request.model_spec.signature_name or "serving_default",
                "inputs": {k: base64.b64encode(v.SerializeToString()).decode() for k, v in request.inputs.items()},
            }
        )
    return requests


def _compare(where: str, got: dict[str, Any], want: dict[str, Any], atol: float, rtol: float) -> list[str]:
    problems = []
    for name, expected in want.items():
        if name not in got:
            problems.append(f"{where}: output {name!r} missing")
            continue
        actual = got[name]
        if expected["dtype"] == "string":
            if list(np.asarray(expected["values"], dtype=object).reshape(-1)) != actual["values"]:
                problems.append(f"{where}/{name}: strings differ from the evaluation path's")
            continue
        e = np.asarray(expected["values"], dtype=np.float64).reshape(-1)
        a = np.asarray(actual["values"], dtype=np.float64)
        if e.shape != a.shape or not np.allclose(a, e, atol=atol, rtol=rtol):
            diff = np.max(np.abs(a - e)) if e.shape == a.shape else f"shape {a.shape} vs {e.shape}"
            problems.append(f"{where}/{name}: differs from the evaluation path (max |diff| {diff}, atol {atol:g}, rtol {rtol:g})")
    return problems


def _run_checker(export_dir: Path, requests: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    checker = Path(__file__).with_name("stock_tf_check.py")
    with tempfile.TemporaryDirectory() as tmp:
        requests_path, result_path = Path(tmp, "requests.json"), Path(tmp, "result.json")
        requests_path.write_text(json.dumps(requests))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
        proc = subprocess.run(
            [sys.executable, str(checker), str(export_dir), str(requests_path), str(result_path)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp,
        )
        if not result_path.exists():
            raise VerificationError(f"stock TensorFlow could not load {export_dir}:\n{proc.stderr[-3000:]}")
        return json.loads(result_path.read_text())


def verify_export(path: str | os.PathLike, timeout: float = 600) -> dict[str, Any]:
    """Verifies an export directory (``saved_models/<model>/<version>``).

    Returns:
        A report: op count, signatures, requests replayed, loaders, compute dtype and tolerance.

    Raises:
        VerificationError: with the reason (custom ops, load failure, wrong answers).
    """
    export_dir = Path(path).resolve()
    if not (export_dir / "saved_model.pb").exists():
        raise VerificationError(f"{export_dir} is not a SavedModel directory (no saved_model.pb)")
    requests = _warmup_requests(export_dir)
    result = _run_checker(export_dir, requests, timeout)
    if result.get("error"):
        raise VerificationError(f"{export_dir}: {result['error']}")
    if result["custom_modules_loaded"]:
        raise VerificationError(f"the check process loaded {result['custom_modules_loaded']}: not stock TensorFlow")
    expected_path = export_dir / "assets.extra" / "expected_outputs.json"
    if not expected_path.exists():
        raise VerificationError(f"{export_dir}: no assets.extra/expected_outputs.json: not an export of this tfmodels version")
    recorded = json.loads(expected_path.read_text())
    dtype = recorded["compute_dtype"]
    atol, rtol = TOLERANCES[dtype]
    problems = []
    if "serving_default" not in result["signatures"]:
        problems.append("no serving_default signature")
    if not requests:
        problems.append(f"no warm-up requests (assets.extra/{WARMUP_FILE}) to replay: not a tfmodels export")
    for loader, outputs in result["outputs"].items():
        for request, answer in zip(requests, outputs):
            signature = request["signature_name"]
            if signature in recorded["signatures"]:
                problems += _compare(f"{loader} {signature}", answer, recorded["signatures"][signature], atol, rtol)
            else:
                problems.append(f"{signature}: no recorded evaluation answer to compare with")
    if problems:
        raise VerificationError(f"{export_dir}: " + "; ".join(problems))
    return {
        "export": str(export_dir),
        "core_ops": result["ops"],
        "signatures": result["signatures"],
        "requests_replayed": len(requests),
        "loaders": sorted(result["outputs"]),
        "compute_dtype": dtype,
        "tolerance": {"atol": atol, "rtol": rtol},
    }
