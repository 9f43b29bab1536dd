"""The composition stack: the only place that instantiates constructs and wires them together."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Tags, Validations
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from recsys import contracts
from stacks.config import StageConfig
from stacks.dsstne import DsstneBatch
from stacks.preprocessing import Preprocessing
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

        self.dsstne = DsstneBatch(
            self,
            "Dsstne",
            instance_types=config.dsstne_instance_types,
            spot=config.dsstne_spot,
            maxv_cpus=config.dsstne_max_vcpus,
            multi_gpu_count=config.dsstne_multi_gpu_count,
            environment={
                contracts.CURATED_BUCKET_ENV: lake.curated_bucket.bucket_name,
                contracts.ARTIFACTS_BUCKET_ENV: lake.artifacts_bucket.bucket_name,
            },
            flow_log_bucket=lake.access_log_bucket,
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
        )
        self._grant_dsstne_run_prefixes(self.dsstne.job_role, lake.curated_bucket, lake.artifacts_bucket)
        dsstne = self.dsstne
        CfnOutput(self, "DsstneJobQueueArn", value=dsstne.job_queue.job_queue_arn)
        CfnOutput(self, "DsstneJobDefinitionArn", value=dsstne.job_definition.job_definition_arn)
        CfnOutput(
            self, "DsstneMultiGpuJobDefinitionArn", value=dsstne.multi_gpu_job_definition.job_definition_arn
        )

        self.preprocessing = Preprocessing(
            self,
            "Preprocessing",
            curated_bucket=lake.curated_bucket,
            worker_type=getattr(glue.WorkerType, config.preprocessing_worker_type.replace(".", "_")),
            worker_count=config.preprocessing_worker_count,
            timeout=Duration.minutes(config.preprocessing_timeout_minutes),
            database_name=f"recsys_{config.name.replace('-', '_')}",
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
        )
        self._grant_preprocessing_prefixes(self.preprocessing.role, lake.curated_bucket)
        CfnOutput(self, "PreprocessingJobName", value=self.preprocessing.job.job_name)
        CfnOutput(self, "PreprocessingDatabaseName", value=self.preprocessing.database.database_name)

    def _grant_preprocessing_prefixes(self, role: iam.IRole, curated: s3.IBucket) -> None:
        """Read curated/ingest/*; read, write and delete under curated/runs/* (Spark's temporary files,
        a rerun's overwrite, runs/latest.json); list the bucket under those two prefixes only."""
        ingest = contracts.INGEST_CURATED_PREFIX
        runs = contracts.CURATED_PREFIX + contracts.RUNS_PREFIX
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[curated.arn_for_objects(f"{ingest}*")]),
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[curated.arn_for_objects(f"{runs}*")],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn],
                # Spark also lists and probes the folder names themselves, without the trailing slash.
                conditions={
                    "StringLike": {
                        "s3:prefix": [f"{ingest}*", ingest.rstrip("/"), f"{runs}*", runs.rstrip("/")]
                    }
                },
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        logical_id = self.resolve(curated.node.default_child.logical_id)  # type: ignore[union-attr]
        for prefix, reason in (
            (
                ingest,
                "Objects of the curated ingest prefix only (read); partitions are added by every upload.",
            ),
            (runs, "Objects of the preprocessing runs prefix only; run ids are chosen at start time."),
        ):
            Validations.of(role).acknowledge(
                Acknowledgment(id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]", reason=reason)
            )

    def _grant_dsstne_run_prefixes(self, role: iam.IRole, curated: s3.IBucket, artifacts: s3.IBucket) -> None:
        """Read curated/dsstne/*, write artifacts/dsstne/*, list both there only: what job.py calls."""
        prefix = contracts.DSSTNE_PREFIX
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[curated.arn_for_objects(f"{prefix}*")]),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
                resources=[artifacts.arn_for_objects(f"{prefix}*")],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn, artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        for bucket in (curated, artifacts):
            logical_id = self.resolve(bucket.node.default_child.logical_id)  # type: ignore[union-attr]
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]",
                    reason="Objects of the DSSTNE run prefix only; run ids are chosen at submit time.",
                )
            )
