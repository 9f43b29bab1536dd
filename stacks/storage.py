"""The data lake: ingest, curated and artifacts buckets, plus the bucket their access logs go to.

Every data bucket shares one security baseline (versioned, SSE-S3, no public access, TLS 1.2+ only,
server access logs), so "nothing is ever lost" (DESIGN.md §2) holds for raw uploads, curated data and
models alike; lifecycle rules keep the undo window and the quarantine from growing without bound.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from recsys import contracts

_MIN_TLS_VERSION = 1.2


class DataLake(Construct):
    """Buckets of the pipeline, exposed as attributes; grants and wiring belong to the stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        auto_delete_objects: bool,
        quarantine_expiry: Duration,
        noncurrent_version_expiry: Duration,
        abort_incomplete_upload_after: Duration,
        access_log_retention: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self._auto_delete_objects = auto_delete_objects

        # SSE-S3 because S3 server access logging cannot deliver into an SSE-KMS bucket. It needs no access
        # logs of its own (that would loop); cdk-nag's S1 already accepts a bucket that is the log
        # destination of another bucket in the stack, so no acknowledgement is needed.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireLogs", expiration=access_log_retention)],
            **self._baseline(),
        )

        tidy = s3.LifecycleRule(
            id="TidyVersionsAndUploads",
            noncurrent_version_expiration=noncurrent_version_expiry,
            abort_incomplete_multipart_upload_after=abort_incomplete_upload_after,
            expired_object_delete_marker=True,
        )
        # Expiring a current version leaves a noncurrent one: quarantined rows are gone for good only
        # after quarantine_expiry + noncurrent_version_expiry.
        quarantine = s3.LifecycleRule(
            id="ExpireQuarantine", prefix=contracts.QUARANTINE_PREFIX, expiration=quarantine_expiry
        )
        self.ingest_bucket = self._data_bucket("IngestBucket", "ingest/", [quarantine, tidy])
        self.curated_bucket = self._data_bucket("CuratedBucket", "curated/", [tidy])
        self.artifacts_bucket = self._data_bucket("ArtifactsBucket", "artifacts/", [tidy])

    def _data_bucket(self, construct_id: str, log_prefix: str, rules: list[s3.LifecycleRule]) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=rules,
            **self._baseline(),
        )

    def _baseline(self) -> dict[str, object]:
        """Settings every bucket shares, including the access-log bucket."""
        return {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "minimum_tls_version": _MIN_TLS_VERSION,
            "removal_policy": self._removal_policy,
            "auto_delete_objects": self._auto_delete_objects,
        }
