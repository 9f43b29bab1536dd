"""The Glue preprocessing job (glue/job.py on AWS Glue 5.0), its encryption, and the catalog of its outputs.

The job reads the curated ingest Parquet (`s3://<curated>/curated/ingest/`) and writes one run under
`s3://<curated>/curated/runs/<run id>/` (layout in `recsys/contracts.py`). Its role gets no S3 data
permissions here: the stack grants the prefixes, so every S3 grant of the pipeline is in one place.

Packaging, without Docker: the entry script is a file asset; `--extra-py-files` is a zip of the `recsys`
and `glue` packages (Python sources only) written here at synth with fixed timestamps and sorted entries,
so the asset hash changes only when a source changes. It is written by this module rather than left to CDK
because Glue's `Code.from_asset` accepts files only, not folders.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from recsys import contracts
from stacks.encryption import allow_cloudwatch_logs

REPO_ROOT = Path(__file__).resolve().parent.parent
JOB_SCRIPT = REPO_ROOT / "glue" / "job.py"
PACKAGES = ("recsys", "glue")
"""Shipped to the executors in the `--extra-py-files` zip."""
RUNS_URI_TEMPLATE = "runs/${run_id}/"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no build time in the asset hash
# Glue 5.0 (Python 3.11) ships numpy, pandas, pyarrow and boto3. We assume its scipy and protobuf are not the
# versions `glue.fm_channel` (scipy.sparse) and `recsys.recordio` (protobuf message classes built at run
# time) are tested with, so both are installed from PyPI at job start, pinned as in
# requirements/constraints.txt (Glue's default network reaches PyPI; a VPC connection would need a route).
ADDITIONAL_PYTHON_MODULES = ("protobuf==7.36.2", "scipy==1.17.1")
GLUE_LOG_GROUPS = "/aws-glue/jobs/*"
"""Glue names its log groups itself: /aws-glue/jobs/{output,error,logs-v2}, suffixed by the security
configuration when logs are encrypted; no prop chooses them."""

_BIGINT, _STRING, _DOUBLE = glue.Schema.BIG_INT, glue.Schema.STRING, glue.Schema.DOUBLE
_INT, _BOOLEAN = glue.Schema.INTEGER, glue.Schema.BOOLEAN
# Columns of the run outputs, as glue/ writes them (interactions: glue.user_outputs.INTERACTIONS_SCHEMA).
TABLES: Mapping[str, tuple[str, Mapping[str, glue.Type]]] = {
    "interactions": (
        contracts.RUN_INTERACTIONS_DIR,
        {
            "user_idx": _BIGINT,
            "item_idx": _BIGINT,
            "user_id": _STRING,
            "item_id": _STRING,
            "timestamp": _BIGINT,
            "rating": _DOUBLE,
            "event_type": _STRING,
            "events": _BIGINT,
            "label": _INT,
        },
    ),
    "user_map": (contracts.RUN_USER_MAP_DIR, {"user_idx": _BIGINT, "user_id": _STRING, "is_new": _BOOLEAN}),
    "item_map": (
        contracts.RUN_ITEM_MAP_DIR,
        {
            "item_idx": _BIGINT,
            "item_id": _STRING,
            "title": _STRING,
            "categories": _STRING,
            "attributes": _STRING,
            "in_catalog": _BOOLEAN,
            "is_new": _BOOLEAN,
        },
    ),
    "popularity": (
        contracts.RUN_POPULARITY_DIR,
        {
            "item_idx": _BIGINT,
            "item_id": _STRING,
            "count": _BIGINT,
            "positives": _BIGINT,
            "train_count": _BIGINT,
            "train_positives": _BIGINT,
        },
    ),
}
RUN_ID_PARTITION = "run_id"
SPLIT_PARTITION = "split"
SPLITS = ("train", "test")


def build_python_zip(target: Path, packages: tuple[str, ...] = PACKAGES, root: Path = REPO_ROOT) -> Path:
    """Zip the packages' .py files (no __pycache__, no data), reproducibly: same sources, same bytes."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            for source in sorted((root / package).rglob("*.py")):
                relative = source.relative_to(root)
                if "__pycache__" in relative.parts:
                    continue
                info = zipfile.ZipInfo(relative.as_posix(), date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, source.read_bytes())
    return target


class Preprocessing(Construct):
    """The Glue job, its role, KMS key and security configuration, and the output catalog; as attributes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        curated_bucket: s3.IBucket,
        worker_type: glue.WorkerType,
        worker_count: int,
        timeout: Duration,
        database_name: str,
        removal_policy: RemovalPolicy,
        max_retries: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.input_uri = f"s3://{curated_bucket.bucket_name}/{contracts.INGEST_CURATED_PREFIX}"
        self.output_uri = f"s3://{curated_bucket.bucket_name}/{contracts.CURATED_PREFIX}"
        self.runs_prefix = contracts.CURATED_PREFIX + contracts.RUNS_PREFIX
        self._encryption(removal_policy)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue preprocessing job: its logs and key here; S3 prefixes granted in the stack",
        )
        self._grant_runtime(self.role)

        # Staged into cdk.out when the asset is created; the temporary folder goes when the process exits.
        self._staging = tempfile.TemporaryDirectory(prefix="recsys-glue-")
        self.python_zip = build_python_zip(Path(self._staging.name) / "recsys_glue.zip")
        self.job = glue.PySparkEtlJob(
            self,
            "Job",
            role=self.role,
            script=glue.Code.from_asset(str(JOB_SCRIPT)),
            extra_python_files=[glue.Code.from_asset(str(self.python_zip))],
            glue_version=glue.GlueVersion.V5_0,
            worker_configuration=glue.WorkerConfiguration(
                worker_type=worker_type, number_of_workers=worker_count
            ),
            timeout=timeout,
            max_retries=max_retries,
            security_configuration=self.security_configuration,
            continuous_logging=glue.ContinuousLoggingProps(enabled=True),
            description="Preprocessing: curated ingest Parquet -> a run of FM and DSSTNE training sets",
            default_arguments={
                f"--{contracts.GLUE_ARG_INPUT_URI}": self.input_uri,
                f"--{contracts.GLUE_ARG_OUTPUT_URI}": self.output_uri,
                "--additional-python-modules": ",".join(ADDITIONAL_PYTHON_MODULES),
            },
        )
        self._acknowledge_asset_read()
        self._catalog(curated_bucket, database_name, removal_policy)

    def _encryption(self, removal_policy: RemovalPolicy) -> None:
        """One rotating key for the job's CloudWatch logs and its bookmarks; S3 data stays SSE-S3."""
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="Glue preprocessing: CloudWatch logs and job bookmarks",
            removal_policy=removal_policy,
        )
        # CloudWatch Logs encrypts the job's log groups with the key.
        allow_cloudwatch_logs(self.key)
        self.security_configuration = glue.SecurityConfiguration(
            self,
            "SecurityConfiguration",
            s3_encryption=glue.S3Encryption.s3_managed(),  # the buckets' own SSE-S3
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(self.key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(self.key),
        )

    def _grant_runtime(self, role: iam.Role) -> None:
        """Logs, the key, metrics: what every run needs whatever it reads; no wildcard actions."""
        stack = Stack.of(self)
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=GLUE_LOG_GROUPS,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[log_groups],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                f"log-group:{GLUE_LOG_GROUPS}]",
                reason="Glue chooses its log group names (/aws-glue/jobs/..., suffixed by the security "
                "configuration); limited to Glue's job log groups.",
            )
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="cloudwatch:PutMetricData has no resource-level permissions; limited to the Glue "
                "namespace by condition (job metrics are always on).",
            )
        )

    def _acknowledge_asset_read(self) -> None:
        """Glue's Code.bind grants the role read on the CDK assets bucket (script and zip)."""
        assets = "arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>"
        reason = (
            "Read of the CDK bootstrap assets bucket, granted by the Glue L2 for the job script and the "
            "--extra-py-files zip; the asset keys are content hashes."
        )
        for detail in (
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            f"Resource::{assets}/*",
        ):
            Validations.of(self.role).acknowledge(
                Acknowledgment(id=f"AwsSolutions-IAM5[{detail}]", reason=reason)
            )

    def _catalog(self, bucket: s3.IBucket, database_name: str, removal_policy: RemovalPolicy) -> None:
        """A database and one table per output; the run id is a projected partition, so no crawler is needed.

        Athena queries name the run: `SELECT … FROM interactions WHERE run_id = '<id>' AND split = 'train'`
        (an injected projection needs the value in the WHERE clause).
        """
        self.database = glue.Database(self, "Database", database_name=database_name)
        self.database.apply_removal_policy(removal_policy)
        runs = f"s3://{bucket.bucket_name}/{self.runs_prefix}"
        self.tables: dict[str, glue.S3Table] = {}
        for name, (folder, columns) in TABLES.items():
            location = f"{runs}${{{RUN_ID_PARTITION}}}/{folder}"
            projection = {"projection.enabled": "true", f"projection.{RUN_ID_PARTITION}.type": "injected"}
            partitions = [glue.Column(name=RUN_ID_PARTITION, type=_STRING)]
            if name == "interactions":
                location += f"{SPLIT_PARTITION}=${{{SPLIT_PARTITION}}}/"
                projection[f"projection.{SPLIT_PARTITION}.type"] = "enum"
                projection[f"projection.{SPLIT_PARTITION}.values"] = ",".join(SPLITS)
                partitions.append(glue.Column(name=SPLIT_PARTITION, type=_STRING))
            self.tables[name] = glue.S3Table(
                self,
                f"{name.title().replace('_', '')}Table",
                database=self.database,
                table_name=name,
                storage=glue.S3TableStorage.from_bucket(bucket),
                s3_prefix=self.runs_prefix,
                data_format=glue.DataFormat.PARQUET,
                columns=[glue.Column(name=column, type=kind) for column, kind in columns.items()],
                partition_keys=partitions,
                parameters={**projection, "storage.location.template": location},
                description=f"Preprocessing output {folder} of every run (partition {RUN_ID_PARTITION})",
            )
