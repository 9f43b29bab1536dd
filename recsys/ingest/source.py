"""The uploaded object as the validator reads it: in blocks, never whole.

On the way it counts bytes, keeps the raw header line (quarantine files start with it, as it was),
watches the Lambda's clock, and resumes a read that breaks mid-stream with a ranged GET of the same
version instead of starting the file again. With `read_ahead`, the next block is read on a background
thread while the caller works on the current one (socket reads release the GIL), so the wait for the
network overlaps validation instead of adding to it; memory grows by one block.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

from recsys.ingest.aws import S3Client

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 4 << 20  # the validator's own bound on a record
MAX_RESUMES = 3


class OutOfTime(Exception):  # noqa: N818 - a signal, not an error
    """Fewer seconds are left than the safety margin: stop and hand the file off."""


class SourceStream:
    """`read(n)` over an S3 object version, from a GetObject response already made."""

    def __init__(
        self,
        s3: S3Client,
        request: dict[str, Any],
        response: dict[str, Any],
        *,
        deadline: Callable[[], float] | None = None,
        margin_s: float = 0.0,
        read_ahead: bool = False,
    ) -> None:
        self._s3 = s3
        self._request = request  # Bucket, Key and VersionId or IfMatch: always the same content
        self._body = response["Body"]
        self._deadline = deadline
        self._margin_s = margin_s
        self.bytes_read = 0  # bytes handed to the caller
        self.resumes = 0
        self._header = bytearray()
        self._header_done = False
        # Read-ahead: `_fetched` bytes came from the body (a ranged GET resumes there); `_rest` were
        # fetched but not yet handed over (a read smaller than the block read ahead); `_ahead` is the
        # read in flight. Only the worker touches the body while a read is in flight.
        self._fetched = 0
        self._eof = False
        self._rest = b""
        self._ahead: Future[bytes] | None = None
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="source-read-ahead") if read_ahead else None
        )

    @property
    def header_line(self) -> bytes:
        """The first line as stored (BOM and line break included), once the validator has read it."""
        return bytes(self._header)

    def read(self, size: int = -1) -> bytes:
        if self._deadline is not None and self._deadline() < self._margin_s:
            raise OutOfTime(f"stopped after {self.bytes_read:,} bytes")
        data = self._next(size)
        self.bytes_read += len(data)
        if not self._header_done and data:
            end = data.find(b"\n")
            self._header += data if end < 0 else data[: end + 1]
            self._header_done = end >= 0 or len(self._header) > MAX_HEADER_BYTES
        return data

    def close(self) -> None:
        """Close the body (after the read in flight, if any: its outcome no longer matters)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            with contextlib.suppress(Exception):
                ahead.result()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._close_body()

    def _next(self, size: int) -> bytes:
        """The next bytes of the object (at most `size`; all that is left when negative)."""
        if self._ahead is not None:
            ahead, self._ahead = self._ahead, None
            self._rest += ahead.result()  # a read that failed for good raises here, in order
        if not self._rest:
            data = self._fetch(size)
        elif 0 <= size < len(self._rest):
            data, self._rest = self._rest[:size], self._rest[size:]
            return data
        else:
            data, self._rest = self._rest, b""
            if size < 0:
                return data + self._fetch(size)
        if data and size > 0 and self._pool is not None:
            self._ahead = self._pool.submit(self._fetch, size)
        return data

    def _fetch(self, size: int) -> bytes:
        if self._eof:
            return b""
        data = self._read_resuming(size)
        self._fetched += len(data)
        self._eof = not data or size < 0
        return data

    def _close_body(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()

    def _read_resuming(self, size: int) -> bytes:
        while True:
            try:
                return bytes(self._body.read(size))
            except (BotoCoreError, OSError) as exc:
                if self.resumes >= MAX_RESUMES:
                    raise
                self.resumes += 1
                logger.warning(
                    "read of s3://%s/%s broke at byte %d (%s); resuming (%d of %d)",
                    self._request["Bucket"],
                    self._request["Key"],
                    self._fetched,
                    exc,
                    self.resumes,
                    MAX_RESUMES,
                )
                self._close_body()
                response = self._s3.get_object(**self._request, Range=f"bytes={self._fetched}-")
                self._body = response["Body"]


class HeaderPrepended:
    """A headerless object read as if it began with `header` (the validator needs a header line).

    Used for Firehose deliveries under `contracts.EVENTS_STREAM_PREFIX`: CSV records with no header.
    `bytes_read` counts the object's bytes only; the caller shifts reported line numbers back by one, so
    they stay those of the object.
    """

    line_offset = 1  # lines added in front of the object

    def __init__(self, inner: SourceStream, header: bytes) -> None:
        self._inner = inner
        self._header = header if header.endswith(b"\n") else header + b"\n"
        self._prefix = self._header

    @property
    def header_line(self) -> bytes:
        return self._header

    @property
    def bytes_read(self) -> int:
        return self._inner.bytes_read

    def read(self, size: int = -1) -> bytes:
        if not self._prefix:
            return self._inner.read(size)
        if size < 0:
            data, self._prefix = self._prefix + self._inner.read(-1), b""
            return data
        data, self._prefix = self._prefix[:size], self._prefix[size:]
        return data

    def close(self) -> None:
        self._inner.close()
