"""What every benchmark shares: the precision flag, the matmul peak, alternating timing, the report.

A benchmark script builds its model and a reference implementation of the same thing, then hands
:func:`compare` one callable per side (a fixed number of training steps, or one pass over a data
set). :func:`compare` times them in alternating rounds in one process (ours, reference, ours,
reference, …; the best round of each counts, since a shared machine's load changes between runs)
and prints each side's throughput, its achieved GFLOP/s from the script's FLOP count, the share of
this machine's matmul peak *in the precision of the run*, and the ratio ours / reference.

- ``--precision float32`` builds every model under the Keras policy ``float32``;
  ``--precision bfloat16`` under ``mixed_bfloat16`` (bfloat16 compute, float32 variables), set by
  :func:`parse_args` before any model exists, so ours and the reference share the policy. The peak
  is measured with a large ``tf.matmul`` in that dtype: float32 operands for float32 (on an
  Ampere+ GPU TensorFlow runs these as TF32, as it does the models' matmuls), bfloat16 operands
  for bfloat16 (AMX or AVX512-BF16 on a CPU, tensor cores on a GPU).
- ``--quick`` is a smoke test: tiny sizes, one round of one step (``tfmodels bench --quick``).
- FLOPs count 2 per multiply-add; a training step counts ≈ 3 × the forward pass (forward, the
  gradient with respect to the activations, and with respect to the weights).
- Where ``TFMODELS_BENCH_RESULTS`` names a file, every comparison also appends one JSON line to
  it; ``tfmodels bench`` reads them back for its closing table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Callable

import tfmodels  # noqa: F401  (its import starts TensorFlow without the C++ INFO lines; scripts import this module first)

import keras  # noqa: I001
import tensorflow as tf

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # --precision -> Keras dtype policy
RESULTS_ENV = "TFMODELS_BENCH_RESULTS"

_best_peak: dict[str, float] = {}  # dtype -> the best matmul rate measured in this process


def argument_parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """The options every benchmark takes; ``doc`` is the script's docstring (its help text)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32", help="float32 or mixed_bfloat16 models")
    parser.add_argument("--steps", type=int, default=steps, help="timed training steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing, XLA compilation)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side counts")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, one round of one step")
    return parser


def parse_args(parser: argparse.ArgumentParser, quick: dict, argv: list[str] | None = None) -> argparse.Namespace:
    """Parses ``argv``; ``--quick`` swaps in ``quick``'s defaults (flags given explicitly still win).

    Sets the Keras dtype policy of ``--precision``: call it before building any model.
    """
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(steps=1, warmup=1, rounds=1, **quick)
        args = parser.parse_args(argv)
    keras.mixed_precision.set_global_policy(PRECISIONS[args.precision])
    return args


def matmul_peak_gflops(dtype: str, n: int | None = None, repeats: int = 5) -> float:
    """Best rate of an ``n × n`` ``tf.matmul`` in ``dtype`` (``float32`` or ``bfloat16``), in GFLOP/s.

    ``n`` defaults to 2048 on a CPU and 8192 on a GPU (a smaller product leaves a GPU idle).
    The result is also kept as this process's best for ``dtype`` (see :func:`compare`).
    """
    n = n or (8192 if tf.config.list_physical_devices("GPU") else 2048)
    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)), autograph=False)
    product(a, b).numpy()  # tracing; .numpy() waits for the device
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    rate = 2 * n**3 / best / 1e9
    _best_peak[dtype] = max(rate, _best_peak.get(dtype, 0.0))
    return rate


def fit_steps(model: keras.Model, data: tf.data.Dataset, steps: int) -> Callable[[], object]:
    """A run of ``steps`` training steps of a compiled ``model`` on ``data`` (repeated)."""
    return lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)


def fit_runs(
    models: dict[str, keras.Model], data: tf.data.Dataset, loss, optimizer: Callable[[], object], args, jit_compile: bool = False
) -> dict[str, Callable[[], object]]:
    """Compiles each model (with an ``optimizer()`` of its own), trains ``args.warmup`` untimed steps on
    ``data`` (repeated), and returns ``{label: run of args.steps steps}`` for :func:`compare`."""
    runs = {}
    for label, model in models.items():
        model.compile(optimizer(), loss=loss, jit_compile=jit_compile)
        fit_steps(model, data, args.warmup)()
        runs[label] = fit_steps(model, data, args.steps)
    return runs


def alternating_rates(runs: dict[str, Callable[[], object]], items_per_run: float, rounds: int) -> dict[str, float]:
    """Best items/s of each run over ``rounds`` rounds in which every run goes once, in turn."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            best[label] = min(best[label], time.perf_counter() - start)
    return {label: items_per_run / seconds for label, seconds in best.items()}


def compare(
    title: str,
    runs: dict[str, Callable[[], object]],
    *,
    items_per_run: float,
    unit: str,
    flops_per_item: float | None,
    args: argparse.Namespace,
    target: str | None = ">= 1.0",
) -> dict[str, float]:
    """Times ``runs`` (``{"ours": …, "<reference name>": …}``) in alternating rounds and prints the comparison.

    ``flops_per_item`` (FLOPs per sequence, image, token, …; ``None`` for work without floating
    point) gives GFLOP/s and the share of the matmul peak of ``args.precision``: the best of the
    measurements before and after the timing. Returns the rates (items/s) by label.
    """
    (reference,) = [label for label in runs if label != "ours"]
    dtype = args.precision
    if flops_per_item is not None:
        matmul_peak_gflops(dtype)
    rates = alternating_rates(runs, items_per_run, args.rounds)
    shares = dict.fromkeys(runs)
    print(f"  {title}")
    if flops_per_item is not None:
        matmul_peak_gflops(dtype)
        peak = _best_peak[dtype]
        print(f"    {dtype} matmul peak (tf.matmul, best before/after): {peak:.1f} GFLOP/s; {flops_per_item / 1e9:.4g} GFLOP per {unit[:-1]}")
    width = max(len(label) for label in runs)
    for label in (reference, "ours"):
        line = f"    {label:<{width}}  {rates[label]:10.2f} {unit}/s"
        if flops_per_item is not None:
            achieved = rates[label] * flops_per_item / 1e9
            shares[label] = achieved / peak
            line += f"  {achieved:8.1f} GFLOP/s  {shares[label]:6.1%} of the {dtype} peak"
        print(line)
    ratio = rates["ours"] / rates[reference]
    print(f"    {'ratio ours / reference':<{width}}  {ratio:10.2f}" + (f"  (target {target})" if target else ""), flush=True)
    if os.environ.get(RESULTS_ENV):
        record = {
            "title": title, "precision": dtype, "unit": unit, "reference": reference,
            "ours_rate": rates["ours"], "reference_rate": rates[reference], "ratio": ratio,
            "ours_share": shares["ours"], "reference_share": shares[reference],
            "peak_gflops": _best_peak.get(dtype) if flops_per_item is not None else None,
        }
        with open(os.environ[RESULTS_ENV], "a") as results:
            results.write(json.dumps(record) + "\n")
    return rates


def conv_dense_macs(model: keras.Model, unknown_positions: int | None = None) -> int:
    """Multiply-adds of one example's forward pass through the ``Conv2D`` and ``Dense`` layers of ``model``.

    ``Σ_Conv2D k_h·k_w·(C_in/groups)·C_out·H_out·W_out + Σ_Dense d_in·d_out·(positions)``, read from
    the built functional model (nested models included; a wrapper such as ``PerRegion`` or
    ``TimeDistributed`` counts its inner network once per position it runs on); the other layers'
    arithmetic (batch norm, activations, pooling) is a few percent and not counted, as is usual.
    A nested model built for any number of positions (``[B, None, D]``) counts
    ``unknown_positions`` of them; without it, such a model is an error rather than a guess.
    """
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            macs += conv_dense_macs(layer, unknown_positions)
        elif isinstance(layer, keras.layers.Wrapper):
            inner_rank = len(layer.layer.output.shape)
            positions = math.prod(layer.output.shape[1 : len(layer.output.shape) - inner_rank + 1])
            macs += positions * conv_dense_macs(layer.layer, unknown_positions)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            positions = layer.output.shape[1:-1]
            if None in positions and unknown_positions is None:
                raise ValueError(f"{layer.name} runs on an unknown number of positions {positions}: pass unknown_positions")
            macs += math.prod(layer.kernel.shape) * math.prod(d or unknown_positions for d in positions)
    return macs


def header(line: str, args: argparse.Namespace, plan: str | None = None) -> None:
    """Prints a benchmark's first line, with the precision and the timing plan (default: ``args``' steps and rounds)."""
    plan = plan or f"best of {args.rounds} alternating rounds of {args.steps} steps after {args.warmup} warm-up steps"
    print(f"{line}; {args.precision} (Keras policy {PRECISIONS[args.precision]}); {plan}", flush=True)
