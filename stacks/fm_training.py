"""SageMaker FM training for the state machine: the training role, the image table, the training task.

CloudFormation has no training-job resource, so a job is started by Step Functions
(`SageMakerCreateTrainingJob`, `.sync`). This construct holds what does not depend on a run: the role
SageMaker assumes (least privilege: read a run's FM channels, write under the artifacts bucket's `fm/`,
pull the FM image, write the job's logs) and a CfnMapping region → account of the FM image, taken from the
SageMaker SDK's own table (`training/fm/image_uri_config/`, read by path: stacks never import runtime code).
`training_task()` builds the task for a state machine (the orchestration issue's); the run id (and the
run's feature_dim, from its manifest) come from the execution's state.

The task's request mirrors `training/fm/sagemaker.py::build_training_job_request` (the boto3 route):
File mode, recordIO-protobuf channels `train`/`test` under `s3://<curated>/curated/runs/<run id>/fm/`,
output `s3://<artifacts>/fm/<run id>/`, network isolation, ShardedByS3Key and inter-container encryption
with more than one instance, managed Spot with checkpoints as an option. CDK's task has no Spot or
inter-container encryption props, so those keys are added to its rendered Parameters (`_FmTrainingTask`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnMapping, Duration, Size, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from recsys import contracts

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_TABLE = REPO_ROOT / "training" / "fm" / "image_uri_config" / "factorization-machines.json"
IMAGE_VERSION = "1"
CONTENT_TYPE = "application/x-recordio-protobuf"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
RUNS_PREFIX = contracts.CURATED_PREFIX + contracts.RUNS_PREFIX
CHANNELS = {"train": contracts.RUN_FM_TRAIN_DIR, "test": contracts.RUN_FM_TEST_DIR}
_INSTANCE_TYPE = re.compile(r"^(ml\.)?(?P<family>[a-z]+\d+[a-z-]*)\.[a-z0-9]+$")
_ACCELERATED = re.compile(r"^(p|g|inf|trn|dl)\d")


def image_registries(path: Path = IMAGE_TABLE) -> dict[str, str]:
    """Region → account of the FM image (version "1", training scope) from the SDK's vendored table."""
    table: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "training" not in table["scope"]:
        raise ValueError(f"{path}: the table's scope has no 'training'")
    version = table["versions"][IMAGE_VERSION]
    registries: dict[str, str] = version["registries"]
    return dict(sorted(registries.items()))


def image_repository(path: Path = IMAGE_TABLE) -> str:
    repository: str = json.loads(path.read_text(encoding="utf-8"))["versions"][IMAGE_VERSION]["repository"]
    return repository


def cdk_instance_type(name: str) -> ec2.InstanceType:
    """`ml.c5.xlarge` or `c5.xlarge` → InstanceType("c5.xlarge"): the task adds `ml.` itself (once)."""
    if name.startswith("ml.ml."):
        raise ValueError(f"FM instance type {name!r}: doubled 'ml.' prefix (write ml.c5.xlarge or c5.xlarge)")
    match = _INSTANCE_TYPE.match(name)
    if not match:
        raise ValueError(f"FM instance type {name!r}: not a SageMaker instance type like ml.c5.xlarge")
    if _ACCELERATED.match(match["family"]):
        raise ValueError(f"FM instance type {name!r}: FM trains sparse data on CPU instances only")
    return ec2.InstanceType(name.removeprefix("ml."))


class _RunLocation(tasks.S3Location):
    """An S3 URI built from the state (States.Format) that grants nothing when bound.

    `S3Location.from_json_expression` would grant the role s3:GetObject, s3:ListBucket and s3:PutObject
    on every bucket ("*"), since it cannot know the bucket; the construct grants the run prefixes itself."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self._uri = uri

    def bind(
        self, task: tasks.ISageMakerTask, *, for_reading: bool | None = None, for_writing: bool | None = None
    ) -> tasks.S3LocationConfig:
        return tasks.S3LocationConfig(uri=self._uri)


class _FmTrainingTask(tasks.SageMakerCreateTrainingJob):
    """The CDK task plus request keys it has no props for (Spot, checkpoints, inter-container encryption).

    KMS keys go this way too: given to the CDK props, the task grants the role kms:ReEncrypt* and
    kms:GenerateDataKey* (wildcard actions); the construct grants the exact actions itself instead."""

    def __init__(
        self, scope: Construct, construct_id: str, *, extra: Mapping[str, Any], **props: Any
    ) -> None:
        super().__init__(scope, construct_id, **props)
        self._extra = dict(extra)

    def to_state_json(self, query_language: sfn.QueryLanguage | None = None) -> Any:
        state = dict(super().to_state_json(query_language))
        parameters = dict(state["Parameters"])
        for key, value in self._extra.items():
            current = parameters.get(key)
            parameters[key] = {**current, **value} if isinstance(current, Mapping) else value
        state["Parameters"] = parameters
        return state


class FmTraining(Construct):
    """The SageMaker training role and the image mapping; `training_task()` builds the Step Functions task.

    Hyperparameters are strings, as SageMaker wants them; `feature_dim` is not among them, it is read from
    the execution's state (the run's manifest says it), all others come from stage config."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        instance_type: str,
        instance_count: int,
        volume_size_gb: int,
        max_runtime: Duration,
        spot: bool,
        hyperparameters: Mapping[str, str],
        max_wait: Duration | None = None,
        kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if "feature_dim" in hyperparameters:
            raise ValueError("hyperparameters: feature_dim comes from the run's manifest, not from config")
        bad = sorted(k for k, v in hyperparameters.items() if not isinstance(v, str))
        if bad:
            raise ValueError(
                f"hyperparameters must be strings (SageMaker's HyperParameters): {', '.join(bad)}"
            )
        if instance_count < 1 or volume_size_gb < 1:
            raise ValueError("instance_count and volume_size_gb must be at least 1")
        if spot and max_wait is not None and max_wait.to_seconds() < max_runtime.to_seconds():
            raise ValueError("max_wait must be at least max_runtime (the Spot wait plus the run time)")
        self.curated_bucket, self.artifacts_bucket = curated_bucket, artifacts_bucket
        self.instance_type = cdk_instance_type(instance_type)
        family = self.instance_type.to_string().split(".")[0]
        self._instance_storage = "d" in re.sub(r"^[a-z]+\d+", "", family)
        self.instance_count, self.volume_size = instance_count, Size.gibibytes(volume_size_gb)
        self.max_runtime, self.spot = max_runtime, spot
        self.max_wait = max_wait or Duration.seconds(2 * max_runtime.to_seconds())
        self.hyperparameters = dict(hyperparameters)
        self.kms_key = kms_key

        self.image_accounts = CfnMapping(
            self,
            "ImageAccounts",
            mapping={region: {"account": account} for region, account in image_registries().items()},
        )
        self.image_account = self.image_accounts.find_in_map(Aws.REGION, "account")
        self.repository = image_repository()
        self.image_uri = (
            f"{self.image_account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/{self.repository}:{IMAGE_VERSION}"
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker FM training: reads a run's FM channels, writes under fm/, pulls the image",
        )
        self._grant_data()
        self._grant_runtime()

    # --- permissions ---------------------------------------------------------------------------------

    def _grant_data(self) -> None:
        """Channels: read curated/runs/*/fm/*; output and checkpoints: fm/* of the artifacts bucket."""
        curated, artifacts = self.curated_bucket, self.artifacts_bucket
        channels = f"{RUNS_PREFIX}*/fm/*"
        output = f"{contracts.FM_PREFIX}*"
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[curated.arn_for_objects(channels)]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [channels]}},
            ),
            # GetObject: a Spot job that resumes reads its checkpoints back.
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[artifacts.arn_for_objects(output)],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [output]}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        reasons = {
            curated: (
                channels,
                "A run's FM channels only (curated/runs/<run id>/fm/); run ids are chosen at start.",
            ),
            artifacts: (output, "The FM output prefix only (fm/<run id>/); run ids are chosen at start."),
        }
        for bucket, (prefix, reason) in reasons.items():
            logical_id = Stack.of(self).resolve(bucket.node.default_child.logical_id)  # type: ignore[union-attr]
            Validations.of(self.role).acknowledge(
                Acknowledgment(id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}]", reason=reason)
            )
        keys: dict[str, list[str]] = {}
        if curated.encryption_key is not None:
            keys.setdefault(curated.encryption_key.key_arn, []).append("kms:Decrypt")
        if artifacts.encryption_key is not None:
            keys.setdefault(artifacts.encryption_key.key_arn, []).extend(
                ["kms:Decrypt", "kms:GenerateDataKey"]
            )
        if self.kms_key is not None:
            # The job's output and training volume; SageMaker grants the volume key to EC2 (CreateGrant).
            keys.setdefault(self.kms_key.key_arn, []).extend(
                ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"]
            )
        for key_arn, actions in keys.items():
            self.role.add_to_policy(iam.PolicyStatement(actions=sorted(set(actions)), resources=[key_arn]))

    def _grant_runtime(self) -> None:
        """The FM image (in AWS's account for the region), the job's logs and metrics."""
        repository = f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{self.image_account}:repository/{self.repository}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[repository],
            )
        )
        log_group = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{LOG_GROUP}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"], resources=[log_group]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{log_group}:log-stream:*"]
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
                "permissions (metrics limited to SageMaker's training namespace by condition); the image "
                "pull itself is limited to the FM repository.",
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                f"log-group:{LOG_GROUP}:log-stream:*]",
                reason="SageMaker names one log stream per job and host (<job>/algo-<n>-<time>) in its "
                "fixed log group.",
            )
        )

    # --- the task ------------------------------------------------------------------------------------

    def training_task(
        self,
        scope: Construct,
        construct_id: str,
        *,
        run_id_path: str = "$.run_id",
        feature_dim_path: str = "$.feature_dim",
        result_path: str = "$.fm_training",
    ) -> tasks.SageMakerCreateTrainingJob:
        """The `.sync` CreateTrainingJob task for the run named at `run_id_path` of the state.

        The job name is `recsys-fm-<UUID>` (unique, whatever the run id's characters); the job's
        description lands at `result_path` as {job_name, model_artifacts, metrics}."""
        run_id = sfn.JsonPath.string_at(run_id_path)
        curated, artifacts = self.curated_bucket.bucket_name, self.artifacts_bucket.bucket_name
        distribution = (
            tasks.S3DataDistributionType.SHARDED_BY_S3_KEY
            if self.instance_count > 1
            else tasks.S3DataDistributionType.FULLY_REPLICATED
        )
        channels = [
            tasks.Channel(
                channel_name=name,
                content_type=CONTENT_TYPE,
                data_source=tasks.DataSource(
                    s3_data_source=tasks.S3DataSource(
                        s3_location=_RunLocation(
                            sfn.JsonPath.format(f"s3://{curated}/{RUNS_PREFIX}{{}}/{folder}", run_id)
                        ),
                        s3_data_type=tasks.S3DataType.S3_PREFIX,
                        s3_data_distribution_type=distribution,
                    )
                ),
            )
            for name, folder in CHANNELS.items()
        ]
        output = sfn.JsonPath.format(f"s3://{artifacts}/{contracts.FM_PREFIX}{{}}/", run_id)
        extra: dict[str, Any] = {}
        if self.instance_count > 1:
            extra["EnableInterContainerTrafficEncryption"] = True
        if self.spot:
            extra["EnableManagedSpotTraining"] = True
            extra["StoppingCondition"] = {"MaxWaitTimeInSeconds": int(self.max_wait.to_seconds())}
            checkpoints = f"s3://{artifacts}/{contracts.FM_PREFIX}{{}}/checkpoints/{{}}/"
            extra["CheckpointConfig"] = {
                "S3Uri.$": f"States.Format('{checkpoints}', {run_id_path}, $$.Execution.Name)"
            }
        if self.kms_key is not None:
            extra["OutputDataConfig"] = {"KmsKeyId": self.kms_key.key_arn}
            if not self._instance_storage:  # local NVMe (c5d, m5d, …) refuses a volume key: always encrypted
                extra["ResourceConfig"] = {"VolumeKmsKeyId": self.kms_key.key_arn}
        return _FmTrainingTask(
            scope,
            construct_id,
            extra=extra,
            training_job_name=sfn.JsonPath.format(f"{contracts.FM_JOB_NAME_PREFIX}{{}}", sfn.JsonPath.uuid()),
            role=self.role,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=tasks.DockerImage.from_registry(self.image_uri),
                training_input_mode=tasks.InputMode.FILE,
            ),
            hyperparameters={
                "feature_dim": sfn.JsonPath.format("{}", sfn.JsonPath.string_at(feature_dim_path)),
                **self.hyperparameters,
            },
            input_data_config=channels,
            output_data_config=tasks.OutputDataConfig(s3_output_location=_RunLocation(output)),
            resource_config=tasks.ResourceConfig(
                instance_count=self.instance_count,
                instance_type=self.instance_type,
                volume_size=self.volume_size,
            ),
            stopping_condition=tasks.StoppingCondition(max_runtime=self.max_runtime),
            enable_network_isolation=True,
            tags={"project": "recsys-pipeline", contracts.FM_RUN_ID_TAG: run_id},
            result_selector={
                "job_name.$": "$.TrainingJobName",
                "model_artifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
                "metrics.$": "$.FinalMetricDataList",
            },
            result_path=result_path,
        )
