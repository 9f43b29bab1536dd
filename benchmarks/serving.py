"""Serving: the recommendation Lambda's cold import and warm CPU time, the local HTTP API end to end
against the embedded AWS, and publish throughput, each next to its bare baseline in the same run.

1. Cold import of `lambdas.recommend.handler` in fresh interpreters (median of 7): alone (goal <= 150 ms),
   plus numpy and the fold-in module (what the first fold-in adds), plus what the first request adds
   (boto3 and the DynamoDB client, built on the first event).
2. Warm handler CPU time per request (process time, one core), DynamoDB and S3 stubbed at the client
   boundary with canned low-level answers: a precomputed hit (goal p50 <= 1 ms) and a fold-in over
   30,000 items of 64 factors with 10 fresh events (goal p50 <= 5 ms).
3. End to end: a moto server and `recsys serve --endpoint` each in their own process, N requests from
   C concurrent keep-alive clients to GET /recommendations/<user>?k=10; next to bare GetItem calls of the
   same user-list items from C clients to the same moto server (the ratio of the medians).
4. Publish: `recsys.publish.publish` of a model folder into the moto server (items/s), next to a bare
   loop of BatchWriteItem calls writing the same, already-encoded items into another table.

    python benchmarks/serving.py [--requests 10000] [--clients 8] [--publish-users 20000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import OUT, REPO, machine, run_measured

HEAVY = ("numpy", "pandas", "pyarrow", "boto3", "pydantic")
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}
NAMES = {
    "RECSYS_SERVING_TABLE": "bench-serving",
    "RECSYS_ITEMS_TABLE": "bench-items",
    "RECSYS_RECENT_EVENTS_TABLE": "bench-recent-events",
    "RECSYS_ARTIFACTS_BUCKET": "bench-artifacts",
    "RECSYS_INGEST_BUCKET": "bench-ingest",
    "RECSYS_EVENTS_STREAM": "bench-events",
}


def percentiles(values: list[float], scale: float = 1.0) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": round(pick(0.5) * scale, 3),
        "p90": round(pick(0.9) * scale, 3),
        "p99": round(pick(0.99) * scale, 3),
        "max": round(ordered[-1] * scale, 3),
    }


# --- 1. cold import ----------------------------------------------------------------------------------

COLD_CASES = {
    "handler": "import lambdas.recommend.handler",
    "handler + numpy + fold-in module": "import lambdas.recommend.handler, numpy, recsys.serving.foldin",
    "handler + first request's init (boto3, DynamoDB client)": (
        "import os, lambdas.recommend.handler as h; h.runtime()"
    ),
}


def cold_imports(runs: int = 7) -> dict[str, Any]:
    env = {**os.environ, **CREDENTIALS, **NAMES}
    results = {}
    for name, statement in COLD_CASES.items():
        code = (
            "import sys, time; t = time.perf_counter(); c = time.process_time(); "
            f"{statement}; d = time.perf_counter() - t; cpu = time.process_time() - c; "
            f"print(d, cpu, ','.join(m for m in {HEAVY!r} if m in sys.modules))"
        )
        times, cpu, loaded = [], [], ""
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            times.append(float(out[0]))
            cpu.append(float(out[1]))
            loaded = out[2] if len(out) > 2 else ""
        results[name] = {
            "median_ms": round(1000 * statistics.median(times), 1),
            "min_ms": round(1000 * min(times), 1),
            "max_ms": round(1000 * max(times), 1),
            "median_cpu_ms": round(1000 * statistics.median(cpu), 1),  # less sensitive to a busy machine
            "heavy_modules_loaded": loaded.split(",") if loaded else [],
        }
    return results


# --- 2. warm CPU per request, DynamoDB stubbed ----------------------------------------------------------


def url_event(path: str, query: str) -> dict[str, Any]:
    from local_mode.http import function_url_event

    return function_url_event("GET", f"{path}?{query}", [("host", "bench")], b"")


class StubDynamoDB:
    """Canned low-level answers, as the boto3 client returns them (what the Lambda would parse)."""

    def __init__(self, items: list[str], created_ms: int, fresh_events: int) -> None:
        from recsys.serving import table
        from recsys.serving.table import LivePointer

        self.items = {
            "live": table.encode_live(
                LivePointer("v1", None, created_ms, "s3://bench/models/v1/item_vectors.npz", "2026-01-01")
            ),
        }
        scores = [1.0 - n / 200 for n in range(100)]
        for user in ("hit", "fold"):
            self.items[table.user_key("v1", user)] = table.encode_list(
                table.user_key("v1", user), items[:100], scores
            )
        self.events = [
            {"event_key": {"S": f"{created_ms + 1000 + n:013d}#e{n}"}, "item_id": {"S": items[500 + n]}}
            for n in range(fresh_events)
        ]

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        item = self.items.get(Key["pk"]["S"])
        return {"Item": item} if item else {}

    def query(self, ExpressionAttributeValues: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        return {"Items": self.events if ExpressionAttributeValues[":u"]["S"] == "fold" else []}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        [(name, request)] = RequestItems.items()
        found = [
            {"item_id": k["item_id"], "title": {"S": "A title"}, "categories": {"L": [{"S": "Drama"}]}}
            for k in request["Keys"]
        ]
        return {"Responses": {name: found}, "UnprocessedKeys": {}}

    def scan(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}


class StubS3:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_object(self, **_: Any) -> dict[str, Any]:
        import io

        return {"Body": io.BytesIO(self.data)}


def warm_cpu(requests: int = 2000, n_items: int = 30_000, factors: int = 64) -> dict[str, Any]:
    """Runs in a child process pinned to one core (see main)."""
    import io

    import numpy as np

    from lambdas.recommend import handler
    from local_mode.http import LocalContext
    from recsys.serving.runtime import build_runtime
    from recsys.serving.settings import ServingSettings

    rng = np.random.default_rng(0)
    items = [f"item-{n:06d}" for n in range(n_items)]
    npz = io.BytesIO()
    np.savez(
        npz,
        item_ids=np.array(items),
        factors=rng.normal(size=(n_items, factors)).astype(np.float32),
        bias=rng.normal(size=n_items).astype(np.float32),
    )
    created_ms = 1_767_225_600_000
    results: dict[str, Any] = {}
    for case, user, metadata_cache in (
        ("precomputed hit", "hit", True),
        ("precomputed hit, titles not cached (BatchGetItem parsed each time)", "hit", False),
        (f"fold-in over {n_items:,} items x {factors} factors, 10 fresh events", "fold", True),
    ):
        settings = ServingSettings(
            serving_table="s",
            items_table="i",
            recent_events_table="e",
            cache_seconds=3600,
            metadata_cache_size=50_000 if metadata_cache else 0,
        )
        stub = StubDynamoDB(items, created_ms, fresh_events=10)
        runtime = build_runtime(settings, stub, lambda: StubS3(npz.getvalue()), None)
        handler.runtime = lambda runtime=runtime: runtime  # type: ignore[misc]
        event = url_event(f"/recommendations/{user}", "k=10")
        context = LocalContext()
        for _ in range(50):  # warm: caches filled, vectors loaded, code paths imported
            answer = handler.lambda_handler(event, context)
        assert answer["statusCode"] == 200, answer
        source = json.loads(answer["body"])["source"]
        cpu = []
        for _ in range(requests):
            start = time.process_time_ns()
            handler.lambda_handler(event, context)
            cpu.append(time.process_time_ns() - start)
        results[case] = {"source": source, "requests": requests, "cpu_ms": percentiles(cpu, 1e-6)}
    return results


# --- 3 and 4: against a moto server --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def write_model(folder: Path, users: int, n_items: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(
        json.dumps(
            {"model_version": "v1", "model_kind": "fm", "k": 100, "created_at": "2026-01-01T00:00:00Z"}
        )
    )
    (folder / "recommendations").mkdir()
    scores = [float(1.0 - n / 200) for n in range(100)]
    for part in range(0, users, 5000):
        rows = range(part, min(users, part + 5000))
        pq.write_table(
            pa.table(
                {
                    "user_id": [f"user-{u:07d}" for u in rows],
                    "item_ids": [
                        [f"item-{int(i):06d}" for i in rng.choice(n_items, 100, replace=False)] for _ in rows
                    ],
                    "scores": pa.array([scores] * len(rows), pa.list_(pa.float32())),
                    "model_version": ["v1"] * len(rows),
                }
            ),
            folder / "recommendations" / f"part-{part:07d}.parquet",
        )
    pq.write_table(
        pa.table(
            {"item_id": [f"item-{n:06d}" for n in range(200)], "score": [float(200 - n) for n in range(200)]}
        ),
        folder / "popularity.parquet",
    )


def end_to_end(endpoint: str, requests: int, clients: int, users: int) -> dict[str, Any]:
    """`recsys serve --endpoint` in its own process; C keep-alive clients; then bare GetItem."""
    import boto3

    port = free_port()
    env = {**os.environ, **CREDENTIALS, **NAMES}
    log = OUT / "serving-serve.log"  # the server's stderr: tracebacks of any error answer
    OUT.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "recsys.cli.main", "serve", "--endpoint", endpoint, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        wait_for_port(port)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            rng = random.Random(n)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine, bad = [], []
            for _ in range(requests // clients):
                path = f"/recommendations/user-{rng.randrange(users):07d}?k=10"
                start = time.perf_counter()
                try:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    body = response.read()
                    if response.status != 200:
                        bad.append(f"{response.status} {body[:100]!r}")
                except OSError as exc:
                    bad.append(repr(exc))
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                mine.append(time.perf_counter() - start)
            connection.close()
            with lock:
                latencies.extend(mine)
                errors.extend(bad)

        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # first request builds the clients
        for _ in range(20):
            warm.request("GET", "/recommendations/user-0000000?k=10")
            warm.getresponse().read()
        warm.close()
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        api_seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)

    bare: list[float] = []

    def bare_client(n: int) -> None:
        rng = random.Random(n)
        dynamodb = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="b",
            aws_secret_access_key="b",
        )
        mine = []
        for _ in range(requests // clients):
            key = {"pk": {"S": f"v1#u#user-{rng.randrange(users):07d}"}}
            start = time.perf_counter()
            dynamodb.get_item(TableName=NAMES["RECSYS_SERVING_TABLE"], Key=key)
            mine.append(time.perf_counter() - start)
        with lock:
            bare.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=bare_client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bare_seconds = time.perf_counter() - started
    api = percentiles(latencies, 1000)
    get = percentiles(bare, 1000)
    return {
        "requests": len(latencies),
        "clients": clients,
        "errors": len(errors),
        "error_samples": errors[:3],
        "api_ms": api,
        "api_requests_per_s": round(len(latencies) / api_seconds),
        "bare_get_item_ms": get,
        "bare_get_item_per_s": round(len(bare) / bare_seconds),
        "p50_ratio_api_over_get_item": round(api["p50"] / get["p50"], 2),
    }


def publish_throughput(endpoint: str, folder: Path, users: int) -> dict[str, Any]:
    import boto3

    from recsys.publish.publish import publish
    from recsys.publish.settings import PublishSettings
    from recsys.serving import model_files, table

    kw = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "b",
        "aws_secret_access_key": "b",
    }
    dynamodb, s3 = boto3.client("dynamodb", **kw), boto3.client("s3", **kw)
    dynamodb.create_table(
        TableName="bare",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    encoded = [
        table.encode_list(table.user_key("v1", user), ids, scores)
        for user, ids, scores in model_files.iter_lists(folder, model_files.RECOMMENDATIONS, "v1")
    ]
    start = time.perf_counter()
    for offset in range(0, len(encoded), 25):
        pending = [{"PutRequest": {"Item": i}} for i in encoded[offset : offset + 25]]
        while pending:
            response = dynamodb.batch_write_item(RequestItems={"bare": pending})
            pending = response.get("UnprocessedItems", {}).get("bare", [])
    bare_seconds = time.perf_counter() - start

    class NullDynamoDB:
        """Answers every call at once, writes nothing: what publish itself costs (read, check, encode)."""

        def __getattr__(self, name: str) -> Any:
            return lambda **_: {}

    null_settings = PublishSettings(serving_table=NAMES["RECSYS_SERVING_TABLE"], artifacts_bucket="")
    client_side = publish(str(folder), NullDynamoDB(), s3, null_settings)

    settings = PublishSettings(
        serving_table=NAMES["RECSYS_SERVING_TABLE"], artifacts_bucket=NAMES["RECSYS_ARTIFACTS_BUCKET"]
    )
    result = publish(str(folder), dynamodb, s3, settings)
    items = result.items_written
    return {
        "users": users,
        "items_per_user_list": 100,
        "publish_seconds": result.seconds,
        "publish_items_per_s": round(items / result.seconds),
        "publish_concurrency": settings.concurrency,
        "bare_loop_seconds": round(bare_seconds, 2),
        "bare_loop_items_per_s": round(len(encoded) / bare_seconds),
        "ratio_publish_over_bare": round((items / result.seconds) / (len(encoded) / bare_seconds), 2),
        "publish_client_side_items_per_s": round(client_side.items_written / client_side.seconds),
        "note": "publish includes reading and checking the Parquet, encoding, the version record and the "
        "switch; client-side: the same publish with a DynamoDB client that accepts every write at once",
    }


def against_moto(requests: int, clients: int, users: int) -> dict[str, Any]:
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        sys.path.insert(0, str(REPO))
        os.environ.update({**CREDENTIALS, **NAMES})
        from local_mode.aws import clients as aws_clients
        from local_mode.aws import ensure_serving_resources, environment

        ensure_serving_resources(aws_clients(endpoint), environment(endpoint))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            write_model(folder, users, n_items=30_000)
            published = publish_throughput(endpoint, folder, users)
        served = end_to_end(endpoint, requests, clients, users)
    finally:
        moto.terminate()
        moto.wait()
    return {"publish": published, "local_http_end_to_end": served}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--publish-users", type=int, default=20_000)
    parser.add_argument("--warm-requests", type=int, default=2000)
    parser.add_argument("--skip-moto", action="store_true", help="only the cold import and warm CPU figures")
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "serving", "load_average_at_start": os.getloadavg()}
    report["cold_import"] = cold_imports()
    report["goal_cold_import_ms"] = 150
    report["warm_cpu_one_core"] = run_measured(
        "import sys; sys.path.insert(0, 'benchmarks'); import serving\n"
        f"result = serving.warm_cpu({args.warm_requests})"
    )
    report["goal_warm_cpu_p50_ms"] = {"precomputed hit": 1, "fold-in over 30,000 items": 5}
    if not args.skip_moto:
        report.update(against_moto(args.requests, args.clients, args.publish_users))
    report["machine"] = machine()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
