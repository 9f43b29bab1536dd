"""Ingest one uploaded object version: stream it through the validator (the code behind `recsys validate`),
write accepted rows to the curated zone and the rest to quarantine, and record the outcome in the manifest.

Nothing is lost: every record of the file ends either in the curated Parquet or in quarantine, and a
failure anywhere aborts the outputs and raises, so the message goes back to the queue.

Objects under `contracts.EVENTS_STREAM_PREFIX` (Firehose deliveries of real-time events) are headerless
CSV in the canonical transactions column order: they are read with that header put in front, and their
line numbers are reported as those of the object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from recsys.csv_contract import Kind
from recsys.ingest import layout, quarantine
from recsys.ingest.aws import GONE_CODES, SUPERSEDED_CODES, ManifestTable, S3Client, error_code
from recsys.ingest.curated import CuratedWriter
from recsys.ingest.events import ObjectRef
from recsys.ingest.manifest import IngestResult, Status, manifest_item, record
from recsys.ingest.multipart import MultipartWriter
from recsys.ingest.settings import IngestSettings, Policy
from recsys.ingest.source import HeaderPrepended, OutOfTime, SourceStream
from recsys.validation import ValidatedBatch, ValidationReport, validate_stream

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

Deadline = Callable[[], float]
Source = SourceStream | HeaderPrepended  # what the validator reads: the object, or a header and the object


class RowsHook(Protocol):
    """Sees the accepted rows of one object version while it streams (canonical names, all strings).

    `close(kept)` comes once the outcome is known, before the outputs are completed and the manifest is
    written: `kept` says whether the rows are curated. It may raise, which fails the object (retried).
    """

    def add(self, rows: pa.Table) -> None: ...
    def close(self, kept: bool) -> None: ...


# Called once per object version that streams: (kind, object, version tag) -> a hook, or None for none.
HookFactory = Callable[[Kind, ObjectRef, str], RowsHook | None]


def process_object(
    s3: S3Client,
    manifest_table: ManifestTable,
    settings: IngestSettings,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str | None,
    size: int | None,
    *,
    deadline: Deadline | None = None,
    now: Callable[[], datetime] | None = None,
    valid_rows_hook: HookFactory | None = None,
) -> IngestResult:
    """Process one object version and record it in the manifest. `deadline()` gives the seconds left.

    Returns the result (also written to the manifest). Raises on failures worth retrying (S3 or DynamoDB
    errors after botocore's retries); outputs started by then are aborted. `valid_rows_hook` makes a
    per-object hook that sees each batch of accepted rows (catalog items use it).
    """
    ref = ObjectRef(bucket, key, version_id, etag.strip('"') if etag else None, size)
    result, ref = _process(s3, settings, ref, deadline, valid_rows_hook)
    processed_at = (now or _utc_now)()
    record(
        manifest_table, manifest_item(result, ref, policy=settings.policy.value, processed_at=processed_at)
    )
    logger.info(
        "%s s3://%s/%s (%s): %s%s",
        result.status.value,
        bucket,
        key,
        result.version,
        f"{result.rows_valid:,} of {result.rows_total:,} rows curated",
        f"; {result.reason}" if result.reason else "",
        extra={"ingest": result.to_dict()},
    )
    return result


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _process(
    s3: S3Client,
    settings: IngestSettings,
    ref: ObjectRef,
    deadline: Deadline | None,
    hooks: HookFactory | None = None,
) -> tuple[IngestResult, ObjectRef]:
    kind = layout.kind_for_key(ref.key)
    tag = layout.version_tag(ref.version_id, ref.etag) if (ref.version_id or ref.etag) else "unknown"

    def skip(reason: str, status: Status = Status.SKIPPED) -> tuple[IngestResult, ObjectRef]:
        kind_name = kind.value if kind else None
        return IngestResult(ref.bucket, ref.key, tag, status, reason, kind=kind_name), ref

    if ref.bucket != settings.ingest_bucket:
        return skip(f"not the ingest bucket ({settings.ingest_bucket})")
    if kind is None:
        return skip("key is outside the catalog/ and transactions/ prefixes")
    if ref.key.endswith("/"):
        return skip("folder placeholder (key ends with '/')")
    if ref.size == 0:
        return skip("zero-byte object")
    if deadline is not None and deadline() < settings.safety_margin_s:
        return skip("no time left to start; the Glue job validates this file", Status.HANDED_OFF)

    request: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        request["VersionId"] = ref.version_id
    elif ref.etag:
        request["IfMatch"] = f'"{ref.etag}"'
    try:
        response = s3.get_object(**request)
    except Exception as exc:
        code = error_code(exc)
        if code in GONE_CODES:
            return skip(f"object no longer exists ({code}): deleted before processing")
        if code in SUPERSEDED_CODES:
            return skip("object was overwritten before processing; the new upload has its own event")
        raise
    ref = replace(
        ref,
        etag=str(response.get("ETag", ref.etag or "")).strip('"') or ref.etag,
        size=int(response.get("ContentLength", ref.size or 0)),
        version_id=ref.version_id or response.get("VersionId"),
    )
    tag = layout.version_tag(ref.version_id, ref.etag)
    if ref.size == 0:
        response["Body"].close()
        return skip("zero-byte object")
    modified = response.get("LastModified")
    ingest_date = (modified.astimezone(UTC) if isinstance(modified, datetime) else _utc_now()).date()
    raw = SourceStream(
        s3, request, response, deadline=deadline, margin_s=settings.safety_margin_s, read_ahead=True
    )
    source: Source = HeaderPrepended(raw, layout.STREAM_HEADER) if layout.is_event_stream(ref.key) else raw
    hook = hooks(kind, ref, tag) if hooks is not None else None
    run = _Run(
        s3, settings, ref, kind, tag, layout.curated_key(kind, ingest_date, ref.key, tag), source, hook
    )
    try:
        report = validate_stream(
            cast(BinaryIO, source),  # the validator only calls read(n)
            kind,
            name=f"s3://{ref.bucket}/{ref.key}",
            max_errors=settings.max_report_errors,
            on_batch=run.on_batch,
        )
    except OutOfTime as exc:
        run.abort()
        reason = f"time limit near ({exc}); the Glue job validates this file"
        result = IngestResult(
            ref.bucket, ref.key, tag, Status.HANDED_OFF, reason, kind=kind.value, bytes_read=source.bytes_read
        )
        return result, ref
    except BaseException:
        run.abort()
        raise
    finally:
        source.close()
    try:
        return run.finish(run.shifted_report(report)), ref
    except BaseException:
        run.abort()
        raise


class _Run:
    """The outputs of one object version while it streams, and the decision at its end."""

    def __init__(
        self,
        s3: S3Client,
        settings: IngestSettings,
        ref: ObjectRef,
        kind: Kind,
        tag: str,
        curated_key: str,
        source: Source,
        hook: RowsHook | None = None,
    ) -> None:
        self.s3 = s3
        self.settings = settings
        self.ref = ref
        self.kind = kind
        self.tag = tag
        self.curated_key = curated_key
        self.quarantine_key = layout.quarantine_key(ref.key)
        self.source = source
        self.hook = hook
        # Lines the reader put in front of the object (a header for stream objects): reported lines are
        # shifted back by this much, so they are the object's own.
        self.line_offset = source.line_offset if isinstance(source, HeaderPrepended) else 0
        lineage = {"source-key": ref.key, "source-version": tag}
        curated_sink = MultipartWriter(
            s3, settings.curated_bucket, curated_key, part_bytes=settings.part_bytes, metadata=lineage
        )
        self.curated = CuratedWriter(curated_sink, kind, row_group_rows=settings.row_group_rows)
        self.rejected: quarantine.RejectedRecordsWriter | None = None
        if settings.policy is Policy.KEEP_GOOD_ROWS:  # reject-file copies the whole object instead
            self.rejected = quarantine.RejectedRecordsWriter(
                MultipartWriter(
                    s3,
                    ref.bucket,
                    self.quarantine_key,
                    part_bytes=settings.part_bytes,
                    content_type="text/csv",
                    metadata=lineage,
                )
            )

    def on_batch(self, batch: ValidatedBatch) -> None:
        if self.line_offset:
            batch = _shift_lines(batch, self.line_offset)
        if batch.valid.num_rows:
            self.curated.add_batch(batch, self.ref.key, self.tag)
            if self.hook is not None:
                self.hook.add(batch.valid)
        if batch.rejected and self.rejected is not None:
            self.rejected.add(self.source.header_line, batch.rejected)

    def abort(self) -> None:
        self.curated.abort()
        if self.rejected is not None:
            self.rejected.abort()

    def shifted_report(self, report: ValidationReport) -> ValidationReport:
        """The report with line numbers of the object (file-level errors on line 1 stay there)."""
        if self.line_offset:
            offset = self.line_offset
            report.errors = [
                replace(e, line=e.line - offset) if e.line > offset else e for e in report.errors
            ]
        return report

    def finish(self, report: ValidationReport) -> IngestResult:
        """Keep or drop each output by the outcome, then write the error report where one is due."""
        bad = report.rows_total - report.rows_valid
        whole_file = report.unusable or (bad > 0 and self.settings.policy is Policy.REJECT_FILE)
        if self.hook is not None:
            self.hook.close(kept=not whole_file and report.rows_valid > 0)
        if whole_file or report.rows_valid == 0:
            self.curated.abort()
            curated_key = None
        else:
            self.curated.complete()
            curated_key = self.curated_key
        if whole_file:
            status, reason, quarantined = Status.REJECTED, _whole_file_reason(report), report.rows_total
            if self.rejected is not None:
                self.rejected.abort()
            source = {"Bucket": self.ref.bucket, "Key": self.ref.key}
            if self.ref.version_id:
                source["VersionId"] = self.ref.version_id
            quarantine.copy_whole(self.s3, source, self.ref.bucket, self.quarantine_key)
        elif bad:
            status = Status.PARTIAL if report.rows_valid else Status.REJECTED
            reason, quarantined = f"{bad:,} row(s) quarantined", bad
            assert self.rejected is not None
            self.rejected.complete()
            if missing := self.rejected.records_without_bytes:
                reason += f" ({missing:,} too long to copy: see the source version)"
        else:
            if self.rejected is not None:
                self.rejected.abort()  # nothing was written: no upload was started
            return self._result(report, Status.ACCEPTED, "", 0, curated_key, None)
        errors_key = layout.errors_key(self.ref.key)
        result = self._result(report, status, reason, quarantined, curated_key, errors_key)
        document = quarantine.error_report(
            report,
            bucket=self.ref.bucket,
            key=self.ref.key,
            version=self.tag,
            status=status.value,
            policy=self.settings.policy.value,
            rows_quarantined=quarantined,
            quarantine_key=self.quarantine_key,
            whole_file=whole_file,
        )
        quarantine.put_report(self.s3, self.ref.bucket, errors_key, document)
        return result

    def _result(
        self,
        report: ValidationReport,
        status: Status,
        reason: str,
        quarantined: int,
        curated_key: str | None,
        errors_key: str | None,
    ) -> IngestResult:
        return IngestResult(
            bucket=self.ref.bucket,
            key=self.ref.key,
            version=self.tag,
            status=status,
            reason=reason,
            kind=self.kind.value,
            rows_total=report.rows_total,
            rows_valid=report.rows_valid if curated_key else 0,
            rows_quarantined=quarantined,
            curated_bucket=self.settings.curated_bucket if curated_key else None,
            curated_key=curated_key,
            quarantine_key=self.quarantine_key if errors_key else None,
            errors_key=errors_key,
            bytes_read=self.source.bytes_read,
        )


def _shift_lines(batch: ValidatedBatch, offset: int) -> ValidatedBatch:
    return replace(
        batch,
        errors=[replace(e, line=e.line - offset) for e in batch.errors],
        rejected=[replace(r, line=r.line - offset) for r in batch.rejected],
        lines=batch.lines - offset,
    )


def _whole_file_reason(report: ValidationReport) -> str:
    if report.unusable:
        first = report.errors[0].reason if report.errors else "unusable"
        return f"unusable file: {first}"
    return f"reject-file policy: {report.rows_total - report.rows_valid:,} invalid row(s)"
