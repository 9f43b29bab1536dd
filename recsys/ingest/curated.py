"""The curated form of accepted rows: one Parquet file per source object version, typed columns.

This is the input contract of the preprocessing (Glue) job:

transactions: user_id string, item_id string, timestamp int64 (epoch seconds, UTC), rating float32 (null
  when absent or empty), event_type string (null when absent or empty);
catalog: item_id string, title string, categories string ("|"-separated, as uploaded; title and
  categories null when the file has no such column), attributes string (a JSON object of the file's
  other columns, "{}" when none);
both: source_key, source_version (the upload it came from), line int64 (where the row starts in it;
  null until the validator reports lines, see `_lines`).
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys.csv_contract import CATEGORIES, EVENT_TYPE, ITEM_ID, RATING, TIMESTAMP, TITLE, USER_ID, Kind
from recsys.ingest.multipart import MultipartWriter
from recsys.validation import ValidatedBatch, epoch_seconds, parse_ratings

SOURCE_KEY = "source_key"
SOURCE_VERSION = "source_version"
LINE = "line"
ATTRIBUTES = "attributes"

_LINEAGE = [
    pa.field(SOURCE_KEY, pa.string(), nullable=False),
    pa.field(SOURCE_VERSION, pa.string(), nullable=False),
    pa.field(LINE, pa.int64()),
]
SCHEMAS: dict[Kind, pa.Schema] = {
    Kind.TRANSACTIONS: pa.schema(
        [
            pa.field(USER_ID, pa.string(), nullable=False),
            pa.field(ITEM_ID, pa.string(), nullable=False),
            pa.field(TIMESTAMP, pa.int64(), nullable=False),
            pa.field(RATING, pa.float32()),
            pa.field(EVENT_TYPE, pa.string()),
            *_LINEAGE,
        ]
    ),
    Kind.CATALOG: pa.schema(
        [
            pa.field(ITEM_ID, pa.string(), nullable=False),
            pa.field(TITLE, pa.string()),
            pa.field(CATEGORIES, pa.string()),
            pa.field(ATTRIBUTES, pa.string(), nullable=False),
            *_LINEAGE,
        ]
    ),
}


_DICTIONARY_COLUMNS: dict[Kind, list[str]] = {
    Kind.TRANSACTIONS: [RATING, EVENT_TYPE, SOURCE_KEY, SOURCE_VERSION],
    Kind.CATALOG: [CATEGORIES, SOURCE_KEY, SOURCE_VERSION],
}


def typed_table(kind: Kind, batch: ValidatedBatch, source_key: str, source_version: str) -> pa.Table:
    """The accepted rows of one validated batch in the curated schema."""
    valid = batch.valid
    n = valid.num_rows
    columns = _transactions(valid) if kind is Kind.TRANSACTIONS else _catalog(valid)
    columns[SOURCE_KEY] = pa.repeat(source_key, n)
    columns[SOURCE_VERSION] = pa.repeat(source_version, n)
    columns[LINE] = _lines(batch)
    return pa.table(columns, schema=SCHEMAS[kind])


def _transactions(valid: pa.Table) -> dict[str, Any]:
    n = valid.num_rows
    names = set(valid.column_names)
    if RATING in names:
        ratings = parse_ratings(valid[RATING])
        rating: pa.Array = pa.array(ratings, pa.float32(), mask=np.isnan(ratings))
    else:
        rating = pa.nulls(n, pa.float32())
    return {
        USER_ID: valid[USER_ID],
        ITEM_ID: valid[ITEM_ID],
        TIMESTAMP: pa.array(epoch_seconds(valid[TIMESTAMP]), pa.int64()),
        RATING: rating,
        EVENT_TYPE: _empty_as_null(valid[EVENT_TYPE]) if EVENT_TYPE in names else pa.nulls(n, pa.string()),
    }


def _catalog(valid: pa.Table) -> dict[str, Any]:
    n = valid.num_rows
    names = valid.column_names
    extra = [c for c in names if c not in (ITEM_ID, TITLE, CATEGORIES)]
    if extra:
        values = zip(*(valid[c].to_pylist() for c in extra), strict=True)
        attributes = pa.array(
            [json.dumps(dict(zip(extra, row, strict=True)), ensure_ascii=False) for row in values]
        )
    else:
        attributes = pa.repeat("{}", n)
    return {
        ITEM_ID: valid[ITEM_ID],
        TITLE: valid[TITLE] if TITLE in names else pa.nulls(n, pa.string()),
        CATEGORIES: valid[CATEGORIES] if CATEGORIES in names else pa.nulls(n, pa.string()),
        ATTRIBUTES: attributes,
    }


def _empty_as_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _lines(batch: ValidatedBatch) -> pa.Array:
    """Where each accepted row starts in the source, when the validator says (a `lines` field on the batch);
    null otherwise."""
    lines = getattr(batch, "lines", None)
    if lines is None:
        return pa.nulls(batch.valid.num_rows, pa.int64())
    return pa.array(np.asarray(lines, dtype=np.int64), pa.int64())


class CuratedWriter:
    """Streams typed tables into one Parquet object in S3, in row groups of `row_group_rows`.

    Row groups are encoded, compressed and uploaded on one background thread while the caller validates
    the next chunk (Arrow and the S3 upload release the GIL, so a two-vCPU Lambda overlaps the two). At
    most one row group is in flight, so memory stays two row groups; its error surfaces on the next
    `add` or on `complete`."""

    def __init__(self, sink: MultipartWriter, kind: Kind, *, row_group_rows: int) -> None:
        self.kind = kind
        self.sink = sink
        self.rows = 0
        self._row_group_rows = row_group_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(
            pa.PythonFile(sink, mode="w"),
            SCHEMAS[kind],
            compression="snappy",
            write_statistics=True,
            # Dictionary-encode only the columns with few distinct values: on ids and titles it costs
            # half the write time and saves almost nothing (benchmarks/ingest_throughput.py).
            use_dictionary=_DICTIONARY_COLUMNS[kind],
        )
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: Future[int] | None = None

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self._row_group_rows:
            self._flush()

    def complete(self) -> int:
        """Write what is pending and the Parquet footer, and make the object visible; returns its rows."""
        try:
            self._flush()
            self._wait()
        finally:
            self._shutdown()
        self._writer.close()
        self.sink.complete()
        return self.rows

    def abort(self) -> None:
        """Discard the output (the Parquet writer is closed into the aborted sink, which drops it)."""
        with contextlib.suppress(Exception):  # the failure being handled is what matters, not this one
            self._wait()
        self._shutdown()
        self.sink.abort()
        with contextlib.suppress(OSError, ValueError, pa.ArrowException):
            self._writer.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        self._wait()  # one row group in flight at a time: bounded memory, row groups in order
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curated-writer")
        self._in_flight = self._pool.submit(self._write, table)

    def _write(self, table: pa.Table) -> int:
        self._writer.write_table(table, row_group_size=self._row_group_rows)
        return int(table.num_rows)

    def _wait(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self.rows += future.result()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
