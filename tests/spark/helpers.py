"""Small builders shared by the spark tests: raw input rows in the readers' column layout."""

from __future__ import annotations

from typing import Any

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
