"""Quarantine: what ingest did not accept, kept in the ingest bucket next to a report of why.

- `quarantine/<key>`: the file's header line, then each rejected record as it was (bytes unchanged, line
  breaks included), so it can be fixed and uploaded again; under the reject-file policy, or when the
  file is unusable, the whole object instead (a server-side copy of the version processed).
- `quarantine/<key>.errors.json`: the report (`error_report`).
"""

from __future__ import annotations

import json
from typing import Any

from recsys.ingest.aws import S3Client
from recsys.ingest.multipart import MultipartWriter
from recsys.validation import RejectedRecord, ValidationReport


class RejectedRecordsWriter:
    """Streams rejected records (after the header line) into `quarantine/<key>`."""

    def __init__(self, sink: MultipartWriter) -> None:
        self.sink = sink
        self.records = 0
        self.records_without_bytes = 0  # records too long for the validator to keep (see docs/ingest.md)

    def add(self, header_line: bytes, rejected: list[RejectedRecord]) -> None:
        for record in rejected:
            if not self.records:
                self.sink.write(header_line if header_line.endswith(b"\n") else header_line + b"\n")
            self.records += 1
            if record.raw:
                self.sink.write(record.raw)
            else:
                self.records_without_bytes += 1

    def complete(self) -> None:
        self.sink.complete()

    def abort(self) -> None:
        self.sink.abort()


def copy_whole(s3: S3Client, source: dict[str, str], bucket: str, key: str) -> None:
    """Server-side copy of the processed version (multipart for large objects; no bytes pass through)."""
    s3.copy(CopySource=source, Bucket=bucket, Key=key)


def error_report(
    report: ValidationReport,
    *,
    bucket: str,
    key: str,
    version: str,
    status: str,
    policy: str,
    rows_quarantined: int,
    quarantine_key: str,
    whole_file: bool,
) -> dict[str, Any]:
    """The JSON written to `<key>.errors.json`: counts, and the errors (capped, with a count of the rest)."""
    return {
        "file": f"s3://{bucket}/{key}",
        "bucket": bucket,
        "key": key,
        "version": version,
        "kind": report.kind,
        "status": status,
        "policy": policy,
        "unusable": report.unusable,
        "rows_total": report.rows_total,
        "rows_valid": report.rows_valid,
        "rows_quarantined": rows_quarantined,
        "quarantine_key": quarantine_key,
        "quarantined": "whole file" if whole_file else "header and rejected records",
        "errors": [e.to_json() for e in report.errors],
        "errors_truncated": report.errors_truncated,
    }


def put_report(s3: S3Client, bucket: str, key: str, document: dict[str, Any]) -> None:
    body = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
