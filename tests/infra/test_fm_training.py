"""SageMaker FM training infrastructure: the role, the image mapping, and the synthesized training request.

The task goes into a throwaway state machine (the real one is the orchestration issue's): once inside the
app's own stack, built from cdk.json's stage config exactly as app.py builds it, and in small stacks for the
variants (several instances, Spot, KMS). The definition string is resolved for a region by hand (Ref,
Fn::FindInMap, Fn::GetAtt) so the image URI can be compared with the runtime's `fm_image_uri`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from stacks.app_factory import build_app, stack_id
from stacks.config import ConfigError, StageConfig
from stacks.fm_training import IMAGE_TABLE, FmTraining, image_registries
from stacks.pipeline_stack import RecsysPipelineStack
from training.fm.hyperparameters import FmHyperparameters
from training.fm.image import fm_image_registries, fm_image_uri
from training.fm.sagemaker import build_training_job_request
from training.fm.settings import FmTrainSettings, SageMakerJobSettings

URL_SUFFIXES = {"cn-north-1": "amazonaws.com.cn", "cn-northwest-1": "amazonaws.com.cn"}
HYPERPARAMETERS = {"predictor_type": "binary_classifier", "num_factors": "64", "epochs": "20"}


def resolve(value: Any, template: dict[str, Any], region: str) -> Any:
    """Evaluate the intrinsics CDK puts in a definition string, for one region."""
    if isinstance(value, list):
        return [resolve(v, template, region) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        ref = value["Ref"]
        pseudo = {
            "AWS::Region": region,
            "AWS::Partition": "aws-cn" if region.startswith("cn-") else "aws",
            "AWS::URLSuffix": URL_SUFFIXES.get(region, "amazonaws.com"),
            "AWS::AccountId": "123456789012",
        }
        return pseudo.get(ref, f"<{ref}>")
    if set(value) == {"Fn::GetAtt"}:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if set(value) == {"Fn::FindInMap"}:
        name, key, attribute = resolve(value["Fn::FindInMap"], template, region)
        return template["Mappings"][name][key][attribute]
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, template, region)) for p in parts)
    return {k: resolve(v, template, region) for k, v in value.items()}


class Synth:
    """One template with a state machine around the FM task; `state(region)` is the task's ASL."""

    def __init__(self, stack: Stack, fm: FmTraining) -> None:
        self.fm = fm
        sfn.StateMachine(
            stack,
            "ThrowawayMachine",
            definition_body=sfn.DefinitionBody.from_chainable(fm.training_task(stack, "TrainFm")),
        )
        self.template = Template.from_stack(stack).to_json()

    def state(self, region: str = "us-east-1") -> dict[str, Any]:
        machines = [  # the throwaway one (a stack of the app also holds the pipeline's state machine)
            r
            for k, r in self.template["Resources"].items()
            if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("ThrowawayMachine")
        ]
        assert len(machines) == 1
        definition = resolve(machines[0]["Properties"]["DefinitionString"], self.template, region)
        state: dict[str, Any] = json.loads(definition)["States"]["TrainFm"]
        return state

    def role_statements(self) -> list[dict[str, Any]]:
        role_id = Stack.of(self.fm).resolve(self.fm.role.node.default_child.logical_id)  # type: ignore[union-attr]
        statements: list[dict[str, Any]] = []
        for resource in self.template["Resources"].values():
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
                statements += resource["Properties"]["PolicyDocument"]["Statement"]
        return statements


def small_stack(**props: Any) -> Synth:
    app = App(context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "FmTest")
    defaults: dict[str, Any] = {
        "curated_bucket": s3.Bucket(stack, "Curated"),
        "artifacts_bucket": s3.Bucket(stack, "Artifacts"),
        "instance_type": "ml.c5.xlarge",
        "instance_count": 1,
        "volume_size_gb": 30,
        "max_runtime": Duration.hours(1),
        "spot": False,
        "hyperparameters": HYPERPARAMETERS,
    }
    return Synth(stack, FmTraining(stack, "Fm", **{**defaults, **props}))


@pytest.fixture(scope="module")
def app_synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """The app's own stack per stage (built from cdk.json), with the task added in a throwaway machine."""
    synths = {}
    for stage in ("dev", "prod"):
        outdir = tmp_path_factory.mktemp(f"cdk.out-{stage}")
        app = build_app(
            context={"stage": stage, "aws:cdk:bundling-stacks": []}, outdir=str(outdir), nag=False
        )
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        synths[stage] = Synth(stack, stack.fm_training)
    return synths


@pytest.fixture(scope="module")
def small() -> Synth:
    return small_stack()


# --- the request ---------------------------------------------------------------------------------------


def test_run_job_integration(small: Synth) -> None:
    state = small.state()
    assert state["Type"] == "Task"
    assert state["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]
)
def test_the_image_per_region_is_the_runtimes(small: Synth, region: str) -> None:
    algorithm = small.state(region)["Parameters"]["AlgorithmSpecification"]
    assert algorithm == {"TrainingImage": fm_image_uri(region), "TrainingInputMode": "File"}


def test_the_mapping_is_the_sdks_table(small: Synth) -> None:
    mappings = small.template["Mappings"]
    (mapping,) = (m for m in mappings.values() if "us-east-1" in m)
    assert {region: row["account"] for region, row in mapping.items()} == fm_image_registries()
    assert image_registries(IMAGE_TABLE) == fm_image_registries()


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_request_comes_from_stage_config(app_synths: dict[str, Synth], stage: str) -> None:
    config = StageConfig.from_context(stage, json.loads(Path("cdk.json").read_text())["context"]["stages"])
    parameters = app_synths[stage].state("eu-west-1")["Parameters"]
    assert parameters["ResourceConfig"] == {
        "InstanceCount": config.fm_instance_count,
        "InstanceType": config.fm_instance_type,  # "ml." once
        "VolumeSizeInGB": config.fm_volume_size_gb,
    }
    assert parameters["StoppingCondition"]["MaxRuntimeInSeconds"] == 60 * config.fm_max_runtime_minutes
    assert parameters.get("EnableManagedSpotTraining", False) is config.fm_spot
    assert parameters["HyperParameters"] == {
        "feature_dim.$": "States.Format('{}', $.feature_dim)",
        "predictor_type": config.fm_predictor_type,
        "num_factors": str(config.fm_num_factors),
        "epochs": str(config.fm_epochs),
        "mini_batch_size": str(config.fm_mini_batch_size),
    }
    assert all(isinstance(v, str) for v in parameters["HyperParameters"].values())
    assert parameters["AlgorithmSpecification"]["TrainingImage"] == fm_image_uri("eu-west-1")


def test_channels_output_and_name_come_from_the_states_run_id(small: Synth) -> None:
    parameters = small.state()["Parameters"]
    assert parameters["TrainingJobName.$"] == "States.Format('recsys-fm-{}', States.UUID())"
    assert parameters["EnableNetworkIsolation"] is True
    channels = {c["ChannelName"]: c for c in parameters["InputDataConfig"]}
    assert set(channels) == {"train", "test"}
    for name, channel in channels.items():
        assert channel["ContentType"] == "application/x-recordio-protobuf"
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["S3DataDistributionType"] == "FullyReplicated"
        assert re.fullmatch(
            rf"States\.Format\('s3://<Curated\w+>/curated/runs/{{}}/fm/{name}/', \$\.run_id\)",
            source["S3Uri.$"],
        )
    output = parameters["OutputDataConfig"]["S3OutputPath.$"]
    assert re.fullmatch(r"States\.Format\('s3://<Artifacts\w+>/fm/{}/', \$\.run_id\)", output)
    assert parameters["Tags"] == [
        {"Key": "project", "Value": "recsys-pipeline"},
        {"Key": "recsys:run-id", "Value.$": "$.run_id"},
    ]
    state = small.state()
    assert state["ResultPath"] == "$.fm_training"
    assert state["ResultSelector"]["model_artifacts.$"] == "$.ModelArtifacts.S3ModelArtifacts"


def test_several_instances_shard_and_encrypt_traffic() -> None:
    parameters = small_stack(instance_count=3, instance_type="c5.xlarge").state()["Parameters"]
    assert parameters["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert parameters["ResourceConfig"]["InstanceCount"] == 3
    distributions = {
        c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in parameters["InputDataConfig"]
    }
    assert distributions == {"ShardedByS3Key"}
    assert parameters["EnableInterContainerTrafficEncryption"] is True


def test_spot_adds_max_wait_and_checkpoints() -> None:
    parameters = small_stack(spot=True, max_runtime=Duration.minutes(90)).state()["Parameters"]
    assert parameters["EnableManagedSpotTraining"] is True
    assert parameters["StoppingCondition"] == {"MaxRuntimeInSeconds": 5400, "MaxWaitTimeInSeconds": 10800}
    assert re.fullmatch(
        r"States\.Format\('s3://<Artifacts\w+>/fm/{}/checkpoints/{}/', \$\.run_id, \$\$\.Execution\.Name\)",
        parameters["CheckpointConfig"]["S3Uri.$"],
    )


def test_kms_key_encrypts_output_and_volume_and_is_granted() -> None:
    app = App(context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "Kms")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    fm = FmTraining(
        stack,
        "Fm",
        curated_bucket=s3.Bucket(stack, "Curated"),
        artifacts_bucket=s3.Bucket(stack, "Artifacts"),
        instance_type="ml.m5.xlarge",
        instance_count=1,
        volume_size_gb=30,
        max_runtime=Duration.hours(1),
        spot=False,
        hyperparameters=HYPERPARAMETERS,
        kms_key=key,
    )
    synth = Synth(stack, fm)
    parameters = synth.state()["Parameters"]
    assert parameters["OutputDataConfig"]["KmsKeyId"].startswith("<Key")
    assert parameters["ResourceConfig"]["VolumeKmsKeyId"].startswith("<Key")
    kms_actions = {a for s in synth.role_statements() for a in _list(s["Action"]) if a.startswith("kms:")}
    assert kms_actions == {
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"instance_type": "ml.ml.c5.xlarge"}, "doubled 'ml.' prefix"),
        ({"instance_type": "ml.p3.2xlarge"}, "CPU instances only"),
        ({"hyperparameters": {**HYPERPARAMETERS, "feature_dim": "10"}}, "feature_dim comes from the run"),
        ({"hyperparameters": {"epochs": 20}}, "must be strings"),
        ({"spot": True, "max_wait": Duration.minutes(10)}, "max_wait must be at least max_runtime"),
    ],
)
def test_bad_props_are_refused(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        small_stack(**props)


def _shape(value: Any) -> Any:
    """The key structure of a request, JsonPath keys ("S3Uri.$") read as plain ones."""
    if isinstance(value, dict):
        return {k.removesuffix(".$"): _shape(v) for k, v in value.items() if k != "HyperParameters"}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__ if isinstance(value, bool) else "value"


@pytest.mark.parametrize(("count", "spot"), [(1, False), (2, True)])
def test_the_task_and_the_boto3_request_have_the_same_shape(count: int, spot: bool) -> None:
    parameters = small_stack(instance_count=count, spot=spot).state()["Parameters"]
    settings = FmTrainSettings(
        run="s3://curated/curated/runs/r1/",
        output="s3://artifacts/",
        hyperparameters=FmHyperparameters(feature_dim=10),
        sagemaker=SageMakerJobSettings(
            role_arn="arn:aws:iam::123456789012:role/r", instance_count=count, spot=spot
        ),
    )
    files = {"files": ["a", "b"]}
    manifest = {"feature_dim": 10, "fm": {"channels": {"train": files, "test": files}}}
    request = build_training_job_request(settings, manifest, region="us-east-1")
    assert _shape(parameters) == _shape(request)
    assert set(parameters["HyperParameters"]) - {"feature_dim.$"} <= set(request["HyperParameters"])


# --- the role ------------------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_role_is_sagemakers(small: Synth) -> None:
    role_id = Stack.of(small.fm).resolve(small.fm.role.node.default_child.logical_id)  # type: ignore[union-attr]
    trust = small.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]


def test_the_role_has_no_wildcard_actions_and_only_the_run_prefixes(small: Synth) -> None:
    statements = small.role_statements()
    actions = [a for s in statements for a in _list(s["Action"])]
    assert actions
    assert not [a for a in actions if "*" in a]
    assert {s["Effect"] for s in statements} == {"Allow"}
    by_action: dict[str, list[Any]] = {}
    for statement in statements:
        for action in _list(statement["Action"]):
            by_action.setdefault(action, []).extend(
                json.dumps(resolve(r, small.template, "eu-west-1")) for r in _list(statement["Resource"])
            )
    curated, artifacts = (small.fm.curated_bucket, small.fm.artifacts_bucket)
    curated_arn, artifacts_arn = (
        f"<{Stack.of(small.fm).resolve(b.node.default_child.logical_id)}.Arn>"  # type: ignore[union-attr]
        for b in (curated, artifacts)
    )
    assert sorted(by_action["s3:GetObject"]) == sorted(
        [f'"{curated_arn}/curated/runs/*/fm/*"', f'"{artifacts_arn}/fm/*"']
    )
    assert by_action["s3:PutObject"] == [f'"{artifacts_arn}/fm/*"']
    # Nothing on every resource but what has no resource-level permissions (CDK's dynamic S3 locations would
    # have granted s3:GetObject/ListBucket/PutObject on "*").
    anywhere = sorted(a for a, resources in by_action.items() if '"*"' in resources)
    assert anywhere == ["cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"]
    assert "s3:DeleteObject" not in by_action
    image_account = fm_image_registries()["eu-west-1"]
    repository = f'"arn:aws:ecr:eu-west-1:{image_account}:repository/factorization-machines"'
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"):
        assert by_action[action] == [repository]
    assert by_action["ecr:GetAuthorizationToken"] == ['"*"']
    assert by_action["logs:PutLogEvents"] == [
        '"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:log-stream:*"'
    ]
    listing = [s for s in statements if s["Action"] == "s3:ListBucket"]
    prefixes = sorted(p for s in listing for p in _list(s["Condition"]["StringLike"]["s3:prefix"]))
    assert prefixes == ["curated/runs/*/fm/*", "fm/*"]
    metrics = next(s for s in statements if s["Action"] == "cloudwatch:PutMetricData")
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}


def test_the_app_stack_outputs_the_role(app_synths: dict[str, Synth]) -> None:
    outputs = app_synths["dev"].template["Outputs"]
    assert "FmTrainingRoleArn" in outputs


# --- stage config --------------------------------------------------------------------------------------


def _config(**values: Any) -> StageConfig:
    return StageConfig.from_context("dev", {"dev": values})


def test_fm_stage_keys_parse_strictly() -> None:
    config = _config(fm_instance_type="c5.2xlarge", fm_instance_count=2, fm_spot=True, fm_epochs=5)
    assert (config.fm_instance_type, config.fm_instance_count, config.fm_spot) == ("c5.2xlarge", 2, True)
    with pytest.raises(ConfigError, match="fm_epochs': expected a whole number, got a string '5'"):
        _config(fm_epochs="5")
    with pytest.raises(ConfigError, match=r"doubled 'ml\.' prefix"):
        _config(fm_instance_type="ml.ml.c5.xlarge")
    with pytest.raises(ConfigError, match="not a CPU instance type"):
        _config(fm_instance_type="ml.g5.xlarge")
    with pytest.raises(ConfigError, match="fm_predictor_type'"):
        _config(fm_predictor_type="classifier")
    with pytest.raises(ConfigError, match="fm_max_runtime_minutes': expected 1 to 40320"):
        _config(fm_max_runtime_minutes=0)
    with pytest.raises(ConfigError, match="fm_spots': unknown key"):
        _config(fm_spots=True)
