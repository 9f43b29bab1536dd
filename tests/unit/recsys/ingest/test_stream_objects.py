"""Objects under transactions/stream/ (Firehose deliveries of real-time events): headerless CSV in the
canonical column order, curated like any upload, reported with the object's own line numbers."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from recsys import contracts
from recsys.ingest.layout import STREAM_COLUMNS, STREAM_HEADER, is_event_stream
from recsys.ingest.manifest import Status

if TYPE_CHECKING:
    from tests.unit.recsys.ingest.conftest import Lake

KEY = contracts.EVENTS_STREAM_PREFIX + "2026/11/28/12/recsys-events-1-2026-11-28-12-00-00-abcd"


def test_the_stream_header_is_the_canonical_column_order() -> None:
    assert STREAM_COLUMNS == ("user_id", "item_id", "timestamp", "rating", "event_type")
    assert STREAM_HEADER == b"user_id,item_id,timestamp,rating,event_type\n"
    assert is_event_stream(KEY)
    assert not is_event_stream("transactions/stream.csv")


def test_a_headerless_stream_object_is_curated(lake: Lake) -> None:
    body = (
        b'u1,i1,1764331200,4.5,rating\nu2,"item, with comma",1764331201.250,,view\nu3,i3,1764331202,,click\n'
    )
    obj = lake.upload(KEY, body)

    result = lake.ingest(obj)

    assert (result.status, result.kind, result.rows_total) == (Status.ACCEPTED, "transactions", 3)
    assert result.bytes_read == len(body)  # the object's bytes, not the header put in front
    curated = lake.curated(result).to_pydict()
    assert curated["user_id"] == ["u1", "u2", "u3"]  # the first line is a row, not a header
    assert curated["item_id"] == ["i1", "item, with comma", "i3"]
    assert curated["timestamp"] == [1764331200, 1764331201, 1764331202]
    assert curated["rating"] == [4.5, None, None]
    assert curated["event_type"] == ["rating", "view", "click"]
    assert curated["line"] == [1, 2, 3]  # lines of the object


def test_bad_stream_records_are_reported_at_their_object_line(lake: Lake) -> None:
    body = b"u1,i1,1764331200,,view\nu2,,1764331200,,view\nu3,i3,yesterday,,view\nu4,i4,1764331200,,view\n"
    obj = lake.upload(KEY, body)

    result = lake.ingest(obj)

    assert (result.status, result.rows_valid, result.rows_quarantined) == (Status.PARTIAL, 2, 2)
    report = lake.error_report(obj.key)
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(2, "item_id"), (3, "timestamp")]
    assert lake.curated(result)["line"].to_pylist() == [1, 4]
    quarantined = list(csv.reader(io.StringIO(lake.quarantined(obj.key).decode())))
    assert quarantined[0] == list(STREAM_COLUMNS)  # a header, so the file can be fixed and uploaded
    assert [row[0] for row in quarantined[1:]] == ["u2", "u3"]


def test_an_uploaded_transactions_file_still_needs_its_header(lake: Lake) -> None:
    obj = lake.upload("transactions/streamlike.csv", b"u1,i1,1764331200,,view\n")
    result = lake.ingest(obj)
    assert result.status is Status.REJECTED  # outside the stream prefix the first line is the header
