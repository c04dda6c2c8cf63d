"""Writes ``saved_models/<model>/<version>/``: a SavedModel TF-Serving can load and warm up.

Each version directory holds::

    saved_model.pb, variables/          the SavedModel (signatures from the recipe's Serving)
    assets.extra/tf_serving_warmup_requests   PredictionLog records TF-Serving replays on load
    assets.extra/rest_requests/<sig>.json     a REST request body for each signature
    assets.extra/expected_outputs.json        the evaluation path's answers to those requests,
                                              and the model's compute dtype (the check's tolerance)
    assets.extra/signatures.json              inputs and documented outputs of each signature
    assets.extra/run.json                     the run (id and folder) this version was exported from

The version is written under a temporary name that TF-Serving ignores and renamed into place,
so a server polling the directory never sees half a model; versions only increase.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf

from tfmodels.export.signatures import Serving, ServingExample, check_examples, describe
from tfmodels.scratch import owned_name, remove_abandoned

WARMUP_FILE = "tf_serving_warmup_requests"


def _versions(model_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _jsonable(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind in ("S", "O"):
        values = np.vectorize(lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b), otypes=[object])(array)
        return {"dtype": "string", "values": values.tolist()}
    return {"dtype": array.dtype.name, "values": array.tolist()}


def _rest_value(array: np.ndarray) -> Any:
    if array.dtype.kind in ("S", "O"):  # binary strings travel base64-encoded over REST
        return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(array).tolist()
    return array.tolist()


def _write_warmup(path: Path, model_name: str, examples: Mapping[str, ServingExample]) -> None:
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for name, example in examples.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=name)
            )
            for key, value in example.request.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def compute_dtype(model: keras.Model) -> str:
    """The least precise compute dtype among the model's layers (``float32`` unless mixed)."""
    dtypes = {layer.dtype_policy.compute_dtype for layer in model._flatten_layers(include_self=True)}
    for dtype in ("bfloat16", "float16"):
        if dtype in dtypes:
            return dtype
    return "float32"


def _expected_outputs(model: keras.Model, examples: Mapping[str, ServingExample]) -> dict[str, Any]:
    return {
        "compute_dtype": compute_dtype(model),
        "signatures": {
            name: {k: _jsonable(np.asarray(v)) for k, v in example.expected.items()} for name, example in examples.items()
        },
    }


def exported_version(model_dir: Path, run_id: str) -> Path | None:
    """The version of ``model_dir`` exported by run ``run_id``, if there is one."""
    for version in _versions(model_dir) if model_dir.exists() else []:
        record = model_dir / str(version) / "assets.extra" / "run.json"
        if record.exists() and json.loads(record.read_text()).get("run_id") == run_id:
            return model_dir / str(version)
    return None


def write_models_config(export_root: Path) -> Path:
    """Regenerates ``models.config`` listing every model that has at least one version.

    Paths are those inside the TF-Serving container, where ``export_root`` is mounted at
    ``/models`` (see the README's docker command).
    """
    entries = []
    for model_dir in sorted(p for p in export_root.iterdir() if p.is_dir()):
        if _versions(model_dir):
            entries.append(
                "  config {\n"
                f'    name: "{model_dir.name}"\n'
                f'    base_path: "/models/{model_dir.name}"\n'
                '    model_platform: "tensorflow"\n'
                "  }\n"
            )
    path = export_root / "models.config"
    tmp = path.with_suffix(".config.tmp")
    tmp.write_text("model_config_list {\n" + "".join(entries) + "}\n")
    os.replace(tmp, path)
    return path


def export_model(
    recipe,
    cfg,
    model: keras.Model,
    export_root: Path,
    test: tf.data.Dataset,
    run: Mapping[str, str] | None = None,
) -> Path:
    """Exports ``model`` with the recipe's serving signatures; returns the version directory.

    Args:
        recipe: the model's :class:`~tfmodels.registry.Recipe`.
        cfg: the run's config.
        model: the trained model.
        export_root: the TF-Serving model base path (``saved_models``).
        test: the unbatched test split; the recipe's ``serving_examples`` takes its requests
            and expected answers from it.
        run: ``{"run_id": ..., "run_dir": ...}`` of the run exported, recorded in the version.
    """
    serving: Serving = recipe.serving(cfg, model)
    examples = recipe.serving_examples(cfg, model, test)
    check_examples(serving, examples)
    model_dir = Path(export_root) / recipe.name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned(model_dir.glob(".tmp-*-*"))
    version = (_versions(model_dir) or [0])[-1] + 1
    tmp = model_dir / owned_name(f".tmp-{version}")  # not a number: TF-Serving ignores it
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, endpoint in serving.endpoints.items():
            archive.add_endpoint(name, endpoint.positional(), endpoint.input_signature())
        archive.write_out(str(tmp), verbose=False)

        extra = tmp / "assets.extra"
        (extra / "rest_requests").mkdir(parents=True)
        _write_warmup(extra / WARMUP_FILE, recipe.name, examples)
        for name, example in examples.items():
            body = {"signature_name": name, "inputs": {k: _rest_value(np.asarray(v)) for k, v in example.request.items()}}
            (extra / "rest_requests" / f"{name}.json").write_text(json.dumps(body))
        (extra / "expected_outputs.json").write_text(json.dumps(_expected_outputs(model, examples)))
        (extra / "signatures.json").write_text(json.dumps(describe(serving), indent=2))
        (extra / "run.json").write_text(json.dumps(dict(run or {}), indent=2))

        while (model_dir / str(version)).exists():  # another export took this number meanwhile
            version += 1
        final = model_dir / str(version)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    write_models_config(Path(export_root))
    print(f"Exported {recipe.name} version {version} -> {final}")
    return final
