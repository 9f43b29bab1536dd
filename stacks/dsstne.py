"""The DSSTNE GPU job on AWS Batch: network, GPU compute environment, queue, job definitions and image.

The image is built from `training/dsstne/Dockerfile` with the repository root as context (found by path,
never imported); its job entry point is `training/dsstne/job.py`. The job role gets no permissions here:
the stack grants it the run prefixes of its buckets, so every S3 grant of the pipeline is in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Aws, CfnResource, Duration, IgnoreMode, RemovalPolicy, Size, Validations
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import VCPUS_PER_GPU

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "training/dsstne/Dockerfile"
DOCKER_IGNORE = REPO_ROOT / f"{DOCKERFILE}.dockerignore"
MEMORY_PER_GPU = Size.gibibytes(14)
"""A g4dn/g5/g6.xlarge has 16 GiB, of which ECS offers about 15; a job asking for more never starts."""
FLOW_LOG_PREFIX = "vpc-flow-logs/dsstne/"
DEFAULT_TIMEOUT = Duration.hours(12)
"""Per attempt; the MovieLens 20M sample trains in minutes on one A10G."""
DEFAULT_ROOT_VOLUME = Size.gibibytes(100)
"""Holds the image (about 8 GiB unpacked) and the job's work dir (datasets, network, recommendations)."""
_STUCK = (
    batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
    batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
)


def docker_ignore_patterns(path: Path = DOCKER_IGNORE) -> list[str]:
    """The image's .dockerignore patterns, so Docker and the CDK asset hash see the same context."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class DsstneBatch(Construct):
    """AWS Batch on NVIDIA GPU instances running the DSSTNE job image; resources are attributes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance_types: Sequence[str],
        spot: bool,
        maxv_cpus: int,
        multi_gpu_count: int,
        environment: Mapping[str, str],
        flow_log_bucket: s3.IBucket,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        timeout: Duration = DEFAULT_TIMEOUT,
        retry_attempts: int = 3,
        root_volume: Size = DEFAULT_ROOT_VOLUME,
    ) -> None:
        super().__init__(scope, construct_id)
        self._network(flow_log_bucket)
        self._compute(instance_types, spot, maxv_cpus, root_volume)
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPO_ROOT),
            file=DOCKERFILE,
            exclude=docker_ignore_patterns(),
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,  # the GPU AMIs are x86_64 only
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="DSSTNE job: reads its run's inputs, writes its run's outputs (grants in the stack)",
        )
        # One execution role (pulls the image, writes the logs) for both job definitions.
        self.execution_role = iam.Role(
            self, "ExecutionRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
        )
        Validations.of(self.execution_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken, which has no resource-level permissions; the image pull "
                "itself is limited to the asset repository.",
            )
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.environment = {**environment, "AWS_DEFAULT_REGION": Aws.REGION}  # ECS on EC2 sets no region
        self.job_definition = self._job_definition("JobDefinition", 1, timeout, retry_attempts)
        self.multi_gpu_job_definition = self._job_definition(
            "MultiGpuJobDefinition", multi_gpu_count, timeout, retry_attempts
        )

    def _network(self, flow_log_bucket: s3.IBucket) -> None:
        """Public subnets and no NAT gateway: instances need outbound HTTPS only (ECS, ECR, S3, CloudWatch).

        A NAT gateway costs about 32 USD a month per AZ even while no job runs; a public IP with a security
        group that admits nothing inbound gives the same reachability, and the S3 gateway endpoint (free)
        keeps data and image layers off the internet. Two AZs from Fn::GetAZs: no lookup at synth.
        """
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            # Nothing uses the default security group, so the custom resource (a Lambda) that strips its
            # rules would guard an empty room.
            restrict_default_security_group=False,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        self.flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, FLOW_LOG_PREFIX),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=self.vpc,
            description="DSSTNE Batch instances: nothing inbound",
            allow_all_outbound=True,
        )

    def _compute(self, instance_types: Sequence[str], spot: bool, maxv_cpus: int, root_volume: Size) -> None:
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonEC2ContainerServiceforEC2Role"
                )
            ],
        )
        Validations.of(self.instance_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonEC2ContainerServiceforEC2Role]",
                reason="The ECS agent's own policy, kept current by AWS; the jobs use the job role, and "
                "IMDSv2 with hop limit 1 keeps containers from the instance role.",
            )
        )
        # IMDSv2 only, one hop: the job's containers cannot reach the instance role's credentials.
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",  # root of the AL2023 ECS AMIs: images and the job's work dir
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume.to_gibibytes(), encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
        )
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "ComputeEnvironment",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.security_group],
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)],
            instance_types=[ec2.InstanceType(name) for name in instance_types],
            use_optimal_instance_classes=False,  # else CDK adds "optimal", which has no GPUs
            minv_cpus=0,  # nothing runs, nothing is paid, between jobs
            maxv_cpus=maxv_cpus,
            spot=spot,
            # Spot: the pools least likely to be interrupted, cheapest among them (no Spot Fleet role).
            allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
            if spot
            else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
            instance_role=self.instance_role,
            launch_template=self.launch_template,
            update_to_latest_image_version=True,
        )
        # Pin the template version, so that editing the launch template updates the compute environment.
        cfn_compute = self.compute_environment.node.default_child
        assert isinstance(cfn_compute, CfnResource)
        cfn_compute.add_property_override(
            "ComputeResources.LaunchTemplate.Version", self.launch_template.latest_version_number
        )
        self.job_queue = batch.JobQueue(
            self,
            "JobQueue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute_environment, order=1)
            ],
            # A job no instance type can hold would sit in RUNNABLE for ever: cancel it with a reason.
            job_state_time_limit_actions=[
                batch.JobStateTimeLimitAction(max_time=Duration.minutes(10), reason=reason)
                for reason in _STUCK
            ],
        )

    def _job_definition(
        self, construct_id: str, gpus: int, timeout: Duration, retry_attempts: int
    ) -> batch.EcsJobDefinition:
        container = batch.EcsEc2ContainerDefinition(
            self,
            f"{construct_id}Container",
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            gpu=gpus,
            cpu=VCPUS_PER_GPU * gpus,
            memory=Size.mebibytes(MEMORY_PER_GPU.to_mebibytes() * gpus),
            job_role=self.job_role,
            execution_role=self.execution_role,
            environment=self.environment,
            logging=ecs.LogDriver.aws_logs(stream_prefix="dsstne", log_group=self.log_group),
            # An init process forwards SIGTERM (cancel, timeout) so the job can undo a partial upload;
            # NCCL between GPUs needs more shared memory than Docker's 64 MiB.
            linux_parameters=batch.LinuxParameters(
                self,
                f"{construct_id}Linux",
                init_process_enabled=True,
                shared_memory_size=Size.gibibytes(gpus) if gpus > 1 else None,
            ),
        )
        return batch.EcsJobDefinition(
            self,
            construct_id,
            container=container,
            timeout=timeout,
            retry_attempts=retry_attempts,
            retry_strategies=[
                # Spot reclaimed or host lost ("Host EC2*"): run again; any exit of the job itself: stop.
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.NON_ZERO_EXIT_CODE),
            ],
            propagate_tags=True,
        )
