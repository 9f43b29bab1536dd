"""Synthetic data at MovieLens 20M scale: wall time and peak memory of `recsys synth` with its defaults.

Claim: the generator writes 20,000,263 distinct user-item rows (138,493 users, 26,744 items) in bounded
memory (peak RSS well under 1 GB) because it works in blocks of users. It runs in a fresh interpreter
so that the peak RSS is its own. With --load, the files are then read back with `load_interactions`
(validator included) in another fresh interpreter. Prints one JSON object.

    python benchmarks/synth_ml20m.py [--users N --items M --interactions K --seed S] [--keep DIR] [--load]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, run_measured

SYNTH = """
from recsys.synth import SynthConfig, synthesize
start = time.perf_counter()
done = synthesize({out!r}, SynthConfig(users={users}, items={items}, interactions={k}, seed={seed}))
result = {{"wall_s": round(time.perf_counter() - start, 2), "rows": done.interactions,
          "bytes_written": done.bytes_written}}
"""

LOAD = """
from recsys.loaders import load_interactions
start = time.perf_counter()
data = load_interactions({out!r})
result = {{"wall_s": round(time.perf_counter() - start, 2), "rows": len(data), "users": data.n_users,
          "items": data.n_items}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--interactions", type=int, default=20_000_263)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write here and keep the files (default: a temp dir)")
    parser.add_argument("--load", action="store_true", help="also time load_interactions on the output")
    args = parser.parse_args()

    out = args.keep or Path(tempfile.mkdtemp(prefix="synth_ml20m_"))
    try:
        started = time.perf_counter()
        params = {"users": args.users, "items": args.items, "k": args.interactions, "seed": args.seed}
        synth = run_measured(SYNTH.format(out=str(out), **params), one_core=False)
        report: dict[str, Any] = {
            "benchmark": "synth_ml20m",
            "users": args.users,
            "items": args.items,
            "interactions": args.interactions,
            "seed": args.seed,
            "wall_s": synth["wall_s"],
            "process_wall_s": round(time.perf_counter() - started, 2),  # with interpreter start-up
            "peak_rss_mb": synth["peak_rss_mb"],
            "rows": synth["rows"],
            "bytes_written": synth["bytes_written"],
            "rows_per_s": round(synth["rows"] / synth["wall_s"]),
        }
        if args.load:
            report["load"] = run_measured(LOAD.format(out=str(out)), one_core=False)
        report["machine"] = {**machine(), "pinned_to_one_core": False}
        print(json.dumps(report, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
