"""Round trip: events posted → Firehose (moto) delivers their records under transactions/stream/ in the
ingest bucket → process_object reads the headerless CSV → the curated rows are the events."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from recsys import contracts
from recsys.events.service import EventSinks, post_events
from recsys.ingest.manifest import Status
from recsys.ingest.process import process_object
from recsys.ingest.settings import IngestSettings
from recsys.ingest.trigger import wants_training
from tests.unit.recsys.events.conftest import INGEST, NOW_S, now

if TYPE_CHECKING:
    from tests.unit.recsys.events.conftest import Aws

CURATED = "recsys-events-curated"
MANIFEST = "recsys-events-manifest"

EVENTS = [
    {"user_id": "alice", "item_id": "movie-1", "event_type": "purchase", "timestamp": NOW_S - 100},
    {
        "user_id": "bob",
        "item_id": 'The "Best", Film',
        "event_type": "rating",
        "rating": 4.5,
        "timestamp": NOW_S - 90,
    },
    {
        "user_id": "zoë 🎬",
        "item_id": "café,crème",
        "event_type": "view",
        "timestamp": "2026-11-28T11:59:00.250Z",
    },
    {"user_id": "carol", "item_id": "m'2", "event_type": "click"},  # server time
    {"user_id": "dave", "item_id": "m3", "event_type": "rating", "rating": -1.25, "timestamp": NOW_S - 1},
]


def create_ingest_side(aws: Aws) -> None:
    aws.s3.create_bucket(Bucket=CURATED)
    aws.dynamodb.create_table(
        TableName=MANIFEST,
        KeySchema=[
            {"AttributeName": contracts.MANIFEST_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contracts.MANIFEST_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": contracts.MANIFEST_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contracts.MANIFEST_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_posted_events_come_back_as_curated_rows(aws: Aws, sinks: EventSinks) -> None:
    import boto3

    create_ingest_side(aws)
    first = post_events(json.dumps({"events": EVENTS[:3]}), sinks, now=now)
    second = post_events(json.dumps({"events": EVENTS[3:]}), sinks, now=now)
    assert (first.status, second.status) == (200, 200)
    objects = aws.stream_objects()
    assert len(objects) == 2  # moto's Firehose delivers one object per PutRecordBatch

    settings = IngestSettings(ingest_bucket=INGEST, curated_bucket=CURATED, manifest_table=MANIFEST)
    manifest = boto3.resource("dynamodb", region_name="us-east-1").Table(MANIFEST)
    rows: list[dict[str, object]] = []
    for obj in objects:
        head = aws.s3.head_object(Bucket=INGEST, Key=obj["Key"])
        result = process_object(
            aws.s3, manifest, settings, INGEST, obj["Key"], head.get("VersionId"), head["ETag"], obj["Size"]
        )
        assert (result.status, result.kind, result.rows_quarantined) == (Status.ACCEPTED, "transactions", 0)
        assert not wants_training(result)  # stream deliveries are picked up by the next run
        assert result.curated_key is not None
        body = aws.s3.get_object(Bucket=CURATED, Key=result.curated_key)["Body"].read()
        rows += (
            pq.read_table(io.BytesIO(body))
            .select(["user_id", "item_id", "timestamp", "rating", "event_type"])
            .to_pylist()
        )

    expected = [
        {
            "user_id": "alice",
            "item_id": "movie-1",
            "timestamp": NOW_S - 100,
            "rating": None,
            "event_type": "purchase",
        },
        {
            "user_id": "bob",
            "item_id": 'The "Best", Film',
            "timestamp": NOW_S - 90,
            "rating": 4.5,
            "event_type": "rating",
        },
        {
            "user_id": "zoë 🎬",
            "item_id": "café,crème",
            "timestamp": NOW_S - 60,
            "rating": None,
            "event_type": "view",
        },
        {"user_id": "carol", "item_id": "m'2", "timestamp": NOW_S, "rating": None, "event_type": "click"},
        {"user_id": "dave", "item_id": "m3", "timestamp": NOW_S - 1, "rating": -1.25, "event_type": "rating"},
    ]
    assert sorted(rows, key=lambda r: str(r["user_id"])) == sorted(expected, key=lambda r: str(r["user_id"]))
    # The same events are in the recent-events table, keyed by user and time.
    recent = {(i["user_id"], i["item_id"], i["timestamp_ms"] // 1000) for i in aws.recent()}
    assert recent == {(r["user_id"], r["item_id"], r["timestamp"]) for r in expected}
