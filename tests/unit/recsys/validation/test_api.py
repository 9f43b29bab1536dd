"""The entry points other code uses: streaming batches, strict reads, conversions."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recsys.csv_contract import Kind
from recsys.validation import (
    InvalidFileError,
    ValidatedBatch,
    epoch_seconds,
    parse_ratings,
    read_valid_table,
    validate_stream,
)

Write = Callable[[bytes, str], Path]


def test_batches_carry_accepted_rows_and_raw_rejected_records() -> None:
    raw = b'userId,movieId,timestamp,rating,extra\r\n1,2,3,4,x\r\n,2,3,4,x\r\n5,"6",7,,y\r\n'
    seen: list[ValidatedBatch] = []
    report = validate_stream(io.BytesIO(raw), "transactions", name="mem", on_batch=seen.append)
    valid = pa.concat_tables([b.valid for b in seen])
    assert valid.column_names == ["user_id", "item_id", "timestamp", "rating"]  # extras dropped
    assert valid.to_pylist() == [
        {"user_id": "1", "item_id": "2", "timestamp": "3", "rating": "4"},
        {"user_id": "5", "item_id": "6", "timestamp": "7", "rating": ""},
    ]
    assert [(r.line, r.raw) for b in seen for r in b.rejected] == [(3, b",2,3,4,x\r\n")]
    assert (report.rows_total, report.rows_valid) == (3, 2)


def test_catalog_batches_keep_extra_columns() -> None:
    seen: list[ValidatedBatch] = []
    validate_stream(
        io.BytesIO(b"movieId,title,year\n1,a,1999\n"), Kind.CATALOG, name="m", on_batch=seen.append
    )
    assert seen[0].valid.to_pylist() == [{"item_id": "1", "title": "a", "year": "1999"}]


def test_progress_reports_bytes_read() -> None:
    raw = b"item_id\n" + b"".join(b"%d\n" % i for i in range(1000))
    progress: list[int] = []
    validate_stream(io.BytesIO(raw), "catalog", name="m", on_progress=progress.append)
    assert progress[-1] == len(raw)


def test_read_valid_table_of_the_sample(sample_dir: Path) -> None:
    table = read_valid_table(sample_dir / "ratings.csv", "transactions")
    assert table.num_rows == 100_836
    assert table.column_names == ["user_id", "item_id", "rating", "timestamp"]


def test_read_valid_table_names_file_line_and_column(write: Write) -> None:
    path = write(b"user_id,item_id,timestamp\nu,i,1\nu,i,soon\n", "bad.csv")
    with pytest.raises(InvalidFileError) as caught:
        read_valid_table(path, "transactions")
    assert str(caught.value).startswith(f"{path}:3: column timestamp: not a timestamp: 'soon'")
    assert caught.value.error.line == 3


def test_read_valid_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidFileError, match=r"nope\.csv:1: cannot read the file"):
        read_valid_table(tmp_path / "nope.csv", "catalog")


def test_epoch_seconds_of_every_accepted_shape() -> None:
    strings = [
        "1537799250",
        "1537799250.9",
        "2018-09-24",
        "2018-09-24T14:27:30",
        "2018-09-24 14:27:30",
        "2018-09-24T14:27:30Z",
        "2018-09-24T16:27:30+02:00",
        "20180924T142730Z",
        "+1537799250",
    ]
    got = epoch_seconds(pa.chunked_array([strings[:4], strings[4:]]))
    assert got.dtype == np.int64
    assert got.tolist() == [1537799250, 1537799250, 1537747200] + [1537799250] * 6


def test_parse_ratings() -> None:
    assert np.array_equal(
        parse_ratings(pa.array(["4.5", "", "1"])), np.array([4.5, np.nan, 1], np.float32), equal_nan=True
    )
    assert parse_ratings(pa.array(["+3", "4."])).tolist() == [3.0, 4.0]
