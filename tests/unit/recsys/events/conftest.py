"""An embedded AWS (moto) with the recent-events table and a Firehose stream that delivers to the
ingest bucket under transactions/stream/, as the stack wires them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from recsys import contracts
from recsys.events.service import EventSinks
from recsys.ingest.batch_write import Backoff

REGION = "us-east-1"
INGEST = "recsys-events-ingest"
RECENT = "recsys-events-recent"
STREAM = "recsys-events-stream"
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region: nothing here may ever reach real AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


class Aws:
    """moto's table, bucket and stream, and readers of what landed in them."""

    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.firehose = boto3.client("firehose", region_name=REGION)
        self.dynamodb.create_table(
            TableName=RECENT,
            KeySchema=[
                {"AttributeName": contracts.RECENT_EVENTS_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": contracts.RECENT_EVENTS_SORT_KEY, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": contracts.RECENT_EVENTS_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": contracts.RECENT_EVENTS_SORT_KEY, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.s3.create_bucket(Bucket=INGEST)
        self.s3.put_bucket_versioning(Bucket=INGEST, VersioningConfiguration={"Status": "Enabled"})
        self.firehose.create_delivery_stream(
            DeliveryStreamName=STREAM,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/recsys-firehose",
                "BucketARN": f"arn:aws:s3:::{INGEST}",
                "Prefix": contracts.EVENTS_STREAM_PREFIX,
            },
        )

    def recent(self) -> list[dict[str, Any]]:
        """Every recent-events item, plain values, by user then sort key."""
        des = TypeDeserializer()
        items = [
            {k: des.deserialize(v) for k, v in i.items()}
            for i in self.dynamodb.scan(TableName=RECENT)["Items"]
        ]
        return sorted(items, key=lambda i: (i["user_id"], i["event_key"]))

    def stream_objects(self) -> list[dict[str, Any]]:
        listed = self.s3.list_objects_v2(Bucket=INGEST, Prefix=contracts.EVENTS_STREAM_PREFIX)
        return list(listed.get("Contents", []))

    def delivered(self) -> bytes:
        """What Firehose delivered to the bucket, all objects concatenated."""
        return b"".join(
            self.s3.get_object(Bucket=INGEST, Key=o["Key"])["Body"].read() for o in self.stream_objects()
        )


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def sinks(aws: Aws, slept: list[float]) -> EventSinks:
    return EventSinks(
        table_name=RECENT,
        stream_name=STREAM,
        dynamodb=aws.dynamodb,
        firehose=aws.firehose,
        backoff=Backoff(attempts=4, base_s=0.01, cap_s=0.1, sleep=slept.append),
    )


def now() -> datetime:
    return NOW
