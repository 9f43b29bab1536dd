"""`recsys validate`: check a catalog or transactions CSV against the contract.

Exit codes: 0 every row valid, 1 some rows invalid, 2 the file is unusable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from recsys.csv_contract import Kind


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a catalog or transactions CSV against the contract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kind", required=True, choices=[k.value for k in Kind], help="what the file holds")
    parser.add_argument("file", help="the CSV file to check")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    parser.add_argument(
        "--max-errors", type=int, default=1000, metavar="N", help="errors listed at most (default 1000)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from recsys.validation import validate_file

    size = os.path.getsize(args.file) if os.path.isfile(args.file) else 0
    with tqdm(
        total=size, unit="B", unit_scale=True, desc="validating", disable=not sys.stderr.isatty(), leave=False
    ) as bar:
        report = validate_file(
            args.file,
            args.kind,
            max_errors=max(args.max_errors, 0),
            on_progress=lambda n: bar.update(n - bar.n),
        )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(report.to_text())
    return report.exit_code
