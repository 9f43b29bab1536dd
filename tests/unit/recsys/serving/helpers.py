"""Test helpers for serving and publish: a model folder in the publish format, and the AWS resources.

The FM top-k writer (training/fm) writes the same format in production; tests build small folders here so
that every case (interrupted loads, fold-in, ties) can be crafted by hand.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import contracts

Scored = Sequence[tuple[str, float]]

SERVING = "recsys-test-serving"
ITEMS = "recsys-test-items"
EVENTS = "recsys-test-recent-events"
ARTIFACTS = "recsys-test-artifacts"
REGION = "us-east-1"
NAMES = {
    contracts.SERVING_TABLE_ENV: SERVING,
    contracts.ITEMS_TABLE_ENV: ITEMS,
    contracts.RECENT_EVENTS_TABLE_ENV: EVENTS,
    contracts.ARTIFACTS_BUCKET_ENV: ARTIFACTS,
}
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
REAL_AWS_SWITCHES = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB")


def _lists(rows: Mapping[str, Scored], key_column: str, version: str) -> pa.Table:
    return pa.table(
        {
            key_column: pa.array(list(rows), pa.string()),
            contracts.RECS_ITEM_IDS_COLUMN: pa.array(
                [[i for i, _ in v] for v in rows.values()], pa.list_(pa.string())
            ),
            contracts.RECS_SCORES_COLUMN: pa.array(
                [[s for _, s in v] for v in rows.values()], pa.list_(pa.float32())
            ),
            contracts.RECS_MODEL_VERSION_COLUMN: pa.array([version] * len(rows), pa.string()),
        }
    )


def write_model_folder(
    path: Path,
    *,
    version: str = "v1",
    recommendations: Mapping[str, Scored],
    popularity: Scored,
    similar: Mapping[str, Scored] | None = None,
    vectors: Mapping[str, tuple[Sequence[float], float]] | None = None,
    created_at: str = "2026-01-01T00:00:00Z",
    parts: int = 1,
) -> Path:
    """A model folder: model.json, recommendations/ (in `parts` files), similar_items/, popularity, vectors"""
    path.mkdir(parents=True, exist_ok=True)
    info = {
        "model_version": version,
        "model_kind": "fm",
        "k": contracts.MAX_TOP_K,
        "created_at": created_at,
        "run_id": "r1",
    }
    (path / contracts.MODEL_INFO_FILE).write_text(json.dumps(info))
    users = list(recommendations.items())
    recs = path / contracts.MODEL_RECS_DIR
    recs.mkdir(exist_ok=True)
    size = max(1, -(-len(users) // parts))
    for n, start in enumerate(range(0, max(1, len(users)), size)):
        chunk = dict(users[start : start + size])
        pq.write_table(_lists(chunk, contracts.RECS_USER_COLUMN, version), recs / f"part-{n:05d}.parquet")
    if similar is not None:
        (path / contracts.MODEL_SIMILAR_DIR).mkdir(exist_ok=True)
        pq.write_table(
            _lists(similar, contracts.RECS_ITEM_COLUMN, version),
            path / contracts.MODEL_SIMILAR_DIR / "part-00000.parquet",
        )
    pq.write_table(
        pa.table(
            {
                contracts.RECS_ITEM_COLUMN: pa.array([i for i, _ in popularity], pa.string()),
                "score": pa.array([s for _, s in popularity], pa.float64()),
            }
        ),
        path / contracts.MODEL_POPULARITY_FILE,
    )
    if vectors is not None:
        (path / contracts.MODEL_ITEM_VECTORS_FILE).write_bytes(npz_bytes(vectors))
    return path


def npz_bytes(vectors: Mapping[str, tuple[Sequence[float], float]]) -> bytes:
    out = io.BytesIO()
    np.savez(
        out,
        item_ids=np.array(list(vectors), dtype=str),
        factors=np.array([f for f, _ in vectors.values()], dtype=np.float32),
        bias=np.array([b for _, b in vectors.values()], dtype=np.float32),
    )
    return out.getvalue()


def create_resources(dynamodb: Any, s3: Any) -> None:
    """The serving, items and recent-events tables and the artifacts bucket (the stack's key schemas)."""
    tables = {
        SERVING: [(contracts.SERVING_PARTITION_KEY, "HASH")],
        ITEMS: [(contracts.ITEMS_PARTITION_KEY, "HASH")],
        EVENTS: [
            (contracts.RECENT_EVENTS_PARTITION_KEY, "HASH"),
            (contracts.RECENT_EVENTS_SORT_KEY, "RANGE"),
        ],
    }
    for name, keys in tables.items():
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    s3.create_bucket(Bucket=ARTIFACTS)


def put_catalog(dynamodb: Any, items: Mapping[str, tuple[str, Sequence[str]]]) -> None:
    for item_id, (title, categories) in items.items():
        dynamodb.put_item(
            TableName=ITEMS,
            Item={
                contracts.ITEMS_PARTITION_KEY: {"S": item_id},
                "title": {"S": title},
                "categories": {"L": [{"S": c} for c in categories]},
            },
        )


def put_event(
    dynamodb: Any, user_id: str, item_id: str, at_ms: int | None = None, event_id: str = "e"
) -> None:
    """One recent event, as the events domain stores it (sort key "<13-digit epoch ms>#<event id>")."""
    at_ms = int(time.time() * 1000) if at_ms is None else at_ms
    dynamodb.put_item(
        TableName=EVENTS,
        Item={
            contracts.RECENT_EVENTS_PARTITION_KEY: {"S": user_id},
            contracts.RECENT_EVENTS_SORT_KEY: {"S": f"{at_ms:013d}#{event_id}-{item_id}"},
            "item_id": {"S": item_id},
            "event_type": {"S": "view"},
            "timestamp": {"N": str(at_ms // 1000)},
        },
    )
