"""The embedded AWS of local mode: a moto server on loopback, and the serving resources in it.

The runtime code is the one that runs in AWS; only the endpoint differs (AWS_ENDPOINT_URL, which boto3
reads). Tables are made with the key schemas of the stack (names in `recsys.contracts`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recsys import contracts

REGION = "us-east-1"
# Resource names in the embedded AWS (the stack names its own; these only need to be stable locally).
LOCAL_NAMES = {
    contracts.SERVING_TABLE_ENV: "recsys-serving",
    contracts.ITEMS_TABLE_ENV: "recsys-items",
    contracts.RECENT_EVENTS_TABLE_ENV: "recsys-recent-events",
    contracts.ARTIFACTS_BUCKET_ENV: "recsys-artifacts",
    contracts.INGEST_BUCKET_ENV: "recsys-ingest",
    contracts.EVENTS_STREAM_ENV: "recsys-events",
}
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/recsys-local"  # moto does not check it
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


class EmbeddedAws:
    """A moto server on 127.0.0.1 (a free port unless one is given), in a background thread."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{bound}"

    def stop(self) -> None:
        self._server.stop()


def environment(endpoint: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables that point boto3 and the runtime at the embedded AWS (existing names are kept)."""
    env = dict(os.environ if base is None else base)
    env["AWS_ENDPOINT_URL"] = endpoint
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    if "AWS_ACCESS_KEY_ID" not in env:
        env.update(DUMMY_CREDENTIALS)
    for name, value in LOCAL_NAMES.items():
        env.setdefault(name, value)
    return env


@dataclass(frozen=True)
class Clients:
    dynamodb: Any
    s3: Any
    firehose: Any


def clients(endpoint: str) -> Clients:
    import boto3  # type: ignore[import-untyped]

    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
    )
    return Clients(*(session.client(name, endpoint_url=endpoint) for name in ("dynamodb", "s3", "firehose")))


def ensure_serving_resources(aws: Clients, env: Mapping[str, str]) -> None:
    """Create what the API uses, if missing: the serving, items and recent-events tables, the artifacts
    bucket, and the events' Firehose stream (delivering to the ingest bucket, as in AWS)."""
    existing = set(aws.dynamodb.list_tables().get("TableNames", []))
    tables = {
        env[contracts.SERVING_TABLE_ENV]: [(contracts.SERVING_PARTITION_KEY, "HASH")],
        env[contracts.ITEMS_TABLE_ENV]: [(contracts.ITEMS_PARTITION_KEY, "HASH")],
        env[contracts.RECENT_EVENTS_TABLE_ENV]: [
            (contracts.RECENT_EVENTS_PARTITION_KEY, "HASH"),
            (contracts.RECENT_EVENTS_SORT_KEY, "RANGE"),
        ],
    }
    for name, keys in tables.items():
        if name in existing:
            continue
        aws.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    buckets = {b["Name"] for b in aws.s3.list_buckets().get("Buckets", [])}
    for bucket in (env[contracts.ARTIFACTS_BUCKET_ENV], env[contracts.INGEST_BUCKET_ENV]):
        if bucket not in buckets:
            aws.s3.create_bucket(Bucket=bucket)
    stream = env[contracts.EVENTS_STREAM_ENV]
    if stream not in aws.firehose.list_delivery_streams().get("DeliveryStreamNames", []):
        aws.firehose.create_delivery_stream(
            DeliveryStreamName=stream,
            ExtendedS3DestinationConfiguration={
                "RoleARN": LOCAL_ROLE_ARN,
                "BucketARN": f"arn:aws:s3:::{env[contracts.INGEST_BUCKET_ENV]}",
                "Prefix": contracts.EVENTS_STREAM_PREFIX,
            },
        )
