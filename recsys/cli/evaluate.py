"""`recsys evaluate`: offline accuracy of one or more models on a ratings file, as a table or JSON.

stdout carries only the result (the table, or JSON with --json); progress and errors go to stderr.
Bad input (a file that cannot be loaded, an unknown model, k < 1, a test ratio outside (0, 1)) prints
one line naming the problem and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FORMATS = ("auto", "movielens", "ml-100k", "canonical")
SPLITS = ("stratified", "temporal")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure models' offline accuracy (precision, recall, NDCG, MAP, coverage, RMSE)",
        description="Split each user's interactions into train and test, fit each model on train, "
        "and score its top-k lists against test.",
    )
    parser.add_argument("--ratings", required=True, type=Path, help="interactions file (CSV or u.data)")
    parser.add_argument("--items", type=Path, help="optional item catalog (e.g. movies.csv)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="input format (default: auto)")
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME",
        help="model to evaluate (popularity, random, autoencoder, autoencoder-dsstne); repeat for several",
    )
    parser.add_argument("--split", choices=SPLITS, default="stratified", help="per-user split")
    parser.add_argument("--test-ratio", type=float, default=0.25, help="share of each user held out")
    parser.add_argument("--k", type=int, default=10, help="length of each top-k list")
    parser.add_argument("--seed", type=int, default=42, help="seed for the split and the random model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from recsys.evaluation import check_settings, evaluate
    from recsys.loaders import LoadError, load_interactions
    from recsys.models import model_names

    try:
        check_settings(args.split, args.test_ratio, args.k)
        known = model_names()
        unknown = [name for name in args.model if name not in known]
        if unknown:
            raise ValueError(f"unknown model {unknown[0]!r}; known models: {', '.join(known)}")
    except ValueError as exc:
        return _fail(str(exc))

    print(f"loading {args.ratings} ...", file=sys.stderr)
    try:
        data = load_interactions(args.ratings, args.items, fmt=args.format)
    except LoadError as exc:
        return _fail(str(exc))
    except OSError as exc:  # the loader wraps these in LoadError; this is belt and braces
        return _fail(f"cannot read {exc.filename or args.ratings}: {exc.strerror or exc}")

    results = []
    for name in args.model:
        print(f"evaluating {name} ({args.split} split, k={args.k}) ...", file=sys.stderr)
        try:
            results.append(evaluate(data, name, args.split, args.test_ratio, args.k, args.seed))
        except ValueError as exc:
            return _fail(f"{args.ratings}: {exc}")

    if args.json:
        payload: dict[str, Any] = results[0] if len(results) == 1 else {"models": results}
        print(json.dumps(payload))  # one line, like `recsys validate --json`
    else:
        print(_describe(args, results[0]))
        print(format_table(results, args.k))
    return 0


def _fail(message: str) -> int:
    print(f"recsys evaluate: error: {message}", file=sys.stderr)
    return 2


def _describe(args: argparse.Namespace, result: dict[str, Any]) -> str:
    """The line naming the data: file, users, items, interactions, split."""
    items = f" + {args.items}" if args.items else ""
    test_pct = round(100 * args.test_ratio)
    return (
        f"data: {args.ratings}{items}: {result['n_users']} users, {result['n_items']} items, "
        f"{result['n_train'] + result['n_test']} interactions; {args.split} split "
        f"{100 - test_pct}/{test_pct} ({result['n_test_users']} test users), k={args.k}, seed={args.seed}"
    )


def format_table(results: list[dict[str, Any]], k: int) -> str:
    """One row per model, metrics as right-aligned columns."""
    columns = [
        ("model", "model"),
        (f"precision@{k}", f"P@{k}"),
        (f"recall@{k}", f"R@{k}"),
        (f"ndcg@{k}", f"nDCG@{k}"),
        (f"map@{k}", f"MAP@{k}"),
        ("map", "MAP"),
        ("coverage", "coverage"),
        ("rmse", "RMSE"),
        ("fit_seconds", "fit s"),
        ("recommend_seconds", "rec s"),
    ]
    rows = [[title for _, title in columns]]
    rows += [[_cell(key, result[key]) for key, _ in columns] for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key.endswith("seconds"):
        return f"{value:.3f}"
    return f"{value:.6f}"
