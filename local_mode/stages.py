"""The pipeline's stages on one machine, in the state machine's order, with the runtime code of each:

ingest (the ingest Lambda's handler, fed SQS-wrapped S3 events) → preprocess (the Glue job's
`run_preprocess` on a local SparkSession, reading the curated ingest Parquet) → fm (`train_fm` local
backend, then the batch top-k) → autoencoder (the DSSTNE job's generate/train/predict/export on the CPU,
or a local GPU) → evaluate (`recsys.model_eval`) → gate (`recsys.gate`) → publish (`recsys.publish`
into the embedded AWS, with the swap of the live pointer).

Each stage takes the demo's `Context` and returns a small dict for the run record. They are looked up
by name in `STAGES`, so a test can replace one (to make it fail) without a hook in the code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from local_mode.aws import REGION, EmbeddedAws, clients, ensure_serving_resources, environment
from local_mode.home import Home
from local_mode.http import LocalContext
from recsys import contracts

# Names of the ingest resources in the embedded AWS (the serving ones are local_mode.aws.LOCAL_NAMES).
INGEST_NAMES = {
    contracts.CURATED_BUCKET_ENV: "recsys-curated",
    contracts.INGEST_MANIFEST_TABLE_ENV: "recsys-ingest-manifest",
    contracts.INGEST_IDEMPOTENCY_TABLE_ENV: "recsys-ingest-idempotency",
}
# Quiet Lambda logs and metrics on the terminal (they are JSON lines for CloudWatch).
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
KS = (1, 5, 10, 20)
AUTOENCODER_BATCH = 64  # the tuned preset's batch (training/dsstne/recommender.py)


class StageError(RuntimeError):
    """A stage could not do its work; the message is the run's failure reason."""


@dataclass
class Options:
    catalog: list[Path]
    transactions: list[Path]
    fm_epochs: int = 10
    autoencoder: bool = True
    ae_epochs: int = 10
    k: int = 10
    metric: str = "precision@10"
    margin: float = 0.10
    tolerance: float = 0.02
    driver_memory: str = "2g"


@dataclass
class Context:
    home: Home
    options: Options
    run_id: str
    aws: EmbeddedAws
    env: dict[str, str]
    log: Callable[[str], None] = print
    # filled in by the stages
    uploads: list[dict[str, Any]] = field(default_factory=list)
    run_root: Path | None = None
    candidates: dict[str, Path] = field(default_factory=dict)  # model name → publish-format folder
    extras: dict[str, Any] = field(default_factory=dict)  # loss curves and the like, for the report
    evaluation: dict[str, Any] = field(default_factory=dict)
    decision: Any = None
    published: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.home.run_dir(self.run_id)


# ------------------------------------------------------------------------------------------ embedded AWS


def start_aws(port: int = 0) -> tuple[EmbeddedAws, dict[str, str]]:
    """The moto server, the environment that points the runtime at it, and the stack's resources."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    aws = EmbeddedAws(port)
    env = environment(aws.endpoint)
    for name, value in {**INGEST_NAMES, **QUIET}.items():
        env.setdefault(name, value)
    os.environ.update(env)  # handlers build their clients from the environment, as in AWS
    from lambdas.ingest import handler

    handler.runtime.cache_clear()  # clients of an earlier embedded AWS in this process
    c = clients(aws.endpoint)
    ensure_serving_resources(c, env)
    # In one process every embedded AWS shares moto's state: create only what is missing.
    if env[contracts.CURATED_BUCKET_ENV] not in {b["Name"] for b in c.s3.list_buckets().get("Buckets", [])}:
        c.s3.create_bucket(Bucket=env[contracts.CURATED_BUCKET_ENV])
    for bucket in (env[contracts.INGEST_BUCKET_ENV], env[contracts.CURATED_BUCKET_ENV]):
        c.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    tables = {
        env[contracts.INGEST_MANIFEST_TABLE_ENV]: [
            (contracts.MANIFEST_PARTITION_KEY, "HASH"),
            (contracts.MANIFEST_SORT_KEY, "RANGE"),
        ],
        env[contracts.INGEST_IDEMPOTENCY_TABLE_ENV]: [(contracts.IDEMPOTENCY_PARTITION_KEY, "HASH")],
    }
    existing = set(c.dynamodb.list_tables().get("TableNames", []))
    for name, keys in tables.items():
        if name in existing:
            continue
        c.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    return aws, env


# ------------------------------------------------------------------------------------------------ ingest


@dataclass
class _IngestContext(LocalContext):
    function_name: str = "recsys-ingest-local"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000  # the ingest Lambda's 15 minutes


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def s3_event(bucket: str, key: str, put: dict[str, Any], size: int) -> dict[str, Any]:
    """The SQS event that delivers S3's ObjectCreated notification for one upload."""
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": put["ETag"].strip('"'),
                        "versionId": put.get("VersionId"),
                    },
                },
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": hashlib.sha1(f"{key}{put.get('VersionId')}".encode()).hexdigest(),
                "receiptHandle": "local",
                "body": json.dumps(notification),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:recsys-ingest",
                "awsRegion": REGION,
            }
        ]
    }


def deliver(event: dict[str, Any]) -> list[str]:
    """Run the ingest Lambda's handler on one SQS event; the message ids it reports as failed."""
    from lambdas.ingest import handler

    with contextlib.redirect_stdout(io.StringIO()):  # embedded-metric JSON lines
        response = handler.lambda_handler(event, _IngestContext())
    return [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]


def manifest_item(env: dict[str, str], bucket: str, key: str) -> dict[str, Any]:
    c = clients(env["AWS_ENDPOINT_URL"])
    items = c.dynamodb.query(
        TableName=env[contracts.INGEST_MANIFEST_TABLE_ENV],
        KeyConditionExpression="#k = :k",
        ExpressionAttributeNames={"#k": contracts.MANIFEST_PARTITION_KEY},
        ExpressionAttributeValues={":k": {"S": f"{bucket}/{key}"}},
    )["Items"]
    return {k: next(iter(v.values())) for k, v in items[-1].items()} if items else {}


def mirror_curated(env: dict[str, str], target: Path) -> int:
    """Copy the curated ingest Parquet from the embedded AWS to `target` (files already there are kept)."""
    c = clients(env["AWS_ENDPOINT_URL"])
    bucket = env[contracts.CURATED_BUCKET_ENV]
    copied = 0
    for page in c.s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=contracts.INGEST_CURATED_PREFIX
    ):
        for obj in page.get("Contents", []):
            path = target / obj["Key"].removeprefix(contracts.INGEST_CURATED_PREFIX)
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            c.s3.download_file(bucket, obj["Key"], str(tmp))
            tmp.replace(path)
            copied += 1
    return copied


def ingest(ctx: Context) -> dict[str, Any]:
    """Upload each file not ingested before (by content) and deliver its S3 event to the ingest Lambda."""
    ledger = ctx.home.ledger()
    c = clients(ctx.aws.endpoint)
    bucket = ctx.env[contracts.INGEST_BUCKET_ENV]
    new, skipped = [], []
    files = [("catalog", p) for p in ctx.options.catalog] + [
        ("transactions", p) for p in ctx.options.transactions
    ]
    for kind, path in files:
        digest = sha256(path)
        if digest in ledger or any(digest == d for d, _ in new):
            skipped.append(path.name)
            continue
        prefix = contracts.CATALOG_PREFIX if kind == "catalog" else contracts.TRANSACTIONS_PREFIX
        key = f"{prefix}{digest[:12]}-{path.name}"
        with open(path, "rb") as body:
            put = c.s3.put_object(Bucket=bucket, Key=key, Body=body)
        failed = deliver(s3_event(bucket, key, put, path.stat().st_size))
        outcome = manifest_item(ctx.env, bucket, key)
        if failed or not outcome:
            raise StageError(f"ingest of {path} failed (the Lambda reported the message as failed)")
        entry = {
            "file": str(path),
            "kind": kind,
            "key": key,
            "status": outcome.get("status"),
            "rows_accepted": int(outcome.get("rows_valid", 0) or 0),
            "rows_quarantined": int(outcome.get("rows_quarantined", 0) or 0),
        }
        if entry["status"] == "REJECTED":
            ctx.log(f"  {path.name}: rejected whole ({outcome.get('reason', 'see the quarantine report')})")
        new.append((digest, entry))
    mirror_curated(ctx.env, ctx.home.curated)
    for digest, entry in new:  # recorded once its curated Parquet is in RECSYS_HOME
        ctx.home.record_ingested(digest, entry)
        ctx.uploads.append(entry)
    return {
        "new_files": [e["file"] for _, e in new],
        "already_ingested": skipped,
        "rows_accepted": sum(e["rows_accepted"] for _, e in new),
        "rows_quarantined": sum(e["rows_quarantined"] for _, e in new),
    }


def restore_items(home: Home, env: dict[str, str]) -> int:
    """Fill an empty items table (a fresh embedded AWS) from the curated catalog Parquet in RECSYS_HOME,
    with the ingest Lambda's own catalog hook, so served items have their titles again."""
    import pyarrow.parquet as pq

    from recsys.csv_contract import Kind
    from recsys.ingest.events import ObjectRef
    from recsys.ingest.items import catalog_items_hook

    c = clients(env["AWS_ENDPOINT_URL"])
    table = env[contracts.ITEMS_TABLE_ENV]
    if c.dynamodb.scan(TableName=table, Limit=1).get("Items"):
        return 0
    factory = catalog_items_hook(c.dynamodb, table)
    rows = 0
    for path in sorted((home.curated / f"{contracts.INGEST_KIND_PARTITION}=catalog").rglob("*.parquet")):
        hook = factory(Kind.CATALOG, ObjectRef(env[contracts.INGEST_BUCKET_ENV], path.name), "restored")
        if hook is None:
            continue
        data = pq.read_table(path)
        hook.add(data)
        hook.close(True)
        rows += data.num_rows
    return rows


# -------------------------------------------------------------------------------------------- preprocess


def preprocess(ctx: Context) -> dict[str, Any]:
    from glue.cli import local_session
    from glue.pipeline import run_preprocess
    from glue.readers import read_ingest

    spark, created = local_session(ctx.options.driver_memory)
    try:
        inputs = read_ingest(spark, str(ctx.home.curated))
        result = run_preprocess(spark, inputs, str(ctx.home.preprocess), ctx.run_id)
    finally:
        if created:
            spark.stop()
    ctx.run_root = Path(result.layout.root)
    counts = result.manifest["counts"]
    return {
        "run": str(ctx.run_root),
        "users": counts["users"],
        "items": counts["items"],
        "interactions": counts["interactions"],
        "train": counts["train"],
        "test": counts["test"],
        "new_users": counts.get("new_users"),
        "previous_run": result.stats["previous_run"].get("root"),
    }


def _run_root(ctx: Context) -> Path:
    if ctx.run_root is None:
        raise StageError("no preprocessing run (the preprocess stage did not finish)")
    return ctx.run_root


# -------------------------------------------------------------------------------------------------- FM


def fm(ctx: Context) -> dict[str, Any]:
    from training.fm.api import train_fm
    from training.fm.hyperparameters import FmHyperparameters
    from training.fm.recommend import RecommendSettings, recommend
    from training.fm.settings import FmTrainSettings

    run = _run_root(ctx)
    manifest = json.loads((run / contracts.RUN_MANIFEST_FILE).read_text(encoding="utf-8"))
    hp = FmHyperparameters(feature_dim=int(manifest["feature_dim"]), epochs=ctx.options.fm_epochs)
    out = ctx.run_dir / "training" / "fm"
    trained = train_fm(FmTrainSettings(run=str(run), output=str(out), hyperparameters=hp, progress=False))
    folder = ctx.run_dir / "models" / "fm"
    shutil.rmtree(folder, ignore_errors=True)
    result = recommend(
        RecommendSettings(
            model=Path(trained.model_path), run=run, out=folder, k=ctx.options.k * 2, progress=False
        )
    )
    ctx.candidates["fm"] = folder
    report = json.loads((out / contracts.FM_METRICS_FILE).read_text(encoding="utf-8"))
    ctx.extras["fm_history"] = report.get("history", [])
    return {"model_version": result.model_version, "epochs": hp.epochs, "metrics": trained.metrics}


# ------------------------------------------------------------------------------------------ autoencoder


def _concat(parts_dir: Path, target: Path) -> None:
    with open(target, "wb") as out:
        for part in sorted(
            p for p in parts_dir.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
        ):
            data = part.read_bytes()
            out.write(data)
            if data and not data.endswith(b"\n"):
                out.write(b"\n")


def autoencoder(ctx: Context) -> dict[str, Any]:
    from training.dsstne.job import BUILTIN_CONFIG, LocalInputs, run_dsstne
    from training.dsstne.job_settings import JobSettings, S3Location

    run = _run_root(ctx)
    work = ctx.run_dir / "training" / "autoencoder"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = work / contracts.DSSTNE_CONFIG_FILE
    shutil.copyfile(BUILTIN_CONFIG, config)  # the Batch job's built-in network, trained the same way
    texts = {}
    for name, folder in (
        ("input.txt", contracts.RUN_DSSTNE_INPUT_DIR),
        ("output.txt", contracts.RUN_DSSTNE_OUTPUT_DIR),
    ):
        texts[name] = work / name
        _concat(run / folder, texts[name])
    nowhere = S3Location("local", f"dsstne/{ctx.run_id}/")
    settings = JobSettings(
        run_id=ctx.run_id,
        input=nowhere,
        output=nowhere,
        config=nowhere.child(contracts.DSSTNE_CONFIG_FILE),
        epochs=ctx.options.ae_epochs,
        batch=AUTOENCODER_BATCH,
        top_k=ctx.options.k * 2,
    )
    seconds: dict[str, float] = {}
    (work / "out").mkdir()
    log = io.StringIO()
    with contextlib.redirect_stderr(log):  # DSSTNE-style epoch lines: kept for the loss curve
        _, metrics = run_dsstne(
            LocalInputs(
                config, texts["input.txt"], texts["output.txt"], encoded_names=True, builtin_config=True
            ),
            work / "out",
            settings,
            seconds,
        )
    folder = ctx.run_dir / "models" / "autoencoder"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(work / "out" / contracts.DSSTNE_MODEL_DIR.rstrip("/"), folder)
    ctx.candidates["autoencoder"] = folder
    ctx.extras["autoencoder_seconds"] = seconds
    ctx.extras["autoencoder_history"] = [
        {"epoch": float(m.group(1)), "train_loss": float(m.group(2))}
        for m in re.finditer(r"NNNetwork::Train: Epoch (\d+), average error (\S+),", log.getvalue())
    ]
    return {
        "model_version": metrics.get("model_version"),
        "epochs": settings.epochs,
        "final_error": metrics.get("final_error"),
        "seconds": seconds,
    }


# -------------------------------------------------------------------------------------- evaluate, gate


def evaluate(ctx: Context) -> dict[str, Any]:
    from recsys.model_eval import OutputsError, evaluate_outputs_at, evaluate_popularity_at

    run = _run_root(ctx)
    k = ctx.options.k
    ks = sorted({*KS, k})
    curves: dict[str, dict[int, dict[str, float]]] = {"popularity": evaluate_popularity_at(run, ks)}
    failed: dict[str, str] = {}
    for name, folder in ctx.candidates.items():
        try:
            curves[name] = evaluate_outputs_at(folder, run, ks)
        except OutputsError as exc:
            failed[name] = str(exc)
    _write_popularity_model(ctx, run)
    live = ctx.home.live()
    live_metrics = None
    if live:
        try:
            live_metrics = evaluate_outputs_at(live["folder"], run, (k,))[k]
        except (OutputsError, KeyError) as exc:
            ctx.log(f"  the live model {live.get('version')} could not be scored on this run: {exc}")
    ctx.evaluation = {
        "k": k,
        "metrics": {name: at[k] for name, at in curves.items()},
        "curves": {name: {str(kk): v for kk, v in at.items()} for name, at in curves.items()},
        "failed": failed,
        "live": live_metrics,
    }
    return {
        "models": {n: round(m[f"precision@{k}"], 4) for n, m in ctx.evaluation["metrics"].items()},
        "failed": failed,
    }


def _write_popularity_model(ctx: Context, run: Path) -> None:
    """The popularity baseline in the publish format (each user's train items left out): what is served
    while no trained model has passed the gate."""
    import numpy as np
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from recsys import model_outputs as mo

    pop = pq.read_table(run / contracts.RUN_POPULARITY_DIR, columns=["item_id", "train_count"])
    ids = np.array([str(i) for i in pop.column("item_id").to_pylist()])
    counts = np.asarray(pop.column("train_count").to_numpy(zero_copy_only=False), dtype=np.float64)
    order = np.argsort(-counts, kind="stable")
    train = ds.dataset(str(run / contracts.RUN_TRAIN_DIR), format="parquet").to_table(
        columns=["user_id", "item_id"]
    )
    seen: dict[str, set[str]] = {}
    for user, item in zip(train.column(0).to_pylist(), train.column(1).to_pylist(), strict=True):
        seen.setdefault(str(user), set()).add(str(item))
    k = min(2 * ctx.options.k, contracts.MAX_TOP_K)
    head = order[: k + max((len(v) for v in seen.values()), default=0)]
    users = sorted(seen)
    index = np.full((len(users), k), -1, np.int64)
    for row, user in enumerate(users):
        picked = [i for i in head if ids[i] not in seen[user]][:k]
        index[row, : len(picked)] = picked
    scores = np.where(index >= 0, counts[np.maximum(index, 0)], 0.0).astype(np.float32)
    folder = ctx.run_dir / "models" / "popularity"
    shutil.rmtree(folder, ignore_errors=True)
    version = f"popularity-{ctx.run_id}"
    with mo.ListWriter(folder, mo.RECOMMENDATIONS, mo.part_name(0, len(users)), version, ids) as writer:
        writer.write_block(users, index, scores)
    mo.write_popularity(folder, ids, counts)
    mo.write_model_info(folder, model_version=version, model_kind="popularity", k=k, run_id=ctx.run_id)
    ctx.extras["popularity_folder"] = folder


def gate(ctx: Context) -> dict[str, Any]:
    from recsys.gate import decide

    ev = ctx.evaluation
    candidates = {n: m for n, m in ev["metrics"].items() if n != "popularity"}
    ctx.decision = decide(
        candidates,
        ev["metrics"]["popularity"],
        ev["live"],
        metric=ctx.options.metric,
        margin=ctx.options.margin,
        tolerance=ctx.options.tolerance,
        failed=ev["failed"],
    )
    return {"winner": ctx.decision.winner, "reason": ctx.decision.reason, "rejected": ctx.decision.rejected}


# ----------------------------------------------------------------------------------------------- publish


def load_into_aws(folder: Path, env: dict[str, str]) -> str:
    """`recsys publish` of a model folder into the embedded AWS; returns the version now live there."""
    from recsys.publish.publish import publish as publish_folder
    from recsys.publish.settings import PublishSettings

    c = clients(env["AWS_ENDPOINT_URL"])
    return publish_folder(str(folder), c.dynamodb, c.s3, PublishSettings.from_env(env)).version


def publish(ctx: Context) -> dict[str, Any]:
    """Publish the gate's winner (a copy kept in RECSYS_HOME) and make it the live model."""
    from recsys.serving.model_files import read_model_info

    winner = ctx.decision.winner if ctx.decision is not None else None
    baseline = winner is None and ctx.home.live() is None and "popularity_folder" in ctx.extras
    if baseline:
        winner = "popularity"  # nothing is live yet: serve the baseline until a trained model beats it
        ctx.candidates[winner] = ctx.extras["popularity_folder"]
        ctx.log("  nothing is live yet: publishing the popularity baseline")
    if winner is None:
        return {"published": None, "live": (ctx.home.live() or {}).get("version")}
    source = ctx.candidates[winner]
    version = read_model_info(source).version
    keep = ctx.home.model_copy(version)
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(source, keep)
    load_into_aws(keep, ctx.env)
    previous = ctx.home.live()
    ctx.home.set_live(
        {
            "version": version,
            "model": winner,
            "folder": str(keep),
            "run_id": ctx.run_id,
            "metrics": ctx.evaluation["metrics"][winner],
            "previous": previous.get("version") if previous else None,
        }
    )
    ctx.published = version
    return {
        "published": version,
        "previous": previous.get("version") if previous else None,
        "baseline": baseline,
    }


Stage = Callable[[Context], dict[str, Any]]
STAGES: dict[str, Stage] = {
    "ingest": ingest,
    "preprocess": preprocess,
    "fm": fm,
    "autoencoder": autoencoder,
    "evaluate": evaluate,
    "gate": gate,
    "publish": publish,
}


def stage_names(with_autoencoder: bool) -> list[str]:
    return [n for n in STAGES if with_autoencoder or n != "autoencoder"]


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
