"""`recsys preprocess`: the Glue job's transforms and outputs on a local SparkSession.

Registered through the `recsys.commands` entry point group (recsys never imports glue). It reads the
canonical or MovieLens CSVs directly (or, with `--ingest`, the curated ingest Parquet layout, as the Glue
job does) and writes the same `<out>/runs/<run_id>/` folder the job writes to S3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROG = "recsys preprocess"


def register(subparsers: Any) -> None:
    """Add the `preprocess` parser (pyspark is imported only when the command runs)."""
    parser = subparsers.add_parser(
        "preprocess",
        help="run the Glue preprocessing job locally: FM recordIO channels, DSSTNE text, Parquet tables",
        description=(
            "Clean, index, split and negative-sample transactions on a local Spark, writing "
            "OUT/runs/RUN_ID/ exactly as the Glue job does (manifest.json last). User and item indices "
            "extend the latest completed run under OUT unless --previous-run says otherwise."
        ),
    )
    parser.add_argument(
        "--catalog", nargs="+", action="extend", default=[], metavar="PATH", help="catalog CSV(s)"
    )
    parser.add_argument(
        "--transactions", nargs="+", action="extend", default=[], metavar="PATH", help="transaction CSV(s)"
    )
    parser.add_argument(
        "--ingest", metavar="DIR", help="read the curated ingest Parquet layout instead of CSVs"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output root (runs/<run id>/ goes under it)"
    )
    parser.add_argument("--run-id", help="run id (default: the UTC time, e.g. 20250101T120000Z)")
    parser.add_argument(
        "--previous-run",
        default="auto",
        metavar="auto|none|DIR",
        help="run whose id maps are extended: auto = OUT's latest completed run (default), none = fresh ids",
    )
    parser.add_argument(
        "--test-ratio", type=float, default=0.2, help="newest share held out per user (%(default)s)"
    )
    parser.add_argument(
        "--positive-threshold", type=float, default=4.0, help="rating >= this is positive (%(default)s)"
    )
    parser.add_argument("--negatives", type=int, default=4, help="negatives per positive (%(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="negative sampling seed (%(default)s)")
    parser.add_argument(
        "--no-categories", action="store_true", help="no item-category features in the FM rows"
    )
    parser.add_argument(
        "--dsstne-target",
        choices=("all", "positive"),
        default="all",
        help="DSSTNE output dataset (%(default)s)",
    )
    parser.add_argument("--dsstne-values", action="store_true", help="write item,rating in the DSSTNE text")
    parser.add_argument("--driver-memory", default="4g", help="local Spark driver memory (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def local_session(driver_memory: str) -> tuple[Any, bool]:
    """(the active SparkSession, False) or (a new local one, True). Python workers get this interpreter and
    a path that finds `glue`, so the executors can run the recordIO writer."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    root = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    session = (
        SparkSession.builder.master("local[*]")
        .appName("recsys-preprocess")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(max(4, 2 * (os.cpu_count() or 1))))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session, True


def run(args: argparse.Namespace) -> int:
    """Run the job locally; exit 2 with one line saying why when the inputs or settings are unusable."""
    from glue.indexing import IndexMapError
    from glue.pipeline import RunExistsError, run_preprocess, show_progress
    from glue.readers import InputError, read_csvs, read_ingest
    from glue.settings import DsstneTarget, PreprocessSettings, SettingsError, check_run_id

    if bool(args.transactions) == bool(args.ingest):
        return _fail("give either --transactions PATH [PATH ...] (with --catalog) or --ingest DIR")
    if args.ingest and args.catalog:
        return _fail("--catalog goes with --transactions; --ingest reads the catalog from the ingest layout")
    missing = [
        p
        for p in [*args.catalog, *args.transactions, *([args.ingest] if args.ingest else [])]
        if not Path(p).exists()
    ]
    if missing:
        return _fail(f"no such file or folder: {missing[0]}")
    try:
        run_id = check_run_id(args.run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
        settings = PreprocessSettings(
            test_ratio=args.test_ratio,
            positive_threshold=args.positive_threshold,
            negatives_per_positive=args.negatives,
            seed=args.seed,
            categories=not args.no_categories,
            dsstne_target=DsstneTarget(args.dsstne_target),
            dsstne_values=args.dsstne_values,
        )
    except SettingsError as error:
        return _fail(str(error))

    out = str(Path(args.out).resolve())
    previous = args.previous_run
    if previous not in ("auto", "none"):
        previous = str(Path(previous).resolve())
    show_progress()
    spark, created = local_session(args.driver_memory)
    try:
        if args.ingest:
            inputs = read_ingest(spark, str(Path(args.ingest).resolve()))
        else:
            inputs = read_csvs(
                spark,
                [str(Path(p).resolve()) for p in args.catalog],
                [str(Path(p).resolve()) for p in args.transactions],
            )
        result = run_preprocess(spark, inputs, out, run_id, settings, previous)
    except (InputError, RunExistsError, SettingsError, IndexMapError, FileNotFoundError) as error:
        return _fail(str(error))
    finally:
        if created:
            spark.stop()
    if args.json:
        print(json.dumps(result.manifest, indent=2, sort_keys=True))
        return 0
    counts = result.manifest["counts"]
    print(
        f"run {run_id}: {counts['users']} users, {counts['items']} items, "
        f"{counts['interactions']} interactions "
        f"({counts['train']} train, {counts['test']} test); FM records {counts['fm_train_records']} train, "
        f"{counts['fm_test_records']} test; feature_dim {result.manifest['feature_dim']}; "
        f"{result.stats['seconds']['total']:.1f} s"
    )
    print(f"outputs: {result.layout.root}")
    return 0
