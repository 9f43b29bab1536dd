"""A `mapInArrow` partition as one Arrow table (the executors' numpy passes work on whole partitions)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa


def partition_table(batches: Iterable[pa.RecordBatch]) -> pa.Table | None:
    """The partition's rows as one table, or None when it has none (an empty partition may send no batch
    at all, so the schema is not known then)."""
    received = list(batches)
    if not received:
        return None
    table = pa.Table.from_batches(received)
    return table if table.num_rows else None
