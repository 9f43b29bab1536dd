"""`recsys synth`: write a synthetic catalog and transactions in the canonical CSV columns.

The defaults have the shape of MovieLens 20M, which may not be redistributed, so that the pipeline can
be exercised and measured at that scale on any machine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

# The shape of MovieLens 20M, repeated from recsys.synth (a test keeps them equal) so that building the
# parser does not import numpy and pyarrow: `recsys --help` stays instant.
ML20M_USERS = 138_493
ML20M_ITEMS = 26_744
ML20M_INTERACTIONS = 20_000_263


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type for whole numbers >= minimum ("20_000_263" and "20,000,263" are accepted)."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


_positive = _whole_number(1)
_seed = _whole_number(0)


def register(subparsers: Any) -> None:
    """Add the `synth` parser (defaults shaped like MovieLens 20M)."""
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic catalog.csv and transactions.csv (MovieLens 20M shape by default)",
        description=(
            "Write DIR/catalog.csv (item_id,title,categories) and DIR/transactions.csv "
            "(user_id,item_id,timestamp,rating): distinct user-item pairs, lognormal user activity, "
            "Zipf-like item popularity and latent genre clusters that a real model can learn. "
            "The same arguments and seed always give the same files."
        ),
    )
    parser.add_argument("--users", type=_positive, default=ML20M_USERS, help="number of users (%(default)s)")
    parser.add_argument("--items", type=_positive, default=ML20M_ITEMS, help="number of items (%(default)s)")
    parser.add_argument(
        "--interactions",
        type=_positive,
        default=ML20M_INTERACTIONS,
        help="exact number of transactions rows (%(default)s)",
    )
    parser.add_argument("--seed", type=_seed, default=0, help="random seed (%(default)s)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar on stderr")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Generate the files; exit 2 with a plain message when the request is impossible."""
    from pathlib import Path

    from recsys.synth import SynthConfig, SynthError, synthesize

    config = SynthConfig(users=args.users, items=args.items, interactions=args.interactions, seed=args.seed)
    out = Path(args.out)
    try:
        config.check()
        if out.exists() and not out.is_dir():
            raise SynthError(f"--out {out} exists and is not a directory")
    except SynthError as error:
        print(f"recsys synth: error: {error}", file=sys.stderr)
        return 2
    result = synthesize(out, config, progress=not args.no_progress)
    print(
        f"wrote {result.interactions:,} interactions of {result.users:,} users on {result.items:,} items "
        f"({result.bytes_written / 1e6:,.1f} MB): {result.transactions_path}, {result.catalog_path}"
    )
    return 0
