"""The ingest manifest: one DynamoDB item per object version, saying what became of it.

The item is keyed by (bucket/key, version) and written whole with PutItem: processing a version again
overwrites its item, never adds to it. Totals over many files are derived by reading the items (or the
curated files), never accumulated in counters, so a retry cannot count a file twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from recsys import contracts
from recsys.ingest.aws import ManifestTable
from recsys.ingest.events import ObjectRef


class Status(StrEnum):
    ACCEPTED = "ACCEPTED"  # every row curated
    PARTIAL = "PARTIAL"  # good rows curated, bad rows quarantined (keep-good-rows)
    REJECTED = "REJECTED"  # nothing curated: unusable file, no valid row, or reject-file with a bad row
    SKIPPED = "SKIPPED"  # not an upload to ingest (prefix, folder, empty) or no longer there
    HANDED_OFF = "HANDED_OFF"  # too long for the Lambda's time limit: the Glue job validates it


@dataclass(frozen=True)
class IngestResult:
    """What `process_object` did with one object version (JSON-serialisable via `to_dict`)."""

    bucket: str
    key: str
    version: str  # the version id, or "etag-<ETag>" where the bucket keeps no versions
    status: Status
    reason: str = ""
    kind: str | None = None
    rows_total: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    curated_bucket: str | None = None
    curated_key: str | None = None
    quarantine_key: str | None = None
    errors_key: str | None = None
    bytes_read: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def manifest_item(
    result: IngestResult, ref: ObjectRef, *, policy: str, processed_at: datetime
) -> dict[str, Any]:
    """The DynamoDB item for a result: key attributes, the event's facts, the outcome; no None values."""
    item: dict[str, Any] = {
        **result.to_dict(),
        contracts.MANIFEST_PARTITION_KEY: f"{ref.bucket}/{ref.key}",
        contracts.MANIFEST_SORT_KEY: result.version,
        "version_id": ref.version_id,
        "etag": ref.etag,
        "size": ref.size,
        "policy": policy,
        "processed_at": processed_at.isoformat(timespec="milliseconds"),
    }
    return {k: v for k, v in item.items() if v is not None and v != ""}


def record(table: ManifestTable, item: dict[str, Any]) -> None:
    table.put_item(Item=item)
