"""`recsys demo` on the bundled sample: wall time per stage and in total, from data to the first served
request (goal: at most 3 minutes on 2 cores, installation excluded), and peak RSS.

Runs `recsys demo --port 0` in a fresh RECSYS_HOME as a child process, reads its stdout until it prints
the `curl` example, GETs that URL (the first served request), then stops it with SIGINT (Ctrl-C). Stage
times come from the run's record (RECSYS_HOME/runs/<id>/run.json). Peak RSS: the largest sum of the
resident sets of the demo process and its children (Spark's JVM), sampled every 0.2 s.

    python benchmarks/demo.py [--keep] [--no-autoencoder] [--catalog CSV --transactions CSV] [demo flags]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import OUT, REPO, machine


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def run_demo(home: Path, flags: list[str]) -> dict[str, Any]:
    """`recsys demo --port 0`: wait for its "serving" line, GET the user of its curl example, stop it."""
    env = {**os.environ, "RECSYS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsys.cli.main", "demo", "--port", "0", *flags],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines: list[str] = []
    served: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = re.search(r"curl '(http://127\.0\.0\.1:\d+/recommendations/[^']+)'", line)
            if match:
                with urllib.request.urlopen(match.group(1), timeout=60) as reply:
                    body = json.loads(reply.read())
                    served = {
                        "status": reply.status,
                        "items": len(body.get("items", [])),
                        "source": body.get("source"),
                        "model_version": body.get("model_version"),
                    }
                served["seconds_from_start"] = round(time.perf_counter() - started, 2)
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        stop.set()
        sampler.join()
    if not served:
        raise RuntimeError("recsys demo served nothing:\n" + "\n".join(lines[-40:]))
    record = json.loads(sorted((home / "runs").glob("*/run.json"))[-1].read_text(encoding="utf-8"))
    return {"served": served, "record": record, "peak_rss_bytes": peak, "stdout": lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the RECSYS_HOME used")
    args, flags = parser.parse_known_args()
    home = Path(tempfile.mkdtemp(prefix="recsys-demo-bench-"))
    demo = run_demo(home, flags)
    record = demo["record"]
    result = {
        "benchmark": "demo",
        "flags": flags,
        "machine": machine(),
        "status": record["status"],
        "model_version": record.get("model_version"),
        "gate": record.get("gate", {}).get("reason"),
        "stage_seconds": record["seconds"],
        "data_to_first_request_seconds": demo["served"]["seconds_from_start"],
        "first_request": demo["served"],
        "peak_rss_mb": round(demo["peak_rss_bytes"] / 2**20, 1),
        "precision_at_10": record.get("stages", {}).get("evaluate", {}).get("models", {}),
        "recsys_home": str(home) if args.keep else None,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "demo.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
