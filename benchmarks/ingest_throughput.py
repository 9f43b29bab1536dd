"""Ingest handler cost against the bare validator, and the ingest Lambda's cold-start import time.

1. A 1M-row transactions CSV (the first million rows of the ML-20M-shaped synth file, made with
   `recsys synth` when missing) is uploaded to an embedded AWS (moto server on 127.0.0.1, its own process).
   In a fresh process: `recsys.ingest.process_object` on it (stream from S3, validate, write curated
   Parquet by multipart upload, manifest item); in another: the bare validator on the same file from
   disk. Wall time, rows/s, peak RSS, the curated file's size, the overhead ratio (goal ≤ 1.5×), and the
   load average around the runs (wall times only compare on a quiet machine).
2. Cold start: `import lambdas.ingest.handler` and `import lambdas.events.handler` in fresh interpreters
   (median of 7 each; goal < 300 ms), and which heavy modules each import loads.

    python benchmarks/ingest_throughput.py [--rows 1000000]
    python benchmarks/ingest_throughput.py --cold-start-only
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import OUT, REPO, machine, run_measured

# Both children import pandas first: pyarrow imports it lazily on its first array conversion (~0.25 s here),
# a one-off cost of a fresh process (a Lambda pays it on its first object, cold start) that would otherwise
# be charged to whichever file comes first. Each child then handles the file twice: "first" is a fresh
# container's first file, "warm" (the second) the steady state the overhead ratio compares.
WARM_UP = "import pandas, numpy, pyarrow\npyarrow.array(numpy.arange(3))\n"

INGEST = (
    WARM_UP
    + """
import boto3
from recsys.ingest.process import process_object
from recsys.ingest.settings import IngestSettings
kw = dict(endpoint_url={endpoint!r}, region_name="us-east-1",
          aws_access_key_id="x", aws_secret_access_key="x")
s3 = boto3.client("s3", **kw)
table = boto3.resource("dynamodb", **kw).Table("manifest")
head = s3.head_object(Bucket="ingest", Key="transactions/bench.csv")
settings = IngestSettings(ingest_bucket="ingest", curated_bucket="curated", manifest_table="manifest")
runs = []
for _ in range(2):
    start = time.perf_counter()
    done = process_object(s3, table, settings, "ingest", "transactions/bench.csv", head.get("VersionId"),
                          head["ETag"], head["ContentLength"])
    runs.append(time.perf_counter() - start)
curated = s3.head_object(Bucket="curated", Key=done.curated_key)["ContentLength"]
result = {{"status": str(done.status), "rows": done.rows_valid, "first_seconds": round(runs[0], 3),
          "seconds": round(runs[1], 3), "rows_per_s": round(done.rows_valid / runs[1]),
          "curated_bytes": curated}}
"""
)

VALIDATE = (
    WARM_UP
    + """
from recsys.validation import validate_file
runs = []
for _ in range(2):
    start = time.perf_counter()
    report = validate_file({path!r}, "transactions")
    runs.append(time.perf_counter() - start)
result = {{"rows": report.rows_valid, "first_seconds": round(runs[0], 3), "seconds": round(runs[1], 3),
          "rows_per_s": round(report.rows_valid / runs[1])}}
"""
)


def sample_file(rows: int) -> Path:
    path = OUT / f"transactions-{rows}.csv"
    if path.exists():
        return path
    source = OUT / "synth-ml20m" / "transactions.csv"
    if not source.exists():
        subprocess.run(
            [sys.executable, "-m", "recsys.cli.main", "synth", "--out", str(source.parent)], check=True
        )
    with open(source, "rb") as full, open(path, "wb") as head:
        for _, line in zip(range(rows + 1), full, strict=False):
            head.write(line)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup_aws(endpoint: str, path: Path) -> None:
    import boto3

    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    s3 = boto3.client("s3", **kw)
    for bucket in ("ingest", "curated"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket="ingest", VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb", **kw).create_table(
        TableName="manifest",
        KeySchema=[
            {"AttributeName": "object_key", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "object_key", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.upload_file(str(path), "ingest", "transactions/bench.csv")


HANDLERS = ("lambdas.ingest.handler", "lambdas.events.handler")
HEAVY = ("pandas", "pyarrow", "numpy", "boto3", "aws_lambda_powertools")


def cold_start(module: str = "lambdas.ingest.handler", runs: int = 7) -> dict[str, object]:
    code = (
        f"import sys, time; t = time.perf_counter(); import {module}; d = time.perf_counter() - t; "
        f"print(d, ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    times, loaded = [], ""
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(out[0]))
        loaded = out[1] if len(out) > 1 else ""
    return {
        "median_ms": round(1000 * statistics.median(times)),
        "max_ms": round(1000 * max(times)),
        "runs": runs,
        "heavy_modules_loaded": loaded.split(",") if loaded else [],
    }


def cold_starts() -> dict[str, object]:
    return {module: cold_start(module) for module in HANDLERS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cold-start-only", action="store_true", help="only the handlers' import times")
    args = parser.parse_args()
    if args.cold_start_only:
        report = {"benchmark": "ingest_throughput.cold_start", "handler_cold_import": cold_starts()}
        print(json.dumps({**report, "goal_cold_import_ms": 300, "machine": machine()}, indent=2))
        return
    path = sample_file(args.rows)
    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews wall times
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        setup_aws(endpoint, path)
        ingest = run_measured(INGEST.format(endpoint=endpoint))
        # A Lambda above ~1,769 MB has a second vCPU, which the curated writer's thread uses.
        ingest_two = run_measured(INGEST.format(endpoint=endpoint), one_core=False)
    finally:
        server.terminate()
        server.wait()
    validator = run_measured(VALIDATE.format(path=str(path)))
    print(
        json.dumps(
            {
                "benchmark": "ingest_throughput",
                "file": {"rows": args.rows, "bytes": path.stat().st_size},
                "ingest_process_object_one_core": ingest,
                "ingest_process_object_two_cores": ingest_two,
                "bare_validator_one_core": validator,
                "overhead_ratio": round(ingest["seconds"] / validator["seconds"], 2),
                "overhead_ratio_two_cores": round(ingest_two["seconds"] / validator["seconds"], 2),
                "goal_overhead_ratio": 1.5,
                "handler_cold_import": cold_starts(),
                "goal_cold_import_ms": 300,
                "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
