"""Small builders shared by the spark tests: raw input rows in the readers' column layout, moto's S3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from glue.readers import Inputs

TX_SCHEMA = (
    "user_id string, item_id string, timestamp long, rating float, event_type string, "
    "ingest_date string, source_key string, line long"
)
CAT_SCHEMA = (
    "item_id string, title string, categories string, attributes string, "
    "ingest_date string, source_key string, line long"
)


def tx(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    """Transactions from (user, item, timestamp, rating[, event_type]) tuples; provenance filled in."""
    full = []
    for line, row in enumerate(rows):
        user, item, timestamp, rating, *rest = row
        event = rest[0] if rest else None
        full.append((user, item, timestamp, rating, event, "2024-01-01", "transactions/t.csv", line + 2))
    return spark.createDataFrame(full, TX_SCHEMA)


def catalog(spark: Any, rows: list[tuple[str, str, str]]) -> Any:
    """Catalog rows from (item, title, categories) tuples."""
    full = [(i, t, c, "{}", "2024-01-01", "catalog/c.csv", n + 2) for n, (i, t, c) in enumerate(rows)]
    return spark.createDataFrame(full, CAT_SCHEMA)


def inputs(
    spark: Any, transactions: list[tuple[Any, ...]], items: list[tuple[str, str, str]] | None = None
) -> Inputs:
    return Inputs(
        transactions=tx(spark, transactions),
        catalog=catalog(spark, items) if items is not None else None,
        source_files=("transactions/t.csv",),
    )


@contextmanager
def mock_s3(monkeypatch: pytest.MonkeyPatch, bucket: str) -> Iterator[Any]:
    """moto's S3 holding one empty bucket, with a region and dummy credentials for boto3 (no AWS is
    reached); yields an S3 client."""
    moto = pytest.importorskip("moto")
    import boto3

    for name, value in (
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield client
