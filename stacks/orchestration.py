"""The pipeline state machine (docs/infrastructure.md has its picture) and its own step resources.

    Preprocess (Glue .sync) → ReadManifest (S3 GetObject: feature_dim) → Parallel
        [ FM training (SageMaker .sync) → FM top-k (Batch Fargate .sync) → {name: fm, model_uri, version}
          DSSTNE (Batch GPU job .sync)                                → {name: dsstne, model_uri, version} ]
    → Evaluate and gate (Lambda) → Choice: publish? → Publish (the serving construct's Lambda)
    → Notify (SNS) → Finish (Lambda: trigger.finish_run(run_id, succeeded=True))

A branch that fails yields {name, error} instead of a model, so the other model can still be evaluated and
published. Every task outside the branches has a Catch to the failure path: Notify (failed) → Finish
(succeeded=False) → Fail. The live model changes only in Publish, so no failure touches it.

The execution input is {"run_id": ...} (recsys.ingest.trigger starts runs with it; the execution name is the
run id too). The state machine's name is fixed, so its ARN can be written as a string (`arn_for`) for the
ingest Lambda and the finish step, which start executions, without a dependency cycle.

FM import + top-k runs as an AWS Batch job on Fargate with the DSSTNE image (which holds the repository's
`recsys` and `training` packages and their numpy, scipy and pyarrow): no idle cost, no 15-minute limit, and
memory up to 120 GiB. A Lambda would be cheaper per run but cannot import `training` (DESIGN.md §3) and
lacks scipy in the public layers. The job's entry point is `training.fm.job` (see docs/infrastructure.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Duration,
    RemovalPolicy,
    Size,
    Stack,
    Validations,
)
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from recsys import contracts
from stacks.dsstne import DsstneBatch
from stacks.fm_training import FmTraining
from stacks.preprocessing import Preprocessing
from stacks.python_function import build_lambda_asset, python_function

PIPELINE_FUNCTION = "pipeline"
RUNS = contracts.CURATED_PREFIX + contracts.RUNS_PREFIX
FM_TOPK_COMMAND = ("python", "-m", "training.fm.job")
FM_TOPK_TIMEOUT = Duration.hours(4)
FM_TOPK_STORAGE = Size.gibibytes(50)
"""Fargate's task storage holds the image (about 8 GiB unpacked), the run's maps and the lists written."""

# Retries: (errors, first interval, attempts). Throttling and capacity errors, with exponential backoff and
# jitter; a job that itself failed is not retried here (Batch retries Spot reclaims itself).
THROTTLING = ("ThrottlingException", "TooManyRequestsException", "States.Http.StatusCode.429")
RETRIES: Mapping[str, tuple[tuple[str, ...], Duration, int]] = {
    "glue": (
        ("Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException", "Glue.AWSGlueException"),
        Duration.minutes(1),
        4,
    ),
    "sagemaker": (
        ("SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException", *THROTTLING),
        Duration.minutes(1),
        4,
    ),
    "batch": (
        ("Batch.AWSBatchException", "Batch.BatchException", "Batch.ClientException", *THROTTLING),
        Duration.seconds(30),
        4,
    ),
    "s3": (("S3.S3Exception", "S3.SdkClientException", *THROTTLING), Duration.seconds(5), 3),
    "sns": (
        ("SNS.ThrottledException", "SNS.KMSThrottlingException", "SNS.InternalErrorException", *THROTTLING),
        Duration.seconds(5),
        4,
    ),
    "lambda": (("Lambda.TooManyRequestsException", *THROTTLING), Duration.seconds(5), 5),
}
CAPACITY_RETRY = (Duration.minutes(5), 1)
"""SageMaker reports too little capacity (InsufficientCapacityError) as a failed job: one more try later."""


@dataclass(frozen=True)
class GateConfig:
    k: int
    metric: str
    margin: float
    tolerance: float


def arn_for(scope: Construct, state_machine_name: str) -> str:
    """The state machine's ARN built from its name: no reference to the resource, so no cycle."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=state_machine_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class Orchestration(Construct):
    """The state machine (`state_machine`), its step Lambdas (`functions`), the FM top-k Batch job, and the
    optional schedule. Data grants of the step roles are the stack's (`pipeline_stack.py`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine_name: str,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        preprocessing: Preprocessing,
        fm_training: FmTraining,
        dsstne: DsstneBatch,
        publish_function: lambda_.IFunction,
        pipeline_state_table_name: str,
        serving_table_name: str,
        topic: sns.ITopic,
        log_key: kms.IKey,
        layers: Sequence[lambda_.ILayerVersion],
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        timeout: Duration,
        gate: GateConfig,
        evaluate_memory_mb: int,
        evaluate_timeout: Duration,
        evaluate_ephemeral_storage: Size,
        fm_topk_vcpus: int,
        fm_topk_memory_mb: int,
        schedule: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self.state_machine_name = state_machine_name
        self.state_machine_arn = arn_for(self, state_machine_name)
        self.curated, self.artifacts = curated_bucket, artifacts_bucket
        self._removal_policy, self._log_retention = removal_policy, log_retention
        self._layers = list(layers)
        self._invoked: list[lambda_.IFunction] = []
        self._staging = tempfile.TemporaryDirectory(prefix="recsys-pipeline-lambdas-")
        self._asset = build_lambda_asset(Path(self._staging.name) / PIPELINE_FUNCTION, PIPELINE_FUNCTION)

        trigger_env = {
            contracts.PIPELINE_STATE_TABLE_ENV: pipeline_state_table_name,
            contracts.STATE_MACHINE_ARN_ENV: self.state_machine_arn,
        }
        self.evaluate_function = self._function(
            "Evaluate",
            "evaluate",
            memory_mb=evaluate_memory_mb,
            timeout=evaluate_timeout,
            ephemeral_storage=evaluate_ephemeral_storage,
            environment={
                contracts.SERVING_TABLE_ENV: serving_table_name,
                contracts.EVAL_K_ENV: str(gate.k),
                contracts.GATE_METRIC_ENV: gate.metric,
                contracts.GATE_MARGIN_ENV: repr(gate.margin),
                contracts.GATE_TOLERANCE_ENV: repr(gate.tolerance),
            },
            description="Pipeline: evaluate the run's models, popularity and the live model; gate",
        )
        self.finish_function = self._function(
            "Finish",
            "finish",
            memory_mb=256,
            timeout=Duration.seconds(60),
            environment=trigger_env,
            description="Pipeline: end a run (free the one-run lock or start the owed follow-up run)",
        )
        self.functions: dict[str, lambda_.Function] = {
            "Evaluate": self.evaluate_function,
            "Finish": self.finish_function,
        }
        self.request_function: lambda_.Function | None = None
        if schedule:
            self.request_function = self._function(
                "Request",
                "request",
                memory_mb=256,
                timeout=Duration.seconds(60),
                environment=trigger_env,
                description="Pipeline: scheduled run request (through the one-run lock)",
            )
            self.functions["Request"] = self.request_function

        self._fm_topk_job(dsstne, fm_topk_vcpus, fm_topk_memory_mb)
        definition = self._definition(preprocessing, fm_training, dsstne, publish_function, topic)
        self.log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            # Step Functions requires the /aws/vendedlogs/ prefix for log groups with long policies.
            log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
            retention=log_retention,
            encryption_key=log_key,
            removal_policy=removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            comment="Recommender pipeline: preprocess, train FM and DSSTNE, evaluate, gate, publish",
        )
        self._acknowledge_state_machine_role()
        self.schedule: scheduler.Schedule | None = None
        if schedule and self.request_function is not None:
            self.schedule = scheduler.Schedule(
                self,
                "Schedule",
                schedule=scheduler.ScheduleExpression.expression(schedule),
                target=scheduler_targets.LambdaInvoke(self.request_function, role=self._schedule_role()),
                description="Requests a pipeline run (skipped into 'pending' while one is going)",
            )

    def _schedule_role(self) -> iam.Role:
        """The Scheduler's role: invoke the request function (the target grants it), nothing else."""
        assert self.request_function is not None
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="EventBridge Scheduler: invokes the pipeline's request Lambda",
        )
        child = self.request_function.node.default_child
        assert child is not None
        logical_id = Stack.of(self).resolve(child.logical_id)  # type: ignore[attr-defined]
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                reason="lambda:InvokeFunction on the request function's versions and aliases (CDK's "
                "Scheduler LambdaInvoke target); the function itself is named.",
            )
        )
        return role

    # --- the definition ------------------------------------------------------------------------------

    def _definition(
        self,
        preprocessing: Preprocessing,
        fm_training: FmTraining,
        dsstne: DsstneBatch,
        publish_function: lambda_.IFunction,
        topic: sns.ITopic,
    ) -> sfn.IChainable:
        run_id = sfn.JsonPath.string_at("$.run_id")
        curated, artifacts = self.curated.bucket_name, self.artifacts.bucket_name
        run_uri = sfn.JsonPath.format(f"s3://{curated}/{RUNS}{{}}/", run_id)

        # Failure path: notify, free the lock (or start the follow-up), fail the execution.
        failed = sfn.Fail(
            self, "RunFailed", error="PipelineFailed", cause="A step failed; see the notification"
        )
        finish_failed = self._lambda_task(
            "FinishFailed",
            self.finish_function,
            {"run_id": run_id, "succeeded": False},
            result_path="$.finish",
        ).next(failed)
        notify_failed = self._notify(
            "NotifyFailed",
            topic,
            "Recommender pipeline run failed; the live model is unchanged",
            {"run_id": run_id, "outcome": "failed", "error": sfn.JsonPath.object_at("$.error")},
        )
        notify_failed.add_catch(finish_failed, result_path="$.notify_error")
        notify_failed.next(finish_failed)

        def guarded(task: sfn.TaskStateBase) -> sfn.TaskStateBase:
            return task.add_catch(notify_failed, errors=[sfn.Errors.ALL], result_path="$.error")

        preprocess = tasks.GlueStartJobRun(
            self,
            "Preprocess",
            glue_job_name=preprocessing.job.job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            arguments=sfn.TaskInput.from_object({f"--{contracts.GLUE_ARG_RUN_ID}": run_id}),
            result_selector={"job_run_id.$": "$.Id", "seconds.$": "$.ExecutionTime"},
            result_path="$.preprocess",
        )
        self._retry(preprocess, "glue")
        read_manifest = tasks.CallAwsService(
            self,
            "ReadManifest",
            service="s3",
            action="getObject",
            parameters={
                "Bucket": curated,
                "Key": sfn.JsonPath.format(f"{RUNS}{{}}/{contracts.RUN_MANIFEST_FILE}", run_id),
            },
            iam_resources=[self.curated.arn_for_objects(f"{RUNS}*/{contracts.RUN_MANIFEST_FILE}")],
            result_selector={"manifest.$": "States.StringToJson($.Body)"},
            result_path="$.run",
        )
        self._retry(read_manifest, "s3")

        fm_version = sfn.JsonPath.format(f"{contracts.FM_MODEL_VERSION_PREFIX}{{}}", run_id)
        fm_output = sfn.JsonPath.format(
            f"s3://{artifacts}/{contracts.MODELS_PREFIX}{contracts.FM_MODEL_VERSION_PREFIX}{{}}/", run_id
        )
        train_fm = fm_training.training_task(self, "TrainFm", feature_dim_path="$.run.manifest.feature_dim")
        self._retry(train_fm, "sagemaker")
        interval, attempts = CAPACITY_RETRY
        train_fm.add_retry(errors=["States.TaskFailed"], interval=interval, max_attempts=attempts)
        fm_topk = tasks.BatchSubmitJob(
            self,
            "FmTopK",
            job_name=sfn.JsonPath.format("recsys-fm-topk-{}", run_id),
            job_queue_arn=self.fm_topk_queue.job_queue_arn,
            job_definition_arn=self.fm_topk_job_definition.job_definition_arn,
            container_overrides=tasks.BatchContainerOverrides(
                environment={
                    contracts.FM_TOPK_MODEL_URI_ENV: sfn.JsonPath.string_at("$.fm_training.model_artifacts"),
                    contracts.FM_TOPK_RUN_URI_ENV: run_uri,
                    contracts.FM_TOPK_OUTPUT_URI_ENV: fm_output,
                    contracts.FM_TOPK_MODEL_VERSION_ENV: fm_version,
                }
            ),
            result_selector={"job_id.$": "$.JobId"},
            result_path="$.fm_topk",
        )
        self._retry(fm_topk, "batch")
        fm_done = sfn.Pass(
            self,
            "FmCandidate",
            parameters={"name": "fm", "model_uri": fm_output, "version": fm_version},
        )
        fm_failed = sfn.Pass(
            self, "FmFailed", parameters={"name": "fm", "error": sfn.JsonPath.object_at("$.error")}
        )
        for task in (train_fm, fm_topk):
            task.add_catch(fm_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        fm_branch = train_fm.next(fm_topk).next(fm_done)

        dsstne_version = sfn.JsonPath.format(f"{contracts.DSSTNE_MODEL_VERSION_PREFIX}{{}}", run_id)
        dsstne_model = sfn.JsonPath.format(
            f"s3://{artifacts}/{contracts.DSSTNE_PREFIX}{{}}/{contracts.DSSTNE_MODEL_DIR}", run_id
        )
        train_dsstne = tasks.BatchSubmitJob(
            self,
            "TrainDsstne",
            job_name=sfn.JsonPath.format("recsys-dsstne-{}", run_id),
            job_queue_arn=dsstne.job_queue.job_queue_arn,
            job_definition_arn=dsstne.job_definition.job_definition_arn,
            container_overrides=tasks.BatchContainerOverrides(
                environment={
                    contracts.DSSTNE_RUN_ID_ENV: run_id,
                    contracts.DSSTNE_INPUT_URI_ENV: sfn.JsonPath.format(
                        f"s3://{curated}/{RUNS}{{}}/{contracts.DSSTNE_PREFIX}", run_id
                    ),
                }
            ),
            result_selector={"job_id.$": "$.JobId"},
            result_path="$.dsstne",
        )
        self._retry(train_dsstne, "batch")
        dsstne_done = sfn.Pass(
            self,
            "DsstneCandidate",
            parameters={"name": "dsstne", "model_uri": dsstne_model, "version": dsstne_version},
        )
        dsstne_failed = sfn.Pass(
            self, "DsstneFailed", parameters={"name": "dsstne", "error": sfn.JsonPath.object_at("$.error")}
        )
        train_dsstne.add_catch(dsstne_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        dsstne_branch = train_dsstne.next(dsstne_done)

        train = sfn.Parallel(self, "Train", result_path="$.candidates")
        train.branch(fm_branch)
        train.branch(dsstne_branch)
        train.add_catch(notify_failed, errors=[sfn.Errors.ALL], result_path="$.error")

        evaluate = self._lambda_task(
            "EvaluateAndGate",
            self.evaluate_function,
            {"run_id": run_id, "run_uri": run_uri, "candidates": sfn.JsonPath.list_at("$.candidates")},
            result_path="$.evaluation",
        )
        publish = self._lambda_task(
            "Publish",
            publish_function,
            {
                "model_uri": sfn.JsonPath.string_at("$.evaluation.model_uri"),
                "version": sfn.JsonPath.string_at("$.evaluation.version"),
            },
            result_path="$.published",
            errors=("LoadError",),  # DynamoDB kept throttling the load: worth a later try
        )
        finish = self._lambda_task(
            "Finish", self.finish_function, {"run_id": run_id, "succeeded": True}, result_path="$.finish"
        )
        notify_published = self._notify(
            "NotifyPublished",
            topic,
            "Recommender pipeline: a new model version is live",
            {
                "run_id": run_id,
                "outcome": "published",
                "evaluation": sfn.JsonPath.object_at("$.evaluation"),
                "published": sfn.JsonPath.object_at("$.published"),
            },
        )
        notify_kept = self._notify(
            "NotifyKept",
            topic,
            "Recommender pipeline: the live model is kept",
            {"run_id": run_id, "outcome": "kept", "evaluation": sfn.JsonPath.object_at("$.evaluation")},
        )
        for notify in (notify_published, notify_kept):
            notify.add_catch(finish, errors=[sfn.Errors.ALL], result_path="$.notify_error")
            notify.next(finish)
        succeeded = sfn.Succeed(self, "RunSucceeded")
        for task in (preprocess, read_manifest, evaluate, publish, finish):
            guarded(task)
        finish.next(succeeded)
        gate = (
            sfn.Choice(self, "Gate")
            .when(sfn.Condition.boolean_equals("$.evaluation.publish", True), publish.next(notify_published))
            .otherwise(notify_kept)
        )
        return preprocess.next(read_manifest).next(train).next(evaluate).next(gate)

    def _lambda_task(
        self,
        construct_id: str,
        function: lambda_.IFunction,
        payload: Mapping[str, object],
        *,
        result_path: str,
        errors: tuple[str, ...] = (),
    ) -> tasks.LambdaInvoke:
        if function not in self._invoked:
            self._invoked.append(function)
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(dict(payload)),
            payload_response_only=True,
            retry_on_service_exceptions=True,  # Lambda.ServiceException and friends, 6 tries, backoff
            result_path=result_path,
        )
        self._retry(task, "lambda", extra=errors)
        return task

    def _notify(
        self, construct_id: str, topic: sns.ITopic, subject: str, message: Mapping[str, object]
    ) -> tasks.SnsPublish:
        task = tasks.SnsPublish(
            self,
            construct_id,
            topic=topic,
            subject=subject,
            message=sfn.TaskInput.from_object(dict(message)),
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry(task, "sns")
        return task

    @staticmethod
    def _retry(task: sfn.TaskStateBase, kind: str, extra: tuple[str, ...] = ()) -> None:
        errors, interval, attempts = RETRIES[kind]
        task.add_retry(
            errors=[*errors, *extra],
            interval=interval,
            max_attempts=attempts,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )

    # --- step resources ------------------------------------------------------------------------------

    def _function(
        self,
        title: str,
        entry: str,
        *,
        memory_mb: int,
        timeout: Duration,
        environment: Mapping[str, str],
        description: str,
        ephemeral_storage: Size | None = None,
    ) -> lambda_.Function:
        """A function of lambdas/pipeline/handler.py (`entry`), its role (logs only) and its log group."""
        return python_function(
            self,
            title,
            handler=f"lambdas.{PIPELINE_FUNCTION}.handler.{entry}",
            asset=self._asset,
            service=contracts.PIPELINE_SERVICE_NAME,
            log_retention=self._log_retention,
            removal_policy=self._removal_policy,
            memory_mb=memory_mb,
            timeout=timeout,
            layers=self._layers,
            environment=environment,
            description=description,
            role_description=f"Pipeline {entry} Lambda: its logs here; data permissions granted in the stack",
            ephemeral_storage=ephemeral_storage,
        )

    def _fm_topk_job(self, dsstne: DsstneBatch, vcpus: int, memory_mb: int) -> None:
        """Fargate compute in the DSSTNE network (public subnets, no NAT), a queue, and the job definition."""
        self.fm_topk_compute_environment = batch.FargateComputeEnvironment(
            self,
            "FmTopKCompute",
            vpc=dsstne.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[dsstne.security_group],
            maxv_cpus=max(vcpus * 2, 4),
        )
        self.fm_topk_queue = batch.JobQueue(
            self,
            "FmTopKQueue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.fm_topk_compute_environment, order=1)
            ],
        )
        self.fm_topk_job_role = iam.Role(
            self,
            "FmTopKJobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="FM top-k job: reads the FM model and the run, writes models/fm-<run>/",
        )
        container = batch.EcsFargateContainerDefinition(
            self,
            "FmTopKContainer",
            image=ecs.ContainerImage.from_docker_image_asset(dsstne.image),
            command=list(FM_TOPK_COMMAND),
            cpu=vcpus,
            memory=Size.mebibytes(memory_mb),
            ephemeral_storage_size=FM_TOPK_STORAGE,
            assign_public_ip=True,  # public subnets without NAT: the image pull needs a public address
            job_role=self.fm_topk_job_role,
            execution_role=dsstne.execution_role,
            environment={"AWS_DEFAULT_REGION": Stack.of(self).region},
            logging=ecs.LogDriver.aws_logs(stream_prefix="fm-topk", log_group=dsstne.log_group),
        )
        self.fm_topk_job_definition = batch.EcsJobDefinition(
            self,
            "FmTopKJobDefinition",
            container=container,
            timeout=FM_TOPK_TIMEOUT,
            retry_attempts=2,
            retry_strategies=[batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.NON_ZERO_EXIT_CODE)],
            propagate_tags=True,
        )

    def _acknowledge_state_machine_role(self) -> None:
        """The wildcards Step Functions' own integrations put in the role (CDK's task bindings)."""
        role = self.state_machine.role
        reasons: dict[str, str] = {
            "Resource::*": "X-Ray tracing (PutTraceSegments, GetSamplingRules) and CloudWatch Logs delivery "
            "(CreateLogDelivery, ...) have no resource-level permissions; CDK's StateMachine adds them.",
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*": (
                "Training job names are recsys-fm-<UUID>, made per run; describe/stop of the .sync pattern."
            ),
            "Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job-definition/*": (
                "SubmitJob names job definitions by revision; CDK's BatchSubmitJob grants all revisions."
            ),
        }
        for function in self._invoked:
            child = function.node.default_child
            assert child is not None
            logical_id = Stack.of(self).resolve(child.logical_id)  # type: ignore[attr-defined]
            reasons[f"Resource::<{logical_id}.Arn>:*"] = (
                "lambda:InvokeFunction on the step function's versions and aliases (CDK's LambdaInvoke); "
                "the function itself is named."
            )
        for detail, reason in reasons.items():
            Validations.of(role).acknowledge(Acknowledgment(id=f"AwsSolutions-IAM5[{detail}]", reason=reason))
