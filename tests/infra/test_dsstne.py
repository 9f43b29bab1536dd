"""The DSSTNE Batch job: GPU compute environment, job definitions, queue, job role, logs, network, image.

Assertions run on a plugin-free app built by the same factory as `app.py` (cdk-nag has its own test), one
synth per stage for the whole module. Docker is not needed: synth only hashes and stages the build context.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from recsys import contracts
from stacks.app_factory import build_app, stack_id
from stacks.config import ConfigError, StageConfig
from stacks.dsstne import DOCKER_IGNORE, DOCKERFILE, REPO_ROOT, docker_ignore_patterns
from stacks.pipeline_stack import RecsysPipelineStack

STAGES = ("dev", "prod")


class Synth:
    def __init__(self, stage: str, outdir: Path) -> None:
        app = build_app(
            context={"stage": stage, "aws:cdk:bundling-stacks": []}, outdir=str(outdir), nag=False
        )
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack, self.outdir = stack, outdir
        self.config = StageConfig.from_context(stage, app.node.try_get_context("stages"))
        self.template = Template.from_stack(stack)
        self.dsstne = stack.dsstne

    def id(self, construct: Any) -> str:
        return logical_id(self.stack, construct)

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.template.to_json()["Resources"][self.id(construct)]
        return resource

    def job_definition(self, gpus: int) -> dict[str, Any]:
        dsstne = self.dsstne
        construct = dsstne.job_definition if gpus == 1 else dsstne.multi_gpu_job_definition
        props: dict[str, Any] = self.resource(construct)["Properties"]
        return props


def logical_id(stack: Stack, construct: Any) -> str:
    return str(stack.resolve(construct.node.default_child.logical_id))


@pytest.fixture(scope="module")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    return {stage: Synth(stage, tmp_path_factory.mktemp(f"cdk.out-{stage}")) for stage in STAGES}


@pytest.fixture(scope="module")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


# --- compute environment and queue ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_compute_environment_is_gpu_ecs_al2023_scaling_from_zero(
    synths: dict[str, Synth], stage: str
) -> None:
    synth = synths[stage]
    config = synth.config
    resources = synth.resource(synth.dsstne.compute_environment)["Properties"]["ComputeResources"]
    assert resources["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
    assert resources["MinvCpus"] == 0
    assert resources["MaxvCpus"] == config.dsstne_max_vcpus
    assert resources["InstanceTypes"] == list(config.dsstne_instance_types)  # no "optimal" added
    assert resources["Type"] == ("SPOT" if config.dsstne_spot else "EC2")
    expected = "SPOT_PRICE_CAPACITY_OPTIMIZED" if config.dsstne_spot else "BEST_FIT_PROGRESSIVE"
    assert resources["AllocationStrategy"] == expected
    assert "SpotIamFleetRole" not in resources
    assert resources["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": synth.id(synth.dsstne.launch_template)},
        "Version": {"Fn::GetAtt": [synth.id(synth.dsstne.launch_template), "LatestVersionNumber"]},
    }


def test_stages_differ_as_cdk_json_says(synths: dict[str, Synth]) -> None:
    assert synths["dev"].config.dsstne_spot
    assert not synths["prod"].config.dsstne_spot
    assert "g5.12xlarge" in synths["prod"].config.dsstne_instance_types  # room for the 4-GPU definition


def test_instances_run_in_public_subnets_with_nothing_inbound(dev: Synth) -> None:
    dsstne = dev.dsstne
    resources = dev.resource(dsstne.compute_environment)["Properties"]["ComputeResources"]
    public = [dev.stack.resolve(subnet.subnet_id) for subnet in dsstne.vpc.public_subnets]
    assert resources["Subnets"] == public
    assert len(public) == 2
    assert resources["SecurityGroupIds"] == [{"Fn::GetAtt": [dev.id(dsstne.security_group), "GroupId"]}]
    group = dev.resource(dsstne.security_group)["Properties"]
    assert "SecurityGroupIngress" not in group
    dev.template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    dev.template.resource_count_is("AWS::EC2::NatGateway", 0)
    dev.template.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway", "ServiceName": Match.any_value()}
    )


def test_vpc_flow_logs_go_to_the_access_log_bucket(dev: Synth) -> None:
    bucket = dev.id(dev.stack.data_lake.access_log_bucket)
    dev.template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceId": {"Ref": dev.id(dev.dsstne.vpc)},
            "TrafficType": "ALL",
            "LogDestinationType": "s3",
            "LogDestination": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/vpc-flow-logs/dsstne/"]]},
        },
    )


def test_instances_require_imdsv2_from_the_host_only_and_encrypt_their_disk(dev: Synth) -> None:
    data = dev.resource(dev.dsstne.launch_template)["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    (root,) = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["Encrypted"] is True


def test_job_queue_feeds_the_compute_environment_and_cancels_jobs_that_can_never_run(dev: Synth) -> None:
    props = dev.resource(dev.dsstne.job_queue)["Properties"]
    compute = dev.id(dev.dsstne.compute_environment)
    assert props["ComputeEnvironmentOrder"] == [
        {"ComputeEnvironment": {"Fn::GetAtt": [compute, "ComputeEnvironmentArn"]}, "Order": 1}
    ]
    reasons = {(a["Reason"], a["State"], a["Action"]) for a in props["JobStateTimeLimitActions"]}
    assert reasons == {
        ("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", "RUNNABLE", "CANCEL"),
        ("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", "RUNNABLE", "CANCEL"),
    }
    dev.template.resource_count_is("AWS::Batch::JobQueue", 2)  # and the FM top-k queue (orchestration)


# --- job definitions ---------------------------------------------------------------------------------


def requirements(props: dict[str, Any]) -> dict[str, str]:
    return {r["Type"]: r["Value"] for r in props["ContainerProperties"]["ResourceRequirements"]}


def test_single_gpu_job_definition_fits_an_xlarge_gpu_instance(dev: Synth) -> None:
    props = dev.job_definition(1)
    assert requirements(props) == {"GPU": "1", "VCPU": "4", "MEMORY": str(14 * 1024)}
    assert props["PlatformCapabilities"] == ["EC2"]


@pytest.mark.parametrize("stage", STAGES)
def test_multi_gpu_job_definition_asks_for_the_configured_gpus(synths: dict[str, Synth], stage: str) -> None:
    gpus = synths[stage].config.dsstne_multi_gpu_count
    props = synths[stage].job_definition(gpus)
    assert requirements(props) == {"GPU": str(gpus), "VCPU": str(4 * gpus), "MEMORY": str(14 * 1024 * gpus)}
    assert props["ContainerProperties"]["LinuxParameters"]["SharedMemorySize"] == 1024 * gpus


@pytest.mark.parametrize("gpus", [1, 4])
def test_job_definitions_retry_host_losses_only_and_time_out(dev: Synth, gpus: int) -> None:
    props = dev.job_definition(gpus)
    assert props["RetryStrategy"] == {
        "Attempts": 3,
        "EvaluateOnExit": [
            {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
            {"Action": "EXIT", "OnExitCode": "*"},
        ],
    }
    assert props["Timeout"] == {"AttemptDurationSeconds": 12 * 3600}


@pytest.mark.parametrize("gpus", [1, 4])
def test_job_definitions_run_the_image_with_the_job_role_and_the_bucket_names(dev: Synth, gpus: int) -> None:
    container = dev.job_definition(gpus)["ContainerProperties"]
    assert container["JobRoleArn"] == {"Fn::GetAtt": [dev.id(dev.dsstne.job_role), "Arn"]}
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert ":" + dev.dsstne.image.asset_hash in container["Image"]["Fn::Sub"]
    lake = dev.stack.data_lake
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment == {
        contracts.CURATED_BUCKET_ENV: {"Ref": dev.id(lake.curated_bucket)},
        contracts.ARTIFACTS_BUCKET_ENV: {"Ref": dev.id(lake.artifacts_bucket)},
        "AWS_DEFAULT_REGION": {"Ref": "AWS::Region"},
    }
    assert "Command" not in container  # the image's ENTRYPOINT runs the job


def test_logs_go_to_one_group_with_retention(dev: Synth) -> None:
    group = dev.id(dev.dsstne.log_group)
    assert dev.resource(dev.dsstne.log_group)["Properties"]["RetentionInDays"] == 90
    for gpus in (1, 4):
        logging = dev.job_definition(gpus)["ContainerProperties"]["LogConfiguration"]
        assert logging["LogDriver"] == "awslogs"
        assert logging["Options"]["awslogs-group"] == {"Ref": group}


@pytest.mark.parametrize(("stage", "policy"), [("dev", "Delete"), ("prod", "Retain")])
def test_log_group_follows_the_stage_removal_policy(
    synths: dict[str, Synth], stage: str, policy: str
) -> None:
    assert synths[stage].resource(synths[stage].dsstne.log_group)["DeletionPolicy"] == policy


def test_both_definitions_share_one_execution_role(dev: Synth) -> None:
    roles = {str(dev.job_definition(g)["ContainerProperties"]["ExecutionRoleArn"]) for g in (1, 4)}
    assert len(roles) == 1


# --- IAM ---------------------------------------------------------------------------------------------


def test_job_role_reads_and_writes_only_the_run_prefixes(dev: Synth) -> None:
    lake, role = dev.stack.data_lake, dev.id(dev.dsstne.job_role)
    curated, artifacts = dev.id(lake.curated_bucket), dev.id(lake.artifacts_bucket)

    def objects(bucket: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{contracts.DSSTNE_PREFIX}*"]]}

    policies = [
        p["Properties"]
        for p in dev.template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    (policy,) = policies
    run_inputs = f"curated/runs/*/{contracts.DSSTNE_PREFIX}*"  # the preprocessing run's text parts
    run_objects = {"Fn::Join": ["", [{"Fn::GetAtt": [curated, "Arn"]}, f"/{run_inputs}"]]}
    assert policy["PolicyDocument"]["Statement"] == [
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": [run_objects, objects(curated)]},
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": [run_inputs]}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [curated, "Arn"]},
        },
        {
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"],
            "Effect": "Allow",
            "Resource": objects(artifacts),
        },
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": [f"{contracts.DSSTNE_PREFIX}*"]}},
            "Effect": "Allow",
            "Resource": [{"Fn::GetAtt": [artifacts, "Arn"]}, {"Fn::GetAtt": [curated, "Arn"]}],
        },
    ]
    props = dev.resource(dev.dsstne.job_role)["Properties"]
    assert "ManagedPolicyArns" not in props
    assert props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }


def test_instance_role_is_the_ecs_agent_role(dev: Synth) -> None:
    props = dev.resource(dev.dsstne.instance_role)["Properties"]
    (arn,) = props["ManagedPolicyArns"]
    assert arn["Fn::Join"][1][-1].endswith("service-role/AmazonEC2ContainerServiceforEC2Role")
    dev.template.resource_count_is("AWS::IAM::InstanceProfile", 1)


def test_queue_and_definitions_are_stack_outputs(dev: Synth) -> None:
    dsstne = dev.dsstne
    queue = {"Fn::GetAtt": [dev.id(dsstne.job_queue), "JobQueueArn"]}
    dev.template.has_output("DsstneJobQueueArn", {"Value": queue})
    dev.template.has_output("DsstneJobDefinitionArn", {"Value": {"Ref": dev.id(dsstne.job_definition)}})
    dev.template.has_output(
        "DsstneMultiGpuJobDefinitionArn", {"Value": {"Ref": dev.id(dsstne.multi_gpu_job_definition)}}
    )


# --- image -------------------------------------------------------------------------------------------


def test_image_context_is_what_the_dockerfile_copies_and_nothing_else(dev: Synth) -> None:
    staged = dev.outdir / f"asset.{dev.dsstne.image.asset_hash}"
    files = {str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()}
    tops = {name.split("/")[0] for name in files}
    assert tops == {"pyproject.toml", "README.md", "requirements", "recsys", "training"}
    assert {DOCKERFILE, "requirements/constraints.txt", "training/dsstne/job.py"} <= files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]


def test_asset_is_built_for_x86_64_from_the_dsstne_dockerfile(dev: Synth) -> None:
    manifest = (dev.outdir / f"{stack_id('dev')}.assets.json").read_text(encoding="utf-8")
    assert f'"dockerFile": "{DOCKERFILE}"' in manifest
    assert '"platform": "linux/amd64"' in manifest


def test_docker_ignore_patterns_drop_comments_and_blank_lines() -> None:
    patterns = docker_ignore_patterns()
    assert patterns[0] == "*"
    assert {"!training", "!recsys"} <= set(patterns)
    assert not [p for p in patterns if p.startswith("#") or not p]
    assert DOCKER_IGNORE.name == "Dockerfile.dockerignore"  # the name BuildKit looks for with -f


DOCKERFILE_TEXT = (REPO_ROOT / DOCKERFILE).read_text(encoding="utf-8")


def test_dockerfile_pins_a_cuda12_pytorch_base_with_torch_2_5_or_later() -> None:
    match = re.search(
        r"^FROM pytorch/pytorch:(\d+)\.(\d+)\.\d+-cuda12\.\d+-cudnn\d+-runtime$", DOCKERFILE_TEXT, re.M
    )
    assert match, "FROM must pin a pytorch/pytorch CUDA 12 runtime tag"
    assert (int(match[1]), int(match[2])) >= (2, 5)


def test_dockerfile_installs_pinned_runtime_dependencies_and_runs_the_job_unprivileged() -> None:
    constraints = (REPO_ROOT / "requirements/constraints.txt").read_text(encoding="utf-8").lower()
    for package in ("numpy", "scipy", "pandas", "pyarrow", "h5netcdf", "h5py", "boto3", "tqdm"):
        assert package in DOCKERFILE_TEXT
        assert re.search(rf"^{package}==\S+$", constraints, re.M), f"{package} is not pinned in constraints"
    assert "-c /tmp/constraints.txt" in DOCKERFILE_TEXT
    assert re.search(r"^USER 10001$", DOCKERFILE_TEXT, re.M)
    # a command (not an entry point), so the FM top-k job on the same image can replace it
    assert DOCKERFILE_TEXT.rstrip().endswith('CMD ["python", "-m", "training.dsstne.job"]')
    assert "ENTRYPOINT" not in DOCKERFILE_TEXT
    for command, sub in (("generateNetCDF", "generate-netcdf"), ("train", "train"), ("predict", "predict")):
        assert f"{command}:{sub}" in DOCKERFILE_TEXT
    assert "exec python -m recsys.cli.main dsstne %s" in DOCKERFILE_TEXT


# --- stage config keys -------------------------------------------------------------------------------


def parse(**raw: Any) -> StageConfig:
    return StageConfig.from_context("dev", {"dev": raw})


def test_dsstne_keys_default_to_one_on_demand_g5_xlarge() -> None:
    config = parse()
    assert config.dsstne_instance_types == ("g5.xlarge",)
    assert (config.dsstne_spot, config.dsstne_max_vcpus, config.dsstne_multi_gpu_count) == (False, 16, 4)
    assert parse(dsstne_instance_types=["g4dn.xlarge", "p4d.24xlarge"]).dsstne_instance_types == (
        "g4dn.xlarge",
        "p4d.24xlarge",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"dsstne_instance_types": "g5.xlarge"},
            r"dsstne_instance_types': expected a list of strings, got a string",
        ),
        ({"dsstne_instance_types": [1]}, r"dsstne_instance_types': expected a list of strings, got a list"),
        ({"dsstne_instance_types": []}, r"dsstne_instance_types': expected at least one"),
        (
            {"dsstne_instance_types": ["g5g.xlarge"]},
            r"dsstne_instance_types': 'g5g.xlarge' is not an NVIDIA GPU type on x86_64",
        ),
        (
            {"dsstne_instance_types": ["g4ad.xlarge"]},
            r"dsstne_instance_types': 'g4ad.xlarge' is not an NVIDIA GPU type",
        ),
        (
            {"dsstne_instance_types": ["m5.xlarge"]},
            r"dsstne_instance_types': 'm5.xlarge' is not an NVIDIA GPU type",
        ),
        ({"dsstne_spot": "yes"}, r"dsstne_spot': expected true/false"),
        ({"dsstne_multi_gpu_count": 1}, r"dsstne_multi_gpu_count': expected 2 to 8"),
        ({"dsstne_multi_gpu_count": 16}, r"dsstne_multi_gpu_count': expected 2 to 8"),
        ({"dsstne_max_vcpus": 8}, r"dsstne_max_vcpus': expected at least 16 \(4 per GPU of the 4-GPU"),
        ({"dsstne_max_vcpus": 16.0}, r"dsstne_max_vcpus': expected a whole number"),
    ],
)
def test_bad_dsstne_keys_are_rejected_by_name(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"context 'stages\.dev\." + message):
        parse(**raw)
