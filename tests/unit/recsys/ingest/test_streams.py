"""The two streams of ingest, with fake S3 clients: the source read (resume, header, clock) and the
multipart writer (parts, single put, abort)."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from botocore.exceptions import ResponseStreamingError

from recsys.ingest.multipart import MultipartWriter
from recsys.ingest.settings import MIB
from recsys.ingest.source import MAX_RESUMES, OutOfTime, SourceStream

CONTENT = b"\xef\xbb\xbfuser_id,item_id,timestamp\r\n" + b"u,i,1\r\n" * 1000


class BreakingBody:
    """Serves `data` but fails once after `break_at` bytes, as a dropped connection does."""

    def __init__(self, data: bytes, break_at: int | None) -> None:
        self._data = io.BytesIO(data)
        self._break_at = break_at
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self._break_at is not None and self._data.tell() + size > self._break_at:
            self._break_at = None
            raise ResponseStreamingError(error="connection reset")
        return self._data.read(size)

    def close(self) -> None:
        self.closed = True


class RangeS3:
    """GetObject with Range over CONTENT; every body breaks once if `flaky`."""

    def __init__(self, flaky: bool) -> None:
        self.flaky = flaky
        self.requests: list[dict[str, Any]] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        start = int(kwargs["Range"].removeprefix("bytes=").rstrip("-"))
        return {"Body": BreakingBody(CONTENT[start:], 100 if self.flaky else None)}


def read_all(stream: SourceStream, block: int = 64) -> bytes:
    out = b""
    while chunk := stream.read(block):
        out += chunk
    return out


AHEAD = pytest.mark.parametrize("read_ahead", [False, True], ids=["inline", "read-ahead"])


@AHEAD
def test_a_broken_read_resumes_where_it_stopped(read_ahead: bool) -> None:
    s3 = RangeS3(flaky=False)
    request = {"Bucket": "b", "Key": "k", "VersionId": "v1"}
    body = BreakingBody(CONTENT, break_at=300)
    stream = SourceStream(s3, request, {"Body": body}, read_ahead=read_ahead)  # type: ignore[arg-type]

    assert read_all(stream) == CONTENT
    assert stream.resumes == 1
    assert s3.requests == [request | {"Range": "bytes=256-"}]  # same version, from the last whole read
    assert stream.header_line == b"\xef\xbb\xbfuser_id,item_id,timestamp\r\n"
    assert stream.bytes_read == len(CONTENT)
    stream.close()
    assert body.closed


@AHEAD
def test_a_read_that_keeps_breaking_raises(read_ahead: bool) -> None:
    s3 = RangeS3(flaky=True)
    stream = SourceStream(
        s3,  # type: ignore[arg-type]
        {"Bucket": "b", "Key": "k"},
        {"Body": BreakingBody(CONTENT, 10)},
        read_ahead=read_ahead,
    )
    with pytest.raises(ResponseStreamingError):
        read_all(stream)
    assert stream.resumes == MAX_RESUMES
    stream.close()


@AHEAD
def test_the_clock_stops_the_read(read_ahead: bool) -> None:
    left = iter([100.0, 100.0, 5.0])
    stream = SourceStream(
        RangeS3(False),  # type: ignore[arg-type]
        {"Bucket": "b", "Key": "k"},
        {"Body": BreakingBody(CONTENT, None)},
        deadline=lambda: next(left),
        margin_s=30,
        read_ahead=read_ahead,
    )
    stream.read(10)
    stream.read(10)
    with pytest.raises(OutOfTime, match="after 20 bytes"):
        stream.read(10)
    stream.close()


def test_reads_of_any_size_after_a_read_ahead_keep_the_bytes_in_order() -> None:
    body = BreakingBody(CONTENT, None)
    stream = SourceStream(RangeS3(False), {"Bucket": "b", "Key": "k"}, {"Body": body}, read_ahead=True)  # type: ignore[arg-type]

    out = stream.read(100)  # the next 100 bytes are now read ahead
    out += stream.read(7)  # smaller than what was read ahead: the rest is kept for later
    out += stream.read(500)
    out += stream.read(64)
    out += stream.read(-1)  # all that is left

    assert out == CONTENT
    assert stream.read(64) == b""
    assert stream.bytes_read == len(CONTENT)
    stream.close()
    assert body.closed


def test_closing_waits_for_the_read_in_flight() -> None:
    body = BreakingBody(CONTENT, None)
    stream = SourceStream(RangeS3(False), {"Bucket": "b", "Key": "k"}, {"Body": body}, read_ahead=True)  # type: ignore[arg-type]

    assert stream.read(64) == CONTENT[:64]
    stream.close()  # with a read of the next block in flight

    assert body.closed
    assert stream.bytes_read == 64


class PartsS3:
    """Records the multipart calls; fails where told."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail_on = fail_on
        self.objects: dict[str, bytes] = {}

    def _call(self, name: str, size: int = 0) -> None:
        self.calls.append((name, size))
        if name == self.fail_on:
            raise RuntimeError(f"{name} failed")

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self._call("put_object", len(kwargs["Body"]))
        self.objects[kwargs["Key"]] = kwargs["Body"]
        return {}

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self._call("create")
        return {"UploadId": "u1"}

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        self._call("upload_part", len(kwargs["Body"]))
        return {"ETag": f'"e{kwargs["PartNumber"]}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self._call("complete", len(kwargs["MultipartUpload"]["Parts"]))
        return {}

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self._call("abort")
        return {}


def test_a_small_output_is_one_put() -> None:
    s3 = PartsS3()
    writer = MultipartWriter(s3, "b", "k")  # type: ignore[arg-type]
    writer.write(b"abc")
    assert writer.complete() == 3
    assert s3.calls == [("put_object", 3)]


def test_a_large_output_goes_up_in_parts() -> None:
    s3 = PartsS3()
    writer = MultipartWriter(s3, "b", "k")  # type: ignore[arg-type]
    for _ in range(20):
        writer.write(b"x" * MIB)
    writer.complete()
    assert s3.calls == [
        ("create", 0),
        ("upload_part", 8 * MIB),
        ("upload_part", 8 * MIB),
        ("upload_part", 4 * MIB),
        ("complete", 3),
    ]
    with pytest.raises(ValueError, match="after complete"):
        writer.write(b"more")


def test_abort_discards_the_parts_and_later_writes() -> None:
    s3 = PartsS3()
    writer = MultipartWriter(s3, "b", "k")  # type: ignore[arg-type]
    writer.write(b"x" * 9 * MIB)
    writer.abort()
    writer.write(b"dropped")  # e.g. a Parquet footer written while the writer is torn down
    writer.abort()
    assert s3.calls == [("create", 0), ("upload_part", 9 * MIB), ("abort", 0)]


def test_a_failing_abort_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    s3 = PartsS3(fail_on="abort")
    writer = MultipartWriter(s3, "b", "k")  # type: ignore[arg-type]
    writer.write(b"x" * 8 * MIB)
    with caplog.at_level(logging.WARNING, logger="recsys.ingest.multipart"):
        writer.abort()
    assert "could not abort" in caplog.text
