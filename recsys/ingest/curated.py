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
from collections.abc import Callable
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


# How the Parquet file stores the columns. The values and the schema read back are the same either way;
# the file is smaller (15.2 MB -> 6.2 MB on the 1M-row file of benchmarks/ingest_throughput.py, less to
# upload) and cheaper to write:
# - dictionary pages for the columns that repeat: ids in a transactions file (items and users recur:
#   item_id halves, 4.8 -> 2.4 MB, for the same write time; user_id costs ~5 ms more per 1M rows, and
#   saves little when the file is sorted by user but half when it is not; with all-distinct ids the
#   writer falls back to plain pages once a dictionary passes 1 MiB, ~10% slower than plain), ratings,
#   event types, and the lineage columns (one value each); not catalog ids (unique) nor titles;
# - DELTA_BINARY_PACKED for the integers: `line` counts up by one (4.0 MB of snappy pages become 10 kB)
#   and timestamps are mostly close together (5.5 -> 3.0 MB), each faster than plain + snappy.
#   Spark reads it (vectorised since 3.3; the Glue job runs 3.5).
_DICTIONARY_COLUMNS: dict[Kind, list[str]] = {
    Kind.TRANSACTIONS: [USER_ID, ITEM_ID, RATING, EVENT_TYPE, SOURCE_KEY, SOURCE_VERSION],
    Kind.CATALOG: [CATEGORIES, SOURCE_KEY, SOURCE_VERSION],
}
_COLUMN_ENCODINGS: dict[Kind, dict[str, str]] = {
    Kind.TRANSACTIONS: {TIMESTAMP: "DELTA_BINARY_PACKED", LINE: "DELTA_BINARY_PACKED"},
    Kind.CATALOG: {LINE: "DELTA_BINARY_PACKED"},
}

# What `CuratedWriter` takes: the curated schema with the lineage columns (one value per file) as
# dictionary arrays, so no string is repeated per row and the Parquet writer takes the dictionary as it
# is instead of hashing every row. The file stores no Arrow schema (`store_schema=False`): readers derive
# it from the Parquet schema, which is the same as with string columns, so they read `SCHEMAS` back.
_LINEAGE_TYPE = pa.dictionary(pa.int32(), pa.string())
WRITE_SCHEMAS: dict[Kind, pa.Schema] = {
    kind: pa.schema(
        [
            pa.field(f.name, _LINEAGE_TYPE, nullable=False) if f.name in (SOURCE_KEY, SOURCE_VERSION) else f
            for f in schema
        ]
    )
    for kind, schema in SCHEMAS.items()
}


def typed_table(kind: Kind, batch: ValidatedBatch, source_key: str, source_version: str) -> pa.Table:
    """The accepted rows of one validated batch in the curated schema."""
    return writer_table(kind, batch, source_key, source_version).cast(SCHEMAS[kind])


def writer_table(kind: Kind, batch: ValidatedBatch, source_key: str, source_version: str) -> pa.Table:
    """`typed_table` in the form `CuratedWriter` writes fastest (`WRITE_SCHEMAS`: the same values, the
    lineage columns dictionary-encoded)."""
    valid = batch.valid
    n = valid.num_rows
    columns = _transactions(valid) if kind is Kind.TRANSACTIONS else _catalog(valid)
    first = pa.array(np.zeros(n, dtype=np.int32))  # every row points at the one value
    columns[SOURCE_KEY] = pa.DictionaryArray.from_arrays(first, pa.array([source_key], pa.string()))
    columns[SOURCE_VERSION] = pa.DictionaryArray.from_arrays(first, pa.array([source_version], pa.string()))
    columns[LINE] = _lines(batch)
    return pa.table(columns, schema=WRITE_SCHEMAS[kind])


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


SINK_BUFFER_BYTES = 1 << 20  # Parquet bytes Arrow gathers before one write into the sink


class _SinkFile:
    """The sink as Arrow sees it: writes go through; closing the stream does not close the sink (its
    `complete` or `abort` decides what becomes of the object)."""

    def __init__(self, sink: MultipartWriter) -> None:
        self._sink = sink
        self.closed = False

    def write(self, data: bytes) -> int:
        return self._sink.write(data)

    def tell(self) -> int:
        return self._sink.tell()

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        self.closed = True


class CuratedWriter:
    """Streams accepted rows into one Parquet object in S3, in row groups of `row_group_rows`: validated
    batches (`add_batch`, converted by `writer_table`) or typed tables (`add`: `writer_table` or
    `typed_table` results).

    Row groups are typed, encoded, compressed and uploaded on one background thread while the caller
    validates the next chunk (Arrow and the S3 upload release the GIL, so a two-vCPU Lambda overlaps the
    two). At most one row group is in flight, so memory stays two row groups; its error surfaces on the
    next `add` or on `complete`."""

    def __init__(self, sink: MultipartWriter, kind: Kind, *, row_group_rows: int) -> None:
        self.kind = kind
        self.sink = sink
        self.rows = 0
        self._row_group_rows = row_group_rows
        self._pending: list[Callable[[], pa.Table]] = []  # each makes one table of the row group
        self._pending_rows = 0
        self._schema = WRITE_SCHEMAS[kind]
        # The Parquet writer makes ~1,000 small writes per 1M rows; each would take the GIL from the
        # validating thread to call into Python. Arrow buffers them and hands the sink whole MiBs.
        self._stream = pa.BufferedOutputStream(
            pa.PythonFile(_SinkFile(sink), mode="w"), buffer_size=SINK_BUFFER_BYTES
        )
        self._writer = pq.ParquetWriter(
            self._stream,
            self._schema,
            compression="snappy",
            write_statistics=True,
            use_dictionary=_DICTIONARY_COLUMNS[kind],
            column_encoding=_COLUMN_ENCODINGS[kind],
            store_schema=False,  # see WRITE_SCHEMAS: the schema read back is SCHEMAS[kind]
        )
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: Future[int] | None = None

    def add(self, table: pa.Table) -> None:
        """Add a typed table (`writer_table`, or `typed_table`: its lineage columns are converted)."""
        if not table.num_rows:
            return
        if not table.schema.equals(self._schema):
            table = table.cast(self._schema)
        self._queue(lambda: table, table.num_rows)

    def add_batch(self, batch: ValidatedBatch, source_key: str, source_version: str) -> None:
        """Add the accepted rows of a validated batch; `writer_table` types them on the writer's thread."""
        rows = batch.valid.num_rows
        if rows:
            self._queue(lambda: writer_table(self.kind, batch, source_key, source_version), rows)

    def _queue(self, make: Callable[[], pa.Table], rows: int) -> None:
        self._pending.append(make)
        self._pending_rows += rows
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
        self._stream.close()  # hands the sink the last buffered bytes
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
            self._stream.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        self._wait()  # one row group in flight at a time: bounded memory, row groups in order
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curated-writer")
        self._in_flight = self._pool.submit(self._write, pending)

    def _write(self, pending: list[Callable[[], pa.Table]]) -> int:
        table = pa.concat_tables([make() for make in pending])
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
