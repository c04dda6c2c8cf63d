"""``tfmodels train|evaluate|export|verify-export|predict|list|bench`` (the console script).

Errors a user can cause (unknown MODEL, bad ``--set``, bad data source, a broken export) print one
clear line and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def _user_errors() -> tuple[type[BaseException], ...]:
    from pipelines.sources import DataSourceError
    from tfmodels.config import ConfigError
    from tfmodels.export import VerificationError
    from tfmodels.export.predict import PredictInputError
    from tfmodels.registry import UnknownModelError
    from tfmodels.training.fit import TrainingDivergedError

    return (
        ConfigError, DataSourceError, UnknownModelError, VerificationError, TrainingDivergedError, PredictInputError,
        FileNotFoundError,
    )


def latest_version(path: Path) -> Path:
    """``saved_models/<model>`` -> its newest version directory; a version directory as is."""
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted((int(p.name) for p in path.glob("*") if p.is_dir() and p.name.isdigit()), reverse=True)
    if not versions:
        raise FileNotFoundError(f"{path} holds no exported version (saved_models/<model>/<version>)")
    return path / str(versions[0])


def _latest_metrics(runs_root: Path, name: str, preset: str = "default") -> dict | None:
    for metrics_path in sorted((runs_root / name).glob("*/metrics.json"), reverse=True):
        metrics = json.loads(metrics_path.read_text())
        if metrics.get("preset") == preset and "test" in metrics:  # an unfinished run has no test metrics yet
            return metrics
    return None


def cmd_list(args) -> int:
    from tfmodels import registry

    if not args.markdown:
        rows = registry.describe()
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            print(f"{name:<{width}}  {description}")
        return 0
    print("| MODEL | what it is | default-preset test result |")
    print("|---|---|---|")
    for name, description in registry.describe():
        metrics = _latest_metrics(Path(args.runs_root), name)
        result = "not measured yet"
        if metrics:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics["test"].items())
            result = f"{shown} ({metrics['data'].get('source', '')})"
        print(f"| `{name}` | {description} | {result} |")
    return 0


def cmd_train(args) -> int:
    from tfmodels.training.trainer import train

    result = train(
        args.model,
        preset=args.preset,
        data=args.data,
        strategy=args.strategy,
        overrides=args.set,
        resume=args.resume,
        runs_root=args.runs_root,
        export_root=None if args.no_export else args.export_root,
    )
    if result.run_dir is not None:  # a non-chief worker of a cluster writes no run
        print(f"Run directory: {result.run_dir}")
    if result.export_path:
        print(f"Export: {result.export_path}  (check it: tfmodels verify-export {result.export_path})")
    return 0


def cmd_evaluate(args) -> int:
    from tfmodels.training.trainer import evaluate_run

    print(json.dumps(evaluate_run(args.run_dir, args.data), indent=2))
    return 0


def cmd_export(args) -> int:
    from tfmodels.training.trainer import export_run

    print(f"Export: {export_run(args.run_dir, args.export_root)}")
    return 0


def cmd_verify(args) -> int:
    from tfmodels.export import verify_export

    report = verify_export(latest_version(Path(args.path)))
    tolerance = report["tolerance"]
    print(
        f"OK {report['export']}: {report['core_ops']} distinct ops, all in core TensorFlow; "
        f"signatures {', '.join(report['signatures'])}; {report['requests_replayed']} warm-up request(s) of test "
        f"examples in raw form, replayed in a fresh TensorFlow-only process through the "
        f"{' and '.join(report['loaders'])} loaders, equal to the evaluation path's answers "
        f"({report['compute_dtype']} model: atol {tolerance['atol']:g}, rtol {tolerance['rtol']:g})"
    )
    return 0


def cmd_predict(args) -> int:
    from tfmodels.export.predict import predict, run_export
    from tfmodels.training.run_folder import RUN_FILE

    path = Path(args.path)
    export = run_export(path) if (path / RUN_FILE).exists() else latest_version(path)
    summary = predict(export, args.inputs, signature=args.signature, batch_size=args.batch_size)
    return 1 if summary.skipped else 0


BENCH_PRECISIONS = ("float32", "bfloat16")
BENCH_RESULTS_ENV = "TFMODELS_BENCH_RESULTS"  # benchmarks/common.py appends one JSON line per comparison there


def cmd_bench(args) -> int:
    """Runs every ``benchmarks/bench_*.py`` once per precision (float32, then bfloat16), then tabulates them all."""
    import os
    import tempfile

    bench_dir = Path(__file__).resolve().parent.parent / "benchmarks"
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if args.only in s.stem]
    if not scripts:
        raise FileNotFoundError(f"no benchmarks found in {bench_dir}")
    status = 0
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "results.jsonl"
        env = {**os.environ, BENCH_RESULTS_ENV: str(results)}
        if env.get("TF_CPP_MIN_LOG_LEVEL") == "2":  # set by this process's quiet start: let each script start as quietly
            del env["TF_CPP_MIN_LOG_LEVEL"]
        for script in scripts:
            for precision in args.precision or BENCH_PRECISIONS:
                print(f"== {script.stem} --precision {precision}", flush=True)
                command = [sys.executable, str(script), "--precision", precision, *(["--quick"] if args.quick else [])]
                status |= subprocess.call(command, env=env)
        rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    print("\n| comparison | precision | ours | reference | ratio | share of the matmul peak: ours / reference |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        share = "no floating point"
        if row["peak_gflops"] is not None:
            share = f"{row['ours_share']:.1%} / {row['reference_share']:.1%} of {row['peak_gflops']:,.1f} GFLOP/s"
        print(
            f"| {row['title']} | {row['precision']} | {row['ours_rate']:,.1f} {row['unit']}/s | "
            f"{row['reference']} {row['reference_rate']:,.1f} | {row['ratio']:.2f} | {share} |"
        )
    return status


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tfmodels", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    lst = sub.add_parser("list", help="list every MODEL")
    lst.add_argument("--markdown", action="store_true", help="the README table, with measured default-preset results")
    lst.add_argument("--runs-root", default="runs")
    lst.set_defaults(fn=cmd_list)

    tr = sub.add_parser("train", help="train, evaluate and export a MODEL")
    tr.add_argument("model")
    tr.add_argument("--preset", default="default", help="tiny | default | paper")
    tr.add_argument("--data", help="embedded (default) | tfds:<name> | a recipe-specific source")
    tr.add_argument("--strategy", help="default | mirrored | multi_worker")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    tr.add_argument(
        "--resume", metavar="RUN_DIR",
        help="continue a run (a run folder, or 'latest': the newest run of MODEL) at its first unfinished stage; a finished run is left as it is",
    )
    tr.add_argument("--runs-root", default="runs")
    tr.add_argument("--export-root", default="saved_models")
    tr.add_argument("--no-export", action="store_true")
    tr.set_defaults(fn=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a run's model on its saved test split (or the test split of --data)")
    ev.add_argument("run_dir")
    ev.add_argument("--data")
    ev.set_defaults(fn=cmd_evaluate)

    ex = sub.add_parser("export", help="export a run's model.keras as a new SavedModel version")
    ex.add_argument("run_dir")
    ex.add_argument("--export-root", default="saved_models")
    ex.set_defaults(fn=cmd_export)

    ve = sub.add_parser("verify-export", help="check an export with stock TensorFlow only")
    ve.add_argument("path", help="saved_models/<model>/<version> (or saved_models/<model> for the newest)")
    ve.set_defaults(fn=cmd_verify)

    pr = sub.add_parser(
        "predict", help="run an export's serving signature on image files/folders, text lines or CSV rows; JSON lines out"
    )
    pr.add_argument("path", help="an export version, saved_models/<model> (the newest version) or a run folder (its export)")
    pr.add_argument("inputs", nargs="+", help="image files or folders, text files, CSV files ('-' reads stdin)")
    pr.add_argument("--signature", default="serving_default", help="the signature to run (default serving_default)")
    pr.add_argument("--batch-size", type=int, default=32)
    pr.set_defaults(fn=cmd_predict)

    be = sub.add_parser(
        "bench", help="run the benchmarks in float32 and bfloat16: ratios against reference implementations, shares of the matmul peak"
    )
    be.add_argument("--only", help="run only benchmarks whose name contains this")
    be.add_argument(
        "--precision", action="append", choices=BENCH_PRECISIONS,
        help="run only this precision (repeatable; default: float32, then bfloat16)",
    )
    be.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, one round of one step")
    be.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.debug:
        return args.fn(args)
    try:
        return args.fn(args)
    except _user_errors() as err:
        print(f"tfmodels {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
