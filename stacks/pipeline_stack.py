"""The composition stack: the only place that instantiates constructs and wires them together."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Tags
from constructs import Construct

from recsys import contracts
from stacks.config import StageConfig
from stacks.storage import DataLake

_REMOVAL_POLICIES = {"destroy": RemovalPolicy.DESTROY, "retain": RemovalPolicy.RETAIN}


class RecsysPipelineStack(Stack):
    """Everything of one stage. Environment-agnostic, so `cdk synth` needs no credentials or lookups."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Recommender pipeline ({config.name})",
            termination_protection=config.termination_protection,
            **kwargs,
        )
        Tags.of(self).add("project", "recsys-pipeline")
        Tags.of(self).add("stage", config.name)

        self.data_lake = DataLake(
            self,
            "DataLake",
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
            auto_delete_objects=config.auto_delete_objects,
            quarantine_expiry=Duration.days(config.quarantine_expiry_days),
            noncurrent_version_expiry=Duration.days(config.noncurrent_version_expiry_days),
            abort_incomplete_upload_after=Duration.days(config.abort_incomplete_upload_days),
            access_log_retention=Duration.days(config.access_log_retention_days),
        )

        lake = self.data_lake
        uploads = f"{contracts.CATALOG_PREFIX}*.csv and {contracts.TRANSACTIONS_PREFIX}*.csv"
        ingest_name = lake.ingest_bucket.bucket_name
        CfnOutput(self, "IngestBucketName", value=ingest_name, description=f"Upload {uploads} here")
        CfnOutput(self, "CuratedBucketName", value=lake.curated_bucket.bucket_name)
        CfnOutput(self, "ArtifactsBucketName", value=lake.artifacts_bucket.bucket_name)
        CfnOutput(self, "AccessLogBucketName", value=lake.access_log_bucket.bucket_name)
