"""Validator throughput and memory on an ML-20M-shaped transactions file, beside pandas.read_csv.

Makes the file with `recsys synth` (defaults: 138,493 users, 26,744 items, 20,000,263 interactions)
unless it exists, then validates it in a fresh process pinned to one core, and reads it with
pandas.read_csv in another, in the same run. On the first two million rows it also times the validator
with every field quoted (as many exporters write), and the exact (csv-module) path alone, to show what
the Arrow fast path buys. Prints one JSON object.

    python benchmarks/validator_throughput.py [--exact-rows N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import OUT, machine, run_measured

VALIDATE = """
from recsys.validation import validate_file
start = time.perf_counter()
report = validate_file({path!r}, "transactions")
seconds = time.perf_counter() - start
result = {{"rows": report.rows_total, "rows_valid": report.rows_valid, "seconds": round(seconds, 2),
          "rows_per_s": round(report.rows_total / seconds)}}
"""

PANDAS = """
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv({path!r})
seconds = time.perf_counter() - start
result = {{"rows": len(frame), "seconds": round(seconds, 2), "rows_per_s": round(len(frame) / seconds)}}
"""

EXACT_PATH = """
import io
from recsys.csv_contract import Kind
from recsys.validation.stream import CsvValidator
with open({path!r}, "rb") as f:
    head = b"".join(f.readline() for _ in range({rows} + 1))
start = time.perf_counter()
n = sum(b.rows_total for b in CsvValidator(io.BytesIO(head), Kind.TRANSACTIONS, fast=False).batches())
seconds = time.perf_counter() - start
result = {{"rows": n, "seconds": round(seconds, 2), "rows_per_s": round(n / seconds)}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exact-rows", type=int, default=2_000_000, help="rows for the exact-path timing")
    args = parser.parse_args()

    data_dir = OUT / "synth-ml20m"
    path = data_dir / "transactions.csv"
    if not path.exists():
        print(f"making {path} with recsys synth (defaults) …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "recsys.cli.main", "synth", "--out", str(data_dir)], check=True)

    quoted = data_dir / f"transactions-quoted-{args.exact_rows}.csv"
    if not quoted.exists():  # many exporters quote every field: the same rows, quoted
        with open(path, "rb") as source, open(quoted, "wb") as sink:
            for _, line in zip(range(args.exact_rows + 1), source, strict=False):
                fields = line.rstrip(b"\r\n").split(b",")
                sink.write(b",".join(b'"' + f + b'"' for f in fields) + b"\n")

    validator = run_measured(VALIDATE.format(path=str(path)))
    quoted_run = run_measured(VALIDATE.format(path=str(quoted)))
    pandas = run_measured(PANDAS.format(path=str(path)))
    exact = run_measured(EXACT_PATH.format(path=str(path), rows=args.exact_rows))
    print(
        json.dumps(
            {
                "benchmark": "validator_throughput",
                "file": {"path": str(path.relative_to(OUT.parent.parent)), "bytes": path.stat().st_size},
                "validator_one_core": validator,
                "pandas_read_csv_one_core": pandas,
                "validator_every_field_quoted_one_core": quoted_run,
                "exact_path_only_one_core": exact,
                "validator_vs_pandas_speed": round(validator["rows_per_s"] / pandas["rows_per_s"], 2),
                "fast_path_vs_exact_path_speed": round(validator["rows_per_s"] / exact["rows_per_s"], 2),
                "goal": {"rows_per_s": 1_000_000, "peak_rss_mb": 200},
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
