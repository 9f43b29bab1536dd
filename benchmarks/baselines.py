"""Baseline accuracy on the bundled MovieLens sample: popularity and random, both splits, k = 10.

The floor every learned model must clear, measured with the same `evaluate` the CLI and the pipeline's
gate use (per-user 75/25 split, seed 42). Prints one JSON object: the results and the machine they ran
on. Usage: python benchmarks/baselines.py [--data DIR] [--k 10] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, machine

from recsys.evaluation import evaluate
from recsys.loaders import load_interactions

SAMPLE = REPO / "data" / "sample" / "ml-latest-small"
MODELS = ("popularity", "random")
SPLITS = ("stratified", "temporal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE, help="folder with ratings.csv and movies.csv")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    started = time.perf_counter()
    data = load_interactions(args.data / "ratings.csv", args.data / "movies.csv")
    load_seconds = time.perf_counter() - started
    results = [
        evaluate(data, model, split=split, k=args.k, seed=args.seed) for split in SPLITS for model in MODELS
    ]
    report: dict[str, Any] = {
        "benchmark": "baselines",
        "data": str(args.data.resolve().relative_to(REPO))
        if args.data.resolve().is_relative_to(REPO)
        else args.data.name,
        "interactions": len(data),
        "load_seconds": load_seconds,
        "results": results,
        "machine": machine(),
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
