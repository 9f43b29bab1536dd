"""Ingest: uploads to the ingest bucket → SQS → the ingest Lambda; real-time events → the events Lambda →
DynamoDB recent events + Firehose → the ingest bucket; the tables both write.

Data flow (DESIGN.md §2): S3 sends an object-created notification for every key under `catalog/` and
`transactions/` (Firehose's deliveries under `transactions/stream/` included, on purpose) to the ingest
queue; the ingest Lambda consumes it in small batches, reporting failures per message, and a message that
keeps failing lands in the dead-letter queue after MAX_RECEIVE_COUNT receives. Nothing is dropped.

The roles get no data permissions here: the composition stack grants S3 prefixes, tables, the stream and the
state machine in one visible place (`pipeline_stack.py`).

Packaging, without Docker: each function's asset is a folder written at synth holding `lambdas/__init__.py`,
`lambdas/<function>/*.py` and every `.py` of `recsys/` (sources only, no `__pycache__`). CDK hashes a folder
by its files' paths and bytes, so the asset (and the deployed code) changes only when a source does.
Dependencies come from public layers, whose ARNs are resolved by CloudFormation at deploy time, so synth
stays offline: Powertools from the SSM parameter AWS publishes, pyarrow and numpy from the AWS SDK for
pandas managed layer (a per-region table, see SDK_FOR_PANDAS_LAYERS).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Aws,
    CfnMapping,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from recsys import contracts
from stacks.python_function import ARCHITECTURE, RUNTIME, packaged_function

POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/latest"
"""Public SSM parameter naming the latest Powertools layer for this runtime and architecture."""
SDK_FOR_PANDAS_LAYERS: Mapping[str, str] = {
    **{
        region: f"arn:aws:lambda:{region}:336392948345:layer:AWSSDKPandas-Python311:23"
        for region in (
            "af-south-1",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "eu-central-1",
            "eu-north-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        )
    },
    "ap-east-1": "arn:aws:lambda:ap-east-1:839552336658:layer:AWSSDKPandas-Python311:25",
    "ap-south-2": "arn:aws:lambda:ap-south-2:246107603503:layer:AWSSDKPandas-Python311:24",
    "ap-southeast-3": "arn:aws:lambda:ap-southeast-3:258944054355:layer:AWSSDKPandas-Python311:25",
    "ap-southeast-4": "arn:aws:lambda:ap-southeast-4:945386623051:layer:AWSSDKPandas-Python311:24",
    "eu-central-2": "arn:aws:lambda:eu-central-2:956415814219:layer:AWSSDKPandas-Python311:24",
    "eu-south-1": "arn:aws:lambda:eu-south-1:774444163449:layer:AWSSDKPandas-Python311:25",
    "eu-south-2": "arn:aws:lambda:eu-south-2:982086096842:layer:AWSSDKPandas-Python311:24",
    "il-central-1": "arn:aws:lambda:il-central-1:263840725265:layer:AWSSDKPandas-Python311:23",
    "me-central-1": "arn:aws:lambda:me-central-1:593833071574:layer:AWSSDKPandas-Python311:23",
    "me-south-1": "arn:aws:lambda:me-south-1:938046470361:layer:AWSSDKPandas-Python311:25",
    "cn-north-1": "arn:aws-cn:lambda:cn-north-1:406640652441:layer:AWSSDKPandas-Python311:20",
    "cn-northwest-1": "arn:aws-cn:lambda:cn-northwest-1:406640652441:layer:AWSSDKPandas-Python311:19",
}
"""AWS SDK for pandas 3.13.0 (pyarrow, numpy, pandas), Python 3.11, x86_64, by region: the table its project
publishes (aws/aws-sdk-pandas docs/source/layers.rst). Its SSM parameters were documented and withdrawn
within days (aws/aws-sdk-pandas PRs #2486, #2489), so the table is the published channel. 3.13.0 rather
than the newest: 3.16.1 grew the layer to about 204 MB unzipped (aws/aws-sdk-pandas#3331), too close to
Lambda's 250 MB for code plus layers together with Powertools. A region not listed fails at deploy time."""

INGEST_FUNCTION = "ingest"
EVENTS_FUNCTION = "events"
INGEST_BATCH_SIZE = 1
"""One object per invocation: an object may take most of the time limit, and objects of one batch would
share it (the handler hands a file to the Glue job when too little time is left)."""
MAX_RECEIVE_COUNT = 3
"""Receives before a message goes to the dead-letter queue (each receive is a full attempt: botocore already
retries throttling and 5xx inside it)."""
VISIBILITY_TIMEOUT_FACTOR = 6  # AWS's advice for SQS event sources: six times the function timeout
QUEUE_RETENTION = Duration.days(4)
DLQ_RETENTION = Duration.days(14)  # SQS's maximum; longer than the queue's, as a standard DLQ needs
FIREHOSE_BUFFER_INTERVAL = Duration.seconds(60)
FIREHOSE_BUFFER_MIB = 5
EVENTS_STREAM_DATA_PREFIX = contracts.EVENTS_STREAM_PREFIX + "!{timestamp:yyyy/MM/dd}/"
FIREHOSE_ERRORS_PREFIX = "firehose-errors/"
"""Outside catalog/ and transactions/, so failed deliveries are never ingested."""
EVENTS_STREAM_ERROR_PREFIX = FIREHOSE_ERRORS_PREFIX + "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
FIREHOSE_LOG_STREAM = "S3Delivery"
METRIC_PERIOD = Duration.minutes(5)
BUCKET_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
"""The singleton Lambda CDK adds to a stack to configure bucket notifications (fixed id in aws-cdk-lib)."""


class Ingest(Construct):
    """Queue, dead-letter queue, the two Lambdas, the five tables and the events stream, as attributes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ingest_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        removal_policy: RemovalPolicy,
        ingest_memory_mb: int,
        ingest_timeout: Duration,
        ingest_reserved_concurrency: int,
        events_memory_mb: int,
        events_timeout: Duration,
        events_reserved_concurrency: int,
        log_retention: logs.RetentionDays,
        state_machine_arn: str | None = None,
        sdk_for_pandas_layers: Mapping[str, str] = SDK_FOR_PANDAS_LAYERS,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self._log_retention = log_retention
        self.state_machine_arn = state_machine_arn
        self._tables()
        self._queues(ingest_timeout)
        self._events_stream(ingest_bucket)
        # Staged into cdk.out when each function's asset is created; the folder goes when the process exits.
        self._staging = tempfile.TemporaryDirectory(prefix="recsys-lambdas-")
        self.powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )
        pandas_arns = CfnMapping(
            self,
            "SdkForPandasLayer",
            mapping={region: {"arn": arn} for region, arn in sdk_for_pandas_layers.items()},
        )
        self.sdk_for_pandas_layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "SdkForPandasLayerVersion", pandas_arns.find_in_map(Aws.REGION, "arn")
        )

        environment = {
            contracts.INGEST_BUCKET_ENV: ingest_bucket.bucket_name,
            contracts.CURATED_BUCKET_ENV: curated_bucket.bucket_name,
            contracts.INGEST_MANIFEST_TABLE_ENV: self.manifest_table.table_name,
            contracts.INGEST_IDEMPOTENCY_TABLE_ENV: self.idempotency_table.table_name,
            contracts.ITEMS_TABLE_ENV: self.items_table.table_name,
            contracts.PIPELINE_STATE_TABLE_ENV: self.pipeline_state_table.table_name,
            **({contracts.STATE_MACHINE_ARN_ENV: state_machine_arn} if state_machine_arn else {}),
        }
        self.ingest_function = packaged_function(
            self,
            INGEST_FUNCTION,
            staging=Path(self._staging.name),
            log_retention=self._log_retention,
            removal_policy=self._removal_policy,
            service=contracts.INGEST_SERVICE_NAME,
            memory_mb=ingest_memory_mb,
            timeout=ingest_timeout,
            reserved_concurrency=ingest_reserved_concurrency,
            layers=[self.powertools_layer, self.sdk_for_pandas_layer],
            environment=environment,
            description="Ingest: S3 uploads (via SQS) -> validated curated Parquet, quarantine, manifest",
        )
        self.ingest_event_source = event_sources.SqsEventSource(
            self.queue,
            batch_size=INGEST_BATCH_SIZE,
            report_batch_item_failures=True,
            # The poller never runs more copies than are reserved, so no message is throttled towards the DLQ.
            max_concurrency=ingest_reserved_concurrency,
        )
        self.ingest_function.add_event_source(self.ingest_event_source)
        self.events_function = packaged_function(
            self,
            EVENTS_FUNCTION,
            staging=Path(self._staging.name),
            log_retention=self._log_retention,
            removal_policy=self._removal_policy,
            service=contracts.EVENTS_SERVICE_NAME,
            memory_mb=events_memory_mb,
            timeout=events_timeout,
            reserved_concurrency=events_reserved_concurrency,
            layers=[self.powertools_layer],
            environment={
                contracts.RECENT_EVENTS_TABLE_ENV: self.recent_events_table.table_name,
                contracts.EVENTS_STREAM_ENV: self.events_stream.ref,
            },
            description="Real-time events -> DynamoDB recent events + Firehose (HTTP route: serving issue)",
        )
        self._notifications(ingest_bucket)
        self._metrics()

    # --- tables --------------------------------------------------------------------------------------------

    def _tables(self) -> None:
        self.manifest_table = self._table(
            "ManifestTable", contracts.MANIFEST_PARTITION_KEY, sort_key=contracts.MANIFEST_SORT_KEY
        )
        self.idempotency_table = self._table(
            "IdempotencyTable", contracts.IDEMPOTENCY_PARTITION_KEY, ttl=contracts.IDEMPOTENCY_TTL_ATTRIBUTE
        )
        self.items_table = self._table("ItemsTable", contracts.ITEMS_PARTITION_KEY)
        self.recent_events_table = self._table(
            "RecentEventsTable",
            contracts.RECENT_EVENTS_PARTITION_KEY,
            sort_key=contracts.RECENT_EVENTS_SORT_KEY,
            ttl=contracts.RECENT_EVENTS_TTL_ATTRIBUTE,
        )
        self.pipeline_state_table = self._table("PipelineStateTable", contracts.PIPELINE_STATE_PARTITION_KEY)

    def _table(
        self, construct_id: str, partition_key: str, *, sort_key: str | None = None, ttl: str | None = None
    ) -> dynamodb.Table:
        """On demand, AWS-managed KMS encryption, point-in-time recovery; string keys (recsys.contracts)."""
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
            if sort_key
            else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl,
            removal_policy=self._removal_policy,
            deletion_protection=self._removal_policy == RemovalPolicy.RETAIN,
        )

    # --- queues --------------------------------------------------------------------------------------------

    def _queues(self, ingest_timeout: Duration) -> None:
        """SQS-managed encryption (SSE-SQS): S3 can send to it with no key policy, unlike an SSE-KMS queue,
        whose key must let s3.amazonaws.com use it (and the AWS-managed aws/sqs key cannot)."""
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            removal_policy=self._removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * ingest_timeout.to_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
            removal_policy=self._removal_policy,
        )

    def _notifications(self, ingest_bucket: s3.IBucket) -> None:
        """Object-created events under each upload prefix go to the queue (one notification per prefix)."""
        for prefix in (contracts.CATALOG_PREFIX, contracts.TRANSACTIONS_PREFIX):
            ingest_bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.SqsDestination(self.queue),
                s3.NotificationKeyFilter(prefix=prefix),
            )
        handler = Stack.of(self).node.try_find_child(BUCKET_NOTIFICATIONS_HANDLER)
        if handler is None:
            raise RuntimeError(
                f"aws-cdk-lib no longer names its bucket notifications handler {BUCKET_NOTIFICATIONS_HANDLER}"
            )
        # Its role has the AWS-managed basic execution policy (logs); its own policy is scoped to the bucket.
        Validations.of(handler.node.find_child("Role")).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                reason="CDK's bucket notifications handler (a custom resource run at deploy time) writes its "
                "logs with the AWS-managed basic execution policy; CDK offers no prop to replace it.",
            )
        )

    # --- functions -----------------------------------------------------------------------------------------

    # --- events stream -------------------------------------------------------------------------------------

    def _events_stream(self, ingest_bucket: s3.IBucket) -> None:
        """Firehose (DirectPut) → `transactions/stream/<yyyy/MM/dd>/` of the ingest bucket, plain CSV.

        No compression: the ingest Lambda reads the objects like any upload. Server-side encryption with an
        AWS-owned key; the objects then get the bucket's SSE-S3. Delivery errors are logged to CloudWatch
        and the failed records written under `firehose-errors/`. The role's S3 grants are in the stack.
        """
        self.events_stream_role = iam.Role(
            self,
            "EventsStreamRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}}
            ),
            description="Firehose events stream: its delivery logs here; S3 prefixes granted in the stack",
        )
        self.events_stream_log_group = logs.LogGroup(
            self, "EventsStreamLogs", retention=self._log_retention, removal_policy=self._removal_policy
        )
        log_stream = logs.LogStream(
            self,
            "EventsStreamDeliveryLogs",
            log_group=self.events_stream_log_group,
            log_stream_name=FIREHOSE_LOG_STREAM,
            removal_policy=self._removal_policy,
        )
        log_stream_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.events_stream_log_group.log_group_name}:log-stream:{FIREHOSE_LOG_STREAM}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.events_stream_role.add_to_policy(
            iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[log_stream_arn])
        )
        props = firehose.CfnDeliveryStream
        self.events_stream = firehose.CfnDeliveryStream(
            self,
            "EventsStream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=props.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=props.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=ingest_bucket.bucket_arn,
                role_arn=self.events_stream_role.role_arn,
                prefix=EVENTS_STREAM_DATA_PREFIX,
                error_output_prefix=EVENTS_STREAM_ERROR_PREFIX,
                buffering_hints=props.BufferingHintsProperty(
                    interval_in_seconds=int(FIREHOSE_BUFFER_INTERVAL.to_seconds()),
                    size_in_m_bs=FIREHOSE_BUFFER_MIB,
                ),
                compression_format="UNCOMPRESSED",
                cloud_watch_logging_options=props.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.events_stream_log_group.log_group_name,
                    log_stream_name=FIREHOSE_LOG_STREAM,
                ),
            ),
        )
        # Firehose checks its access when the stream is created: the role and every policy added to it
        # (here and in the stack) must exist first.
        self.events_stream.node.add_dependency(self.events_stream_role)
        self.events_stream.node.add_dependency(log_stream)

    # --- metrics -------------------------------------------------------------------------------------------

    def _metrics(self) -> None:
        """For the monitoring issue's alarms: the DLQ's depth and the ingest Lambda's quarantine counts."""
        self.dead_letter_queue_depth_metric = (
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            )
        )
        dimensions = {"service": contracts.INGEST_SERVICE_NAME}  # Powertools Metrics' default dimension

        def count(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=contracts.METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=cloudwatch.Stats.SUM,
                period=METRIC_PERIOD,
            )

        self.rows_accepted_metric = count(contracts.INGEST_ROWS_ACCEPTED_METRIC)
        self.rows_quarantined_metric = count(contracts.INGEST_ROWS_QUARANTINED_METRIC)
        self.files_rejected_metric = count(contracts.INGEST_FILES_REJECTED_METRIC)
