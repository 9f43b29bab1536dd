"""A very large upload is streamed: read in blocks, written out in multipart parts, in bounded memory.

The body is generated on demand (it could claim 2 GB without holding it); the test generates 64 MB to
stay fast, and shows the three things that make any size work: the body is read in small blocks, the
curated output goes up in several 8 MiB parts, and memory does not grow with the bytes read.
"""

from __future__ import annotations

import gc
import io
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.ingest.manifest import Status
from recsys.ingest.process import process_object
from recsys.ingest.settings import MIB, IngestSettings

if TYPE_CHECKING:
    from tests.unit.recsys.ingest.conftest import Lake

HEADER = b"user_id,item_id,timestamp,rating\n"
ROWS_PER_BLOCK = 8192


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width decimal digits of each number, as ASCII bytes (one row per number)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _ascii(text: str, rows: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode(), np.uint8), (rows, len(text)))


def transaction_rows(first: int, count: int) -> tuple[bytes, int]:
    """Rows first.. of a transactions file, all distinct, built with numpy (no Python object per row).

    `user<9 digits>,item<5 digits>,<10-digit epoch>,<rating>`; every 200,000th row's timestamp starts
    with "x", which the validator rejects. Returns the bytes and the number of bad rows.
    """
    n = np.arange(first, first + count, dtype=np.int64)
    timestamp = _digits(1_500_000_000 + n, 10)
    bad = n % 200_000 == 0
    timestamp[bad, 0] = ord("x")
    parts = [
        _ascii("user", count),
        _digits(n, 9),
        _ascii(",item", count),
        _digits(n % 50_000, 5),
        _ascii(",", count),
        timestamp,
        _ascii(",", count),
        _digits(n % 5 + 1, 1),
        _ascii("\n", count),
    ]
    return np.hstack(parts).tobytes(), int(bad.sum())


def long_bad_rows(first: int, count: int) -> tuple[bytes, int]:
    """Rows with one field too many and 200 bytes in it: every one goes to quarantine."""
    row = b"user,item,1500000000,1," + b"x" * 200 + b"\n"
    return row * count, count


class GeneratedBody:
    """A transactions CSV of about `target_bytes`, made block by block as it is read.

    `read()` without a size is refused: the point is that nobody reads the object whole. Each read
    samples the live Python memory (tracemalloc) and the bytes Arrow holds. Reads happen on the source's
    read-ahead thread, concurrently with part uploads on the curated writer's thread, so sampling and
    uploads take turns (`lock`): the moto mock runs in this process and holds ~5 copies of a part while
    it receives one, memory that a real S3 holds on its side.
    """

    def __init__(
        self, target_bytes: int, rows: Callable[[int, int], tuple[bytes, int]] = transaction_rows
    ) -> None:
        self.target_bytes = target_bytes
        self._rows = rows
        self.rows = 0
        self.bad_rows = 0
        self.bytes_served = 0
        self.read_sizes: list[int] = []
        self.samples: list[tuple[int, int]] = []  # (Python live, Arrow bytes) at each 8th read
        self.lock = threading.Lock()
        self._pending = HEADER
        self._done = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the whole object was requested")
        self.read_sizes.append(size)
        if len(self.read_sizes) % 8 == 0 and tracemalloc.is_tracing():
            with self.lock:
                gc.collect()  # botocore and moto leave cycles holding part bodies; count live memory only
                self.samples.append((tracemalloc.get_traced_memory()[0], pa.total_allocated_bytes()))
        while len(self._pending) < size and not self._done:
            self._pending += self._block()
        data, self._pending = self._pending[:size], self._pending[size:]
        self.bytes_served += len(data)
        return data

    def close(self) -> None:
        """Like botocore's StreamingBody."""

    def _block(self) -> bytes:
        if self.bytes_served + len(self._pending) >= self.target_bytes:
            self._done = True
            return b""
        block, bad = self._rows(self.rows, ROWS_PER_BLOCK)
        self.rows += ROWS_PER_BLOCK
        self.bad_rows += bad
        return block


class StreamingS3:
    """The moto client, except that GetObject of the big key returns the generated body; counts parts."""

    def __init__(self, s3: Any, key: str, body: GeneratedBody) -> None:
        self._s3 = s3
        self._key = key
        self.body = body
        self.part_sizes: list[int] = []
        self.aborted: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["Key"] == self._key
        assert "Range" not in kwargs
        return {
            "Body": self.body,
            "ContentLength": self.body.target_bytes,
            "ETag": '"0123456789abcdef0123456789abcdef-300"',
            "VersionId": kwargs.get("VersionId"),
            "LastModified": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        }

    def upload_part(self, **kwargs: Any) -> dict[str, Any]:
        self.part_sizes.append(len(kwargs["Body"]))
        with self.body.lock:  # no memory sample while moto copies the part (see GeneratedBody)
            return dict(self._s3.upload_part(**kwargs))

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.aborted.append(kwargs["Key"])
        return dict(self._s3.abort_multipart_upload(**kwargs))


def ingest_generated(
    lake: Lake, settings: IngestSettings, body: GeneratedBody, *, trace: bool = False, **kwargs: Any
) -> Any:
    s3 = StreamingS3(lake.s3, "transactions/huge.csv", body)
    if trace:
        tracemalloc.start()
    try:
        result = process_object(
            s3,
            lake.manifest,
            settings,
            "recsys-test-ingest",
            "transactions/huge.csv",
            "v-huge",
            None,
            body.target_bytes,
            **kwargs,
        )
    finally:
        tracemalloc.stop()
    return result, s3


def test_a_large_object_is_streamed_in_blocks_and_written_in_parts(
    lake: Lake, settings: IngestSettings
) -> None:
    body = GeneratedBody(64 * MIB)

    result, s3 = ingest_generated(lake, settings, body, trace=True)

    assert result.status is Status.PARTIAL
    assert result.rows_total == body.rows == result.rows_valid + result.rows_quarantined
    assert result.rows_quarantined == body.bad_rows > 0
    # read in blocks, never whole
    assert max(body.read_sizes) <= 1 * MIB
    assert len(body.read_sizes) >= 64
    assert result.bytes_read == body.bytes_served >= 64 * MIB
    # the curated output went up in several parts of at least 8 MiB (all but the last)
    assert len(s3.part_sizes) >= 2
    assert min(s3.part_sizes[:-1]) >= 8 * MIB
    head = lake.s3.head_object(Bucket="recsys-test-curated", Key=result.curated_key)
    assert head["ETag"].strip('"').endswith(f"-{len(s3.part_sizes)}")
    metadata = pq.read_metadata(
        io.BytesIO(lake.s3.get_object(Bucket="recsys-test-curated", Key=result.curated_key)["Body"].read())
    )
    assert metadata.num_rows == result.rows_valid
    assert metadata.num_row_groups >= 2
    # memory is bounded: live memory far below the object's size, and no higher late in the file than
    # early on beyond the fill level of one part buffer (the sawtooth of the multipart writer)
    python_live = [p for p, _ in body.samples]
    arrow_live = [a for _, a in body.samples]
    half = len(python_live) // 2
    assert max(python_live) < 48 * MIB, python_live
    assert max(arrow_live) < 48 * MIB, arrow_live
    assert max(python_live[half:]) <= max(python_live[:half]) + 8 * MIB, python_live
    assert lake.open_uploads() == []


def test_a_large_object_out_of_time_aborts_its_started_uploads(lake: Lake, settings: IngestSettings) -> None:
    body = GeneratedBody(2048 * MIB, long_bad_rows)  # "2 GB" of bad rows: quarantine passes 8 MiB soon
    left = iter([900.0] * 12)

    result, s3 = ingest_generated(
        lake, replace(settings, safety_margin_s=60), body, deadline=lambda: next(left, 10.0)
    )

    assert result.status is Status.HANDED_OFF
    assert s3.part_sizes, "a multipart upload had started"
    assert s3.aborted == ["quarantine/transactions/huge.csv"]
    assert body.bytes_served < 16 * MIB
    assert lake.open_uploads() == []
    assert lake.keys("recsys-test-ingest", "quarantine/") == []
    assert lake.keys("recsys-test-curated") == []


@pytest.mark.parametrize("size", [-1, None])
def test_the_generated_body_refuses_a_whole_read(size: int | None) -> None:
    with pytest.raises(AssertionError):
        GeneratedBody(MIB).read(size)  # type: ignore[arg-type]
