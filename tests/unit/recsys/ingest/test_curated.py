"""The curated Parquet file: what readers get back, whichever way the rows are handed to the writer."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.csv_contract import Kind
from recsys.ingest.curated import SCHEMAS, CuratedWriter, typed_table, writer_table
from recsys.validation import ValidatedBatch, validate_stream

FILES = {
    Kind.TRANSACTIONS: b"user_id,item_id,timestamp,rating,event_type\n"
    + b"".join(
        b"u%d,i%d,%d,%s,%s\n"
        % (n % 7, n % 13, 1_500_000_000 + 37 * n, [b"4.5", b"", b"3"][n % 3], [b"", b"click"][n % 2])
        for n in range(2_000)
    )
    + b"u1,i1,2018-09-24T14:27:30Z,1,view\n",
    Kind.CATALOG: b"item_id,title,genres,year\n"
    + b"".join(b'i%d,"Title, %d",Comedy|Drama,19%02d\n' % (n, n, n % 100) for n in range(500)),
}


class Sink(io.BytesIO):
    """The two calls `CuratedWriter` makes on its S3 multipart sink besides writing."""

    def complete(self) -> None:
        pass

    def abort(self) -> None:
        pass


def batches(kind: Kind) -> list[ValidatedBatch]:
    found: list[ValidatedBatch] = []
    report = validate_stream(io.BytesIO(FILES[kind]), kind, name="f", on_batch=found.append)
    assert report.rows_valid == report.rows_total > 0
    return found


def written(kind: Kind, how: str) -> bytes:
    sink = Sink()
    writer = CuratedWriter(sink, kind, row_group_rows=300)  # type: ignore[arg-type]
    for batch in batches(kind):
        if how == "add_batch":
            writer.add_batch(batch, "transactions/f.csv", "v1")
        else:
            make = typed_table if how == "typed_table" else writer_table
            writer.add(make(kind, batch, "transactions/f.csv", "v1"))
    writer.complete()
    return sink.getvalue()


@pytest.mark.parametrize("kind", list(Kind))
def test_every_way_in_writes_the_same_file_and_reads_back_in_the_curated_schema(kind: Kind) -> None:
    files = {how: written(kind, how) for how in ("add_batch", "writer_table", "typed_table")}
    assert len(set(files.values())) == 1

    table = pq.read_table(io.BytesIO(files["add_batch"]))
    expected = pa.concat_tables(typed_table(kind, b, "transactions/f.csv", "v1") for b in batches(kind))
    assert table.schema == SCHEMAS[kind]
    assert table.equals(expected)
    assert pq.read_metadata(io.BytesIO(files["add_batch"])).num_row_groups > 1


def test_writer_table_holds_the_same_values_as_typed_table() -> None:
    for batch in batches(Kind.TRANSACTIONS):
        fast = writer_table(Kind.TRANSACTIONS, batch, "k", "v")
        assert fast.cast(SCHEMAS[Kind.TRANSACTIONS]).equals(typed_table(Kind.TRANSACTIONS, batch, "k", "v"))
