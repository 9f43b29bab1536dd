"""A write-only S3 object fed in pieces: bytes go up in multipart-upload parts as they come.

Memory stays at about one part whatever the object's size. Nothing is visible under the key until
`complete()`; `abort()` discards the parts (the bucket's lifecycle rule also aborts uploads left behind
by a crash). An output smaller than one part is sent with a single PutObject instead.
"""

from __future__ import annotations

import logging
from typing import Any

from recsys.ingest.aws import S3Client
from recsys.ingest.settings import MAX_PARTS, MIN_PART_BYTES

logger = logging.getLogger(__name__)


class MultipartWriter:
    """File-like sink (`write`, `tell`, `flush`) for one S3 object; pyarrow can write Parquet into it."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        part_bytes: int = MIN_PART_BYTES,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self._part_bytes = part_bytes
        self._extra: dict[str, Any] = {"ContentType": content_type, "Metadata": metadata or {}}
        self._buffer = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.closed = False
        self._aborted = False

    @property
    def parts(self) -> int:
        """Parts uploaded so far (0 while the output fits in memory)."""
        return len(self._parts)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer `data`, sending a part when one is full. Writes after `abort()` are dropped."""
        if self._aborted:
            return len(data)
        if self.closed:
            raise ValueError(f"write to s3://{self.bucket}/{self.key} after complete")
        self._buffer += data
        self._written += len(data)
        if len(self._buffer) >= self._part_bytes:
            self._upload_part()
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        """Parts are sent when full; nothing to do here (pyarrow calls it)."""

    def complete(self) -> int:
        """Make the object visible; returns its size in bytes."""
        if self.closed:
            raise ValueError(f"s3://{self.bucket}/{self.key} is already closed")
        if self._upload_id is None:
            self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), **self._extra)
        else:
            if self._buffer:
                self._upload_part()
            self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer = bytearray()
        self.closed = True
        return self._written

    def abort(self) -> None:
        """Discard everything written. Safe to call twice, or after a failure inside the writer."""
        if self.closed:
            return
        self.closed = self._aborted = True
        self._buffer = bytearray()
        if self._upload_id is not None:
            try:
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            except Exception:  # the lifecycle rule aborts it later; the caller's own error matters more
                logger.warning(
                    "could not abort the upload of s3://%s/%s", self.bucket, self.key, exc_info=True
                )

    def _upload_part(self) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self._extra)
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"s3://{self.bucket}/{self.key} needs more than {MAX_PARTS:,} parts")
        body = bytes(self._buffer)
        self._buffer = bytearray()
        response = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
