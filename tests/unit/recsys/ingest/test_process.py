"""process_object against moto: outputs, policies, skips, versions, re-runs, the hand-off and failures."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from recsys.ingest.manifest import Status
from recsys.ingest.settings import IngestSettings, Policy
from recsys.validation import ValidatedBatch

if TYPE_CHECKING:
    from tests.unit.recsys.ingest.conftest import Lake

TX = b"user_id,item_id,timestamp,rating,event_type\n"
LINES_REPORTED = "lines" in ValidatedBatch.__dataclass_fields__


def mixed_file(rows: int, seed: int = 7) -> tuple[bytes, set[str], set[str]]:
    """A transactions file where about a fifth of the rows are bad, each row with a unique user id."""
    rng = random.Random(seed)
    good, bad = set(), set()
    lines = [TX]
    for n in range(rows):
        user = f"user{n:05d}"
        problem = rng.random() < 0.2
        timestamp = rng.choice([b"yesterday", b"1537799250000", b""]) if problem else b"1537799250"
        lines.append(user.encode() + b",item" + str(n % 37).encode() + b"," + timestamp + b",4.5,view\n")
        (bad if problem else good).add(user)
    return b"".join(lines), good, bad


def test_nothing_is_lost_every_row_is_curated_or_quarantined(lake: Lake) -> None:
    content, good, bad = mixed_file(500)
    obj = lake.upload("transactions/mixed.csv", content)

    result = lake.ingest(obj)

    assert result.status is Status.PARTIAL
    curated = lake.curated(result)
    curated_users = set(curated["user_id"].to_pylist())
    quarantined = list(csv.reader(io.StringIO(lake.quarantined(obj.key).decode())))
    assert quarantined[0] == ["user_id", "item_id", "timestamp", "rating", "event_type"]
    quarantined_users = {row[0] for row in quarantined[1:]}
    assert curated_users == good
    assert quarantined_users == bad
    assert curated.num_rows + len(quarantined) - 1 == result.rows_total == 500
    assert (result.rows_valid, result.rows_quarantined) == (len(good), len(bad))
    report = lake.error_report(obj.key)
    assert (report["rows_total"], report["rows_valid"], report["errors_truncated"]) == (500, len(good), 0)
    assert len(report["errors"]) == len(bad)


@pytest.mark.skipif(not LINES_REPORTED, reason="needs ValidatedBatch.lines from the validator")
def test_curated_rows_carry_their_source_line(lake: Lake) -> None:
    content, _, _ = mixed_file(300)
    obj = lake.upload("transactions/lines.csv", content)
    result = lake.ingest(obj)
    report = lake.error_report(obj.key)
    curated_lines = lake.curated(result)["line"].to_pylist()
    bad_lines = {e["line"] for e in report["errors"]}
    assert sorted(curated_lines + sorted(bad_lines)) == list(range(2, 302))


def test_curated_transactions_are_typed(lake: Lake) -> None:
    content = (
        b"\xef\xbb\xbfUserId,MovieId,Timestamp,Rating,Event_Type,source\r\n"
        b"1,31,1260759144,2.5,rating,web\r\n"
        b"1,29,2018-09-24T14:27:30+02:00,,,app\r\n"
        b"2,31,1537799250.9,+4,purchase,web\r\n"
    )
    obj = lake.upload("transactions/typed.csv", content)

    result = lake.ingest(obj)

    table = lake.curated(result)
    assert table.column_names == [
        "user_id",
        "item_id",
        "timestamp",
        "rating",
        "event_type",
        "source_key",
        "source_version",
        "line",
    ]
    assert table["timestamp"].to_pylist() == [1260759144, 1537792050, 1537799250]
    assert table["rating"].to_pylist() == [2.5, None, 4.0]
    assert table["event_type"].to_pylist() == ["rating", None, "purchase"]
    assert set(table["source_key"].to_pylist()) == {obj.key}
    assert set(table["source_version"].to_pylist()) == {obj.version_id}
    assert result.curated_key is not None
    assert result.curated_key.startswith("curated/ingest/kind=transactions/ingest_date=")
    assert result.curated_key.endswith(f"-{obj.version_id}.parquet")


def test_transactions_without_optional_columns_get_nulls(lake: Lake) -> None:
    obj = lake.upload("transactions/minimal.csv", b"user_id,item_id,timestamp\nu,i,1\n")
    table = lake.curated(lake.ingest(obj))
    assert table["rating"].to_pylist() == [None]
    assert table["event_type"].to_pylist() == [None]


def test_curated_catalog_keeps_other_columns_as_json(lake: Lake) -> None:
    content = (
        b'movieId,title,genres,Year,imdb\n1,"Toy Story (1995)",Adventure|Animation,1995,tt1\n2,Heat,,,\n'
    )
    obj = lake.upload("catalog/movies.csv", content)

    table = lake.curated(lake.ingest(obj))

    assert table.column_names[:4] == ["item_id", "title", "categories", "attributes"]
    assert table["categories"].to_pylist() == ["Adventure|Animation", ""]
    assert [json.loads(a) for a in table["attributes"].to_pylist()] == [
        {"year": "1995", "imdb": "tt1"},
        {"year": "", "imdb": ""},
    ]
    bare = lake.curated(lake.ingest(lake.upload("catalog/ids.csv", b"item_id\n7\n")))
    assert bare.select(["item_id", "title", "categories", "attributes"]).to_pylist() == [
        {"item_id": "7", "title": None, "categories": None, "attributes": "{}"}
    ]


def test_reject_file_policy_quarantines_the_whole_file(lake: Lake, settings: IngestSettings) -> None:
    content, _, bad = mixed_file(50)
    obj = lake.upload("transactions/strict.csv", content)

    result = lake.ingest(obj, replace(settings, policy=Policy.REJECT_FILE))

    assert (result.status, result.rows_valid, result.rows_quarantined) == (Status.REJECTED, 0, 50)
    assert result.curated_key is None
    assert lake.keys("recsys-test-curated") == []
    assert lake.quarantined(obj.key) == content
    report = lake.error_report(obj.key)
    assert (report["policy"], report["quarantined"], report["rows_valid"]) == (
        "reject-file",
        "whole file",
        50 - len(bad),
    )
    assert lake.open_uploads() == []


def test_reject_file_policy_accepts_a_clean_file(lake: Lake, settings: IngestSettings) -> None:
    obj = lake.upload("transactions/clean.csv", TX + b"u,i,1,1,view\n")
    result = lake.ingest(obj, replace(settings, policy=Policy.REJECT_FILE))
    assert (result.status, result.rows_valid) == (Status.ACCEPTED, 1)
    assert lake.keys("recsys-test-ingest", "quarantine/") == []


@pytest.mark.parametrize(
    ("key", "body", "reason"),
    [
        ("uploads/ratings.csv", b"user_id,item_id,timestamp\nu,i,1\n", "outside"),
        ("quarantine/transactions/a.csv", b"user_id,item_id,timestamp\nu,i,1\n", "outside"),
        ("transactions/folder/", b"", "folder"),
        ("transactions/empty.csv", b"", "zero-byte"),
    ],
)
def test_skipped_objects_are_logged_and_recorded(
    lake: Lake, key: str, body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    obj = lake.upload(key, body)
    caplog.set_level("INFO", logger="recsys.ingest")

    result = lake.ingest(obj)

    assert result.status is Status.SKIPPED
    assert reason in result.reason
    assert lake.manifest_item(key, obj.version_id)["status"] == "SKIPPED"
    assert lake.keys("recsys-test-curated") == []
    assert any("SKIPPED" in r.getMessage() and key in r.getMessage() for r in caplog.records)


def test_an_empty_object_whose_event_has_no_size_is_skipped(lake: Lake) -> None:
    obj = replace(lake.upload("transactions/empty.csv", b""), size=None)
    assert lake.ingest(obj).status is Status.SKIPPED


def test_an_object_deleted_before_processing_is_skipped(lake: Lake) -> None:
    obj = lake.upload("transactions/gone.csv", TX + b"u,i,1,1,view\n")
    lake.s3.delete_object(Bucket="recsys-test-ingest", Key=obj.key, VersionId=obj.version_id)

    result = lake.ingest(obj)

    assert result.status is Status.SKIPPED
    assert "deleted before processing" in result.reason
    assert lake.manifest_item(obj.key, obj.version_id)["status"] == "SKIPPED"


def test_a_key_deleted_before_processing_in_an_unversioned_read_is_skipped(lake: Lake) -> None:
    obj = lake.upload("transactions/gone.csv", TX + b"u,i,1,1,view\n")
    lake.s3.delete_object(Bucket="recsys-test-ingest", Key=obj.key)  # a delete marker
    result = lake.ingest(replace(obj, version_id=None))
    assert result.status is Status.SKIPPED
    assert lake.manifest_item(obj.key, f"etag-{obj.etag}")["status"] == "SKIPPED"


def test_content_overwritten_before_an_unversioned_read_is_skipped(lake: Lake) -> None:
    first = lake.upload("transactions/over.csv", TX + b"u,i,1,1,view\n")
    lake.upload("transactions/over.csv", TX + b"u,i,2,2,view\n")
    result = lake.ingest(replace(first, version_id=None))
    assert result.status is Status.SKIPPED
    assert "overwritten" in result.reason


def test_an_event_for_an_older_version_processes_that_version(lake: Lake) -> None:
    old = lake.upload("transactions/daily.csv", TX + b"old,i,1,1,view\n")
    new = lake.upload("transactions/daily.csv", TX + b"new,i,1,1,view\nnew2,i,1,1,view\n")

    old_result = lake.ingest(old)
    new_result = lake.ingest(new)

    assert lake.curated(old_result)["user_id"].to_pylist() == ["old"]
    assert lake.curated(new_result)["user_id"].to_pylist() == ["new", "new2"]
    assert old_result.curated_key != new_result.curated_key
    assert {i["version"] for i in lake.manifest_items()} == {old.version_id, new.version_id}


def test_processing_a_version_again_overwrites_instead_of_adding(lake: Lake) -> None:
    content, _, _ = mixed_file(40)
    obj = lake.upload("transactions/again.csv", content)
    first = lake.ingest(obj, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    second = lake.ingest(obj, now=lambda: datetime(2026, 1, 2, tzinfo=UTC))

    assert first == second
    [item] = lake.manifest_items()
    assert (item["rows_total"], item["rows_valid"], item["processed_at"][:10]) == (
        40,
        first.rows_valid,
        "2026-01-02",
    )
    assert lake.keys("recsys-test-curated") == [first.curated_key]
    assert lake.keys("recsys-test-ingest", "quarantine/") == [first.quarantine_key, first.errors_key]


class Clock:
    """Seconds left: plenty for the first `calls` checks, then less than any safety margin."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    def __call__(self) -> float:
        self.calls -= 1
        return 900.0 if self.calls >= 0 else 1.0


def test_a_file_that_cannot_finish_in_time_is_handed_off(lake: Lake, settings: IngestSettings) -> None:
    content, _, _ = mixed_file(100_000)  # about 4 blocks of the validator
    obj = lake.upload("transactions/slow.csv", content)

    result = lake.ingest(obj, replace(settings, safety_margin_s=30), deadline=Clock(calls=3))

    assert result.status is Status.HANDED_OFF
    assert "Glue job" in result.reason
    assert 0 < result.bytes_read < len(content)
    assert lake.keys("recsys-test-curated") == []
    assert lake.keys("recsys-test-ingest", "quarantine/") == []
    assert lake.open_uploads() == []
    assert lake.manifest_item(obj.key, obj.version_id)["status"] == "HANDED_OFF"


def test_no_time_to_start_hands_off_without_reading(lake: Lake) -> None:
    obj = lake.upload("transactions/late.csv", TX + b"u,i,1,1,view\n")
    result = lake.ingest(obj, deadline=lambda: 5.0)
    assert (result.status, result.bytes_read) == (Status.HANDED_OFF, 0)


class FailingUploads:
    """The moto client, except that writing a part fails (as after botocore's retries ran out)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.uploads_started = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.uploads_started += 1
        return dict(self._s3.create_multipart_upload(**kwargs))

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("S3 is down")


def test_a_failure_aborts_the_outputs_and_raises(lake: Lake, settings: IngestSettings) -> None:
    from recsys.ingest.process import process_object

    long_bad_row = b"u,i,1,1,view," + b"x" * 1000 + b"\n"  # one field too many
    content = TX + long_bad_row * 9000  # the quarantine output passes one 8 MiB part
    obj = lake.upload("transactions/fails.csv", content)

    s3 = FailingUploads(lake.s3)
    with pytest.raises(RuntimeError, match="S3 is down"):
        process_object(
            s3,
            lake.manifest,
            settings,
            "recsys-test-ingest",
            obj.key,
            obj.version_id,
            obj.etag,
            obj.size,
        )

    assert s3.uploads_started == 1
    assert lake.open_uploads() == []  # the started upload was aborted
    assert lake.manifest_items() == []  # no outcome recorded: the message is retried
