"""The composition stack: the only place that instantiates constructs and wires them together."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Size, Stack, Tags, Validations
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from recsys import contracts
from stacks.config import LOG_RETENTION_DAYS, StageConfig
from stacks.dsstne import DsstneBatch
from stacks.fm_training import FmTraining
from stacks.ingest import FIREHOSE_ERRORS_PREFIX, MAX_RECEIVE_COUNT, Ingest
from stacks.monitoring import Monitoring, Notifications
from stacks.orchestration import GateConfig, Orchestration, arn_for
from stacks.preprocessing import Preprocessing
from stacks.serving import Serving
from stacks.storage import DataLake

_REMOVAL_POLICIES = {"destroy": RemovalPolicy.DESTROY, "retain": RemovalPolicy.RETAIN}


# CloudWatch Logs' periods, in days, in RetentionDays' order (a test checks the synthesized days).
_RETENTION = dict(
    zip(LOG_RETENTION_DAYS, [r for r in logs.RetentionDays if r != logs.RetentionDays.INFINITE], strict=True)
)


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
        self.state_machine_name = f"{self.stack_name}-pipeline"[:80]
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

        self.ingest = Ingest(
            self,
            "Ingest",
            ingest_bucket=lake.ingest_bucket,
            curated_bucket=lake.curated_bucket,
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
            ingest_memory_mb=config.ingest_memory_mb,
            ingest_timeout=Duration.seconds(config.ingest_timeout_seconds),
            ingest_reserved_concurrency=config.ingest_reserved_concurrency,
            events_memory_mb=config.events_memory_mb,
            events_timeout=Duration.seconds(config.events_timeout_seconds),
            events_reserved_concurrency=config.events_reserved_concurrency,
            log_retention=_RETENTION[config.lambda_log_retention_days],
            # Built from the state machine's fixed name: the state machine refers to nothing of ingest,
            # but a reference to it here would put the ingest role's policy before it, a cycle.
            state_machine_arn=arn_for(self, self.state_machine_name),
        )
        self._grant_ingest(self.ingest, lake.ingest_bucket, lake.curated_bucket)
        self._grant_events(self.ingest)
        self._grant_events_stream_prefixes(self.ingest.events_stream_role, lake.ingest_bucket)
        ingest = self.ingest
        CfnOutput(self, "IngestQueueUrl", value=ingest.queue.queue_url)
        CfnOutput(
            self,
            "IngestDeadLetterQueueUrl",
            value=ingest.dead_letter_queue.queue_url,
            description=f"Messages that failed ingest {MAX_RECEIVE_COUNT} times; redrive them after a fix",
        )
        CfnOutput(self, "EventsFunctionName", value=ingest.events_function.function_name)
        CfnOutput(self, "EventsStreamName", value=ingest.events_stream.ref)
        CfnOutput(
            self,
            "PipelineStateTableName",
            value=ingest.pipeline_state_table.table_name,
            description="The one-run lock: `recsys pipeline run` requests runs through it, `status` shows it",
        )

        # SageMaker FM training: the role and image mapping; the orchestration issue's state machine adds
        # the task with `self.fm_training.training_task(scope, id)` (run id and feature_dim from its state).
        self.fm_training = FmTraining(
            self,
            "FmTraining",
            curated_bucket=lake.curated_bucket,
            artifacts_bucket=lake.artifacts_bucket,
            instance_type=config.fm_instance_type,
            instance_count=config.fm_instance_count,
            volume_size_gb=config.fm_volume_size_gb,
            max_runtime=Duration.minutes(config.fm_max_runtime_minutes),
            spot=config.fm_spot,
            hyperparameters={
                "predictor_type": config.fm_predictor_type,
                "num_factors": str(config.fm_num_factors),
                "epochs": str(config.fm_epochs),
                "mini_batch_size": str(config.fm_mini_batch_size),
            },
        )
        CfnOutput(self, "FmTrainingRoleArn", value=self.fm_training.role.role_arn)

        # The recommendation API and the publish step (the orchestration issue's state machine invokes
        # `self.serving.publish_function` with {"model_uri": "s3://<artifacts>/models/<version>/"}).
        self.serving = Serving(
            self,
            "Serving",
            items_table=ingest.items_table,
            recent_events_table=ingest.recent_events_table,
            events_stream_name=ingest.events_stream.ref,
            artifacts_bucket_name=lake.artifacts_bucket.bucket_name,
            powertools_layer=ingest.powertools_layer,
            sdk_for_pandas_layer=ingest.sdk_for_pandas_layer,
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
            log_retention=_RETENTION[config.lambda_log_retention_days],
            api=config.serving_api,
            recommend_memory_mb=config.recommend_memory_mb,
            recommend_timeout=Duration.seconds(config.recommend_timeout_seconds),
            recommend_reserved_concurrency=config.recommend_reserved_concurrency,
            recommend_provisioned_concurrency=config.recommend_provisioned_concurrency,
            throttle_rate_limit=config.serving_throttle_rate_limit,
            throttle_burst_limit=config.serving_throttle_burst_limit,
            publish_memory_mb=config.publish_memory_mb,
            publish_timeout=Duration.seconds(config.publish_timeout_seconds),
            publish_ephemeral_storage=Size.mebibytes(config.publish_ephemeral_storage_mb),
        )
        self._grant_serving_api(self.serving, ingest, lake.artifacts_bucket)
        self._grant_publish(self.serving, lake.artifacts_bucket)
        serving = self.serving
        CfnOutput(
            self,
            "RecommendationsApiUrl",
            value=serving.url,
            description=f"Recommendation API ({config.serving_api}, IAM auth: sign requests with SigV4)",
        )
        CfnOutput(
            self,
            "RecommendationsApiClientPolicyArn",
            value=serving.client_policy.managed_policy_arn,
            description="Attach to the roles or users that may call the recommendation API",
        )
        CfnOutput(self, "ServingTableName", value=serving.table.table_name)
        CfnOutput(self, "RecommendFunctionName", value=serving.recommend_function.function_name)
        CfnOutput(self, "PublishFunctionName", value=serving.publish_function.function_name)

        # The pipeline: notifications and alarms topic, the state machine, then monitoring of everything.
        self.notifications = Notifications(
            self,
            "Notifications",
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
            email=config.alarm_email,
        )
        self.orchestration = Orchestration(
            self,
            "Orchestration",
            state_machine_name=self.state_machine_name,
            curated_bucket=lake.curated_bucket,
            artifacts_bucket=lake.artifacts_bucket,
            preprocessing=self.preprocessing,
            fm_training=self.fm_training,
            dsstne=dsstne,
            publish_function=serving.publish_function,
            pipeline_state_table_name=ingest.pipeline_state_table.table_name,
            serving_table_name=serving.table.table_name,
            topic=self.notifications.topic,
            log_key=self.notifications.key,
            layers=[ingest.powertools_layer, ingest.sdk_for_pandas_layer],
            removal_policy=_REMOVAL_POLICIES[config.removal_policy],
            log_retention=_RETENTION[config.lambda_log_retention_days],
            timeout=Duration.minutes(config.pipeline_timeout_minutes),
            gate=GateConfig(
                k=config.eval_k,
                metric=config.gate_metric,
                margin=config.gate_margin,
                tolerance=config.gate_tolerance,
            ),
            evaluate_memory_mb=config.evaluate_memory_mb,
            evaluate_timeout=Duration.seconds(config.evaluate_timeout_seconds),
            evaluate_ephemeral_storage=Size.mebibytes(config.evaluate_ephemeral_storage_mb),
            fm_topk_vcpus=config.fm_topk_vcpus,
            fm_topk_memory_mb=config.fm_topk_memory_mb,
            schedule=config.pipeline_schedule,
        )
        orchestration = self.orchestration
        self._grant_pipeline_steps(orchestration, ingest, serving, lake.curated_bucket, lake.artifacts_bucket)
        self._grant_publish_dsstne(serving, lake.artifacts_bucket)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            topic=self.notifications.topic,
            ingest=ingest,
            serving=serving,
            state_machine=orchestration.state_machine,
            functions={
                "Ingest": ingest.ingest_function,
                "Events": ingest.events_function,
                "Recommend": serving.recommend_function,
                "Publish": serving.publish_function,
                **orchestration.functions,
            },
            job_queues=[dsstne.job_queue, orchestration.fm_topk_queue],
        )
        CfnOutput(self, "StateMachineArn", value=orchestration.state_machine.state_machine_arn)
        CfnOutput(self, "NotificationTopicArn", value=self.notifications.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)

    def _grant_ingest(self, ingest: Ingest, bucket: s3.IBucket, curated: s3.IBucket) -> None:
        """What the ingest Lambda calls, on its objects and tables only (no wildcard actions).

        Reads uploads (a version id or not) and their tags (a server-side copy of a tagged object copies its
        tags); writes quarantine/ (reports, and copies of whole files: CopyObject is GetObject on the source
        plus PutObject on the target, a large one multipart) and curated/ingest/ (multipart Parquet).
        ListBucket on the ingest bucket turns a read of a deleted object into 404 NoSuchKey instead of 403,
        which the handler records as SKIPPED (the object was deleted before processing) instead of retrying.
        """
        role = ingest.ingest_function.role
        assert role is not None
        quarantine = contracts.QUARANTINE_PREFIX
        uploads = [
            bucket.arn_for_objects(f"{p}*") for p in (contracts.CATALOG_PREFIX, contracts.TRANSACTIONS_PREFIX)
        ]
        statements = [
            iam.PolicyStatement(
                actions=[
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:GetObjectTagging",
                    "s3:GetObjectVersionTagging",
                ],
                resources=uploads,
            ),
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{quarantine}*")],
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[curated.arn_for_objects(f"{contracts.INGEST_CURATED_PREFIX}*")],
            ),
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[ingest.manifest_table.table_arn]),
            iam.PolicyStatement(
                # Powertools idempotency: read, claim (conditional put), complete, release on failure
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[ingest.idempotency_table.table_arn],
            ),
            iam.PolicyStatement(
                actions=["dynamodb:BatchWriteItem"], resources=[ingest.items_table.table_arn]
            ),
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[ingest.pipeline_state_table.table_arn],
            ),
        ]
        if ingest.state_machine_arn:
            statements.append(
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[ingest.state_machine_arn])
            )
        for statement in statements:
            role.add_to_principal_policy(statement)
        self._acknowledge_prefixes(
            role,
            (
                bucket,
                contracts.CATALOG_PREFIX,
                "Uploads under catalog/ (read): keys are chosen by the uploader.",
            ),
            (
                bucket,
                contracts.TRANSACTIONS_PREFIX,
                "Uploads under transactions/ (read): keys are the uploader's.",
            ),
            (bucket, quarantine, "Quarantine reports and copies: quarantine/<original key>, any upload key."),
            (
                curated,
                contracts.INGEST_CURATED_PREFIX,
                "Curated Parquet of each upload, partitioned by kind and date.",
            ),
        )

    def _grant_events(self, ingest: Ingest) -> None:
        """The events Lambda writes recent events and puts records on the stream; nothing else."""
        role = ingest.events_function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:BatchWriteItem", "dynamodb:PutItem"],
                resources=[ingest.recent_events_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecordBatch"], resources=[ingest.events_stream.attr_arn]
            )
        )

    def _grant_serving_api(self, serving: Serving, ingest: Ingest, artifacts: s3.IBucket) -> None:
        """What the recommendation Lambda calls (recsys/serving/store.py, recsys/events/sinks.py): it reads
        the recommendation data and writes only events.

        GetItem on the serving table (live pointer, lists, popularity); BatchGetItem on items (titles and
        categories) and Scan (one bounded read of up to k ids, answering before any model is published);
        Query on recent events (seen items, fold-in) and BatchWriteItem there plus PutRecordBatch on the
        events stream (POST /events, as the events Lambda); GetObject on the artifacts' models/* (the item
        vectors the live pointer names).
        """
        role = serving.recommend_function.role
        assert role is not None
        statements = [
            iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[serving.table.table_arn]),
            iam.PolicyStatement(
                actions=["dynamodb:BatchGetItem", "dynamodb:Scan"], resources=[ingest.items_table.table_arn]
            ),
            iam.PolicyStatement(
                actions=["dynamodb:Query", "dynamodb:BatchWriteItem"],
                resources=[ingest.recent_events_table.table_arn],
            ),
            iam.PolicyStatement(
                actions=["firehose:PutRecordBatch"], resources=[ingest.events_stream.attr_arn]
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[artifacts.arn_for_objects(f"{contracts.MODELS_PREFIX}*")]
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        self._acknowledge_prefixes(
            role,
            (
                artifacts,
                contracts.MODELS_PREFIX,
                "Item vectors of the live model version (models/<version>/item_vectors.npz), read-only.",
            ),
        )

    def _grant_publish(self, serving: Serving, artifacts: s3.IBucket) -> None:
        """What `recsys.publish` calls: the model folder under the artifacts' models/ (list, read), the
        item vectors copied there when published under another version than the folder's, and the serving
        table: version records and registry (GetItem, PutItem, UpdateItem with conditions), the lists
        (BatchWriteItem), the pointer switch (TransactWriteItems = ConditionCheckItem + PutItem), retiring
        old versions (a parallel Scan for their keys, then UpdateItem of expires_at).
        """
        role = serving.publish_function.role
        assert role is not None
        models = contracts.MODELS_PREFIX
        vectors = f"{models}*/{contracts.MODEL_ITEM_VECTORS_FILE}"
        statements = [
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:Scan",
                ],
                resources=[serving.table.table_arn],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{models}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[artifacts.arn_for_objects(f"{models}*")]
            ),
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[artifacts.arn_for_objects(vectors)]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        self._acknowledge_prefixes(
            role,
            (
                artifacts,
                models,
                "Model folders under models/<version>/, read-only; versions are chosen at run time.",
            ),
        )
        logical_id = self.resolve(artifacts.node.default_child.logical_id)  # type: ignore[union-attr]
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{vectors}]",
                reason="Only the item vectors file of a model version: models/<version>/item_vectors.npz.",
            )
        )

    def _grant_events_stream_prefixes(self, role: iam.IRole, bucket: s3.IBucket) -> None:
        """Firehose's S3 delivery (the actions AWS documents for it) under its two prefixes only."""
        prefixes = (contracts.EVENTS_STREAM_PREFIX, FIREHOSE_ERRORS_PREFIX)
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes],
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        self._acknowledge_prefixes(
            role,
            (
                bucket,
                contracts.EVENTS_STREAM_PREFIX,
                "Firehose deliveries, named by Firehose under a dated path.",
            ),
            (bucket, FIREHOSE_ERRORS_PREFIX, "Records Firehose failed to deliver, named by Firehose."),
        )

    def _acknowledge_prefixes(self, role: iam.IRole, *grants: tuple[s3.IBucket, str, str]) -> None:
        """cdk-nag IAM5 for `<bucket>/<prefix>*`: the objects of one prefix, named at run time."""
        for bucket, prefix, reason in grants:
            logical_id = self.resolve(bucket.node.default_child.logical_id)  # type: ignore[union-attr]
            Validations.of(role).acknowledge(
                Acknowledgment(id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}*]", reason=reason)
            )

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
        """Read curated/dsstne/* and a preprocessing run's curated/runs/<run id>/dsstne/* (the state machine
        points RECSYS_DSSTNE_INPUT_URI there), write artifacts/dsstne/*, list those prefixes only."""
        prefix = contracts.DSSTNE_PREFIX
        run_inputs = f"{contracts.CURATED_PREFIX}{contracts.RUNS_PREFIX}*/{prefix}"
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[curated.arn_for_objects(f"{prefix}*"), curated.arn_for_objects(f"{run_inputs}*")],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{run_inputs}*"]}},
            ),
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
        logical_id = self.resolve(curated.node.default_child.logical_id)  # type: ignore[union-attr]
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{run_inputs}*]",
                reason="Read of a preprocessing run's DSSTNE text parts (curated/runs/<run id>/dsstne/).",
            )
        )

    def _grant_pipeline_steps(
        self,
        orchestration: Orchestration,
        ingest: Ingest,
        serving: Serving,
        curated: s3.IBucket,
        artifacts: s3.IBucket,
    ) -> None:
        """The step Lambdas and the FM top-k job: exact actions on their prefixes and tables.

        Evaluate reads a run (curated/runs/*) and model folders (models/*, dsstne/*) and the serving table's
        live pointer and version record; finish and the scheduled request read and update the pipeline state
        item and start executions of this state machine only (its ARN as a string: no cycle). The FM top-k
        job reads the SageMaker output (fm/*) and the run, and writes the FM version's folder (models/fm-*).
        """
        runs = contracts.CURATED_PREFIX + contracts.RUNS_PREFIX
        models, dsstne_prefix = contracts.MODELS_PREFIX, contracts.DSSTNE_PREFIX
        fm_models = f"{models}{contracts.FM_MODEL_VERSION_PREFIX}"
        evaluate = orchestration.evaluate_function.role
        assert evaluate is not None
        for statement in (
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[curated.arn_for_objects(f"{runs}*")]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{runs}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    artifacts.arn_for_objects(f"{models}*"),
                    artifacts.arn_for_objects(f"{dsstne_prefix}*"),
                ],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{models}*", f"{dsstne_prefix}*"]}},
            ),
            iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[serving.table.table_arn]),
        ):
            evaluate.add_to_principal_policy(statement)
        self._acknowledge_prefixes(
            evaluate,
            (curated, runs, "A run's held-out split and maps (curated/runs/<run id>/), read-only."),
            (artifacts, models, "Model folders (models/<version>/), read-only: candidates and the live one."),
            (artifacts, dsstne_prefix, "DSSTNE model folders (dsstne/<run id>/model/), read-only."),
        )
        for function in (orchestration.finish_function, orchestration.request_function):
            if function is None:
                continue
            role = function.role
            assert role is not None
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                    resources=[ingest.pipeline_state_table.table_arn],
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[orchestration.state_machine_arn]
                )
            )
        job = orchestration.fm_topk_job_role
        for statement in (
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    artifacts.arn_for_objects(f"{contracts.FM_PREFIX}*"),
                    curated.arn_for_objects(f"{runs}*"),
                ],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{runs}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[artifacts.arn_for_objects(f"{fm_models}*")],
            ),
        ):
            job.add_to_principal_policy(statement)
        self._acknowledge_prefixes(
            job,
            (artifacts, contracts.FM_PREFIX, "The SageMaker FM output (fm/<run id>/.../model.tar.gz), read."),
            (curated, runs, "The preprocessing run the model was trained on (maps, train split), read."),
            (artifacts, fm_models, "The FM version's publish folder (models/fm-<run id>/), written."),
        )
        sm_role = orchestration.state_machine.role
        logical_id = self.resolve(curated.node.default_child.logical_id)  # type: ignore[union-attr]
        Validations.of(sm_role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{runs}*/{contracts.RUN_MANIFEST_FILE}]",
                reason="ReadManifest: the manifest.json of a run only; run ids are chosen at start.",
            )
        )

    def _grant_publish_dsstne(self, serving: Serving, artifacts: s3.IBucket) -> None:
        """The publish Lambda also loads a DSSTNE winner from its own folder (dsstne/<run id>/model/)."""
        role = serving.publish_function.role
        assert role is not None
        folder = f"{contracts.DSSTNE_PREFIX}*/{contracts.DSSTNE_MODEL_DIR}"
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[artifacts.arn_for_objects(f"{folder}*")])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{folder}*"]}},
            )
        )
        self._acknowledge_prefixes(
            role, (artifacts, folder, "DSSTNE model folders (dsstne/<run id>/model/), read-only.")
        )
