"""Serving: the serving table, the recommendation Lambda behind an IAM-authenticated HTTP front end, and the
publish Lambda that the orchestration issue's state machine calls (docs/serving.md, docs/infrastructure.md).

Front end, by stage config (`serving_api`):

- "function-url" (default): a Lambda Function URL with AWS_IAM auth. Callers sign requests with SigV4
  (service `lambda`); throttling is the function's reserved concurrency (HTTP 429 beyond it).
- "http-api": an API Gateway HTTP API, IAM authorizer on each of the four routes (SigV4, service
  `execute-api`), JSON access logs, stage throttling. Unrouted paths never reach the function.

The handler learns which one delivers its events from RECSYS_SERVING_API (Function URLs pass the path
percent-encoded, HTTP APIs decoded). With provisioned concurrency the front end targets the alias `live`,
which holds it; otherwise the function itself (`api_target`).

`client_policy` is a customer-managed policy granting exactly what calling the API needs; attach it to the
roles or users that may call. The roles get logs only here: the composition stack grants tables, bucket
prefixes and the events stream in one visible place (`pipeline_stack.py`). Packaging and layers are the
ingest functions' (`stacks/ingest.py`): the same asset builder, the same two public layers.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Size, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from recsys import contracts
from stacks.python_function import packaged_function

RECOMMEND_FUNCTION = "recommend"
PUBLISH_FUNCTION = "publish"
LIVE_ALIAS = "live"
PUBLISH_RESERVED_CONCURRENCY = 1
"""One publish at a time: the pointer switch is safe under races anyway (a conditional transaction), but two
loads would compete for the table's write throughput and one of them would lose its switch."""
API_ROUTES: tuple[tuple[apigwv2.HttpMethod, str], ...] = (
    (apigwv2.HttpMethod.GET, "/recommendations/{user_id}"),
    (apigwv2.HttpMethod.GET, "/similar/{item_id}"),
    (apigwv2.HttpMethod.POST, "/events"),
    (apigwv2.HttpMethod.GET, "/health"),
)
"""The routes of recsys/serving/api.py, in API Gateway's path syntax."""
HTTP_API_STAGE = "$default"
HTTP_API_MAX_TIMEOUT_SECONDS = 30  # API Gateway answers 503 after this, whatever the function's timeout
ACCESS_LOG_FIELDS: Mapping[str, str] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
}
"""One JSON line per request (HTTP API $context variables): who called (IAM identity), what, the answer."""


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """Where and how the HTTP API stage writes its access logs (CDK takes an object with these two)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(json.dumps(dict(ACCESS_LOG_FIELDS), separators=(",", ":")))


class Serving(Construct):
    """The serving table, both Lambdas, the front end (`function_url` or `http_api`), its `url`, and
    `client_policy`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        items_table: dynamodb.ITable,
        recent_events_table: dynamodb.ITable,
        events_stream_name: str,
        artifacts_bucket_name: str,
        powertools_layer: lambda_.ILayerVersion,
        sdk_for_pandas_layer: lambda_.ILayerVersion,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        api: str,
        recommend_memory_mb: int,
        recommend_timeout: Duration,
        recommend_reserved_concurrency: int,
        recommend_provisioned_concurrency: int,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        publish_memory_mb: int,
        publish_timeout: Duration,
        publish_ephemeral_storage: Size,
    ) -> None:
        super().__init__(scope, construct_id)
        if api not in (contracts.SERVING_API_FUNCTION_URL, contracts.SERVING_API_HTTP_API):
            raise ValueError(
                f"api={api!r}: expected {contracts.SERVING_API_FUNCTION_URL} or "
                f"{contracts.SERVING_API_HTTP_API}"
            )
        self.api = api
        self._removal_policy = removal_policy
        self._log_retention = log_retention
        # Staged into cdk.out when each function's asset is created; the folder goes when the process exits.
        self._staging = tempfile.TemporaryDirectory(prefix="recsys-serving-lambdas-")

        self.table = dynamodb.Table(
            self,
            "ServingTable",
            partition_key=dynamodb.Attribute(
                name=contracts.SERVING_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=contracts.SERVING_TTL_ATTRIBUTE,
            removal_policy=removal_policy,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
        )

        # numpy (fold-in) comes from the SDK for pandas layer; it loads only on the fold-in path.
        self.recommend_function = packaged_function(
            self,
            RECOMMEND_FUNCTION,
            staging=Path(self._staging.name),
            log_retention=self._log_retention,
            removal_policy=self._removal_policy,
            service=contracts.RECOMMEND_SERVICE_NAME,
            memory_mb=recommend_memory_mb,
            timeout=recommend_timeout,
            reserved_concurrency=recommend_reserved_concurrency,
            layers=[powertools_layer, sdk_for_pandas_layer],
            environment={
                contracts.SERVING_TABLE_ENV: self.table.table_name,
                contracts.ITEMS_TABLE_ENV: items_table.table_name,
                contracts.RECENT_EVENTS_TABLE_ENV: recent_events_table.table_name,
                contracts.EVENTS_STREAM_ENV: events_stream_name,
                contracts.SERVING_API_ENV: api,
            },
            description=f"Recommendation API (recommendations, similar items, events, health) via {api}",
        )
        self.live_alias: lambda_.Alias | None = None
        self.api_target: lambda_.Function | lambda_.Alias = self.recommend_function
        if recommend_provisioned_concurrency > 0:
            self.live_alias = lambda_.Alias(
                self,
                "RecommendLiveAlias",
                alias_name=LIVE_ALIAS,
                version=self.recommend_function.current_version,
                provisioned_concurrent_executions=recommend_provisioned_concurrency,
            )
            self.api_target = self.live_alias

        self.client_policy = iam.ManagedPolicy(
            self,
            "ApiClientPolicy",
            description="Attach to the roles or users that may call the recommendation API (SigV4)",
        )
        self.function_url: lambda_.FunctionUrl | None = None
        self.http_api: apigwv2.HttpApi | None = None
        self.access_log_group: logs.LogGroup | None = None
        if api == contracts.SERVING_API_FUNCTION_URL:
            self.function_url = self.api_target.add_function_url(
                auth_type=lambda_.FunctionUrlAuthType.AWS_IAM
            )
            # lambda:InvokeFunctionUrl and lambda:InvokeFunction, each only through an IAM-authenticated URL
            self.function_url.grant_invoke_url(self.client_policy)
            self.url: str = self.function_url.url
        else:
            self.url = self._http_api(throttle_rate_limit, throttle_burst_limit)

        self.publish_function = packaged_function(
            self,
            PUBLISH_FUNCTION,
            staging=Path(self._staging.name),
            log_retention=self._log_retention,
            removal_policy=self._removal_policy,
            service=contracts.PUBLISH_SERVICE_NAME,
            memory_mb=publish_memory_mb,
            timeout=publish_timeout,
            reserved_concurrency=PUBLISH_RESERVED_CONCURRENCY,
            layers=[powertools_layer, sdk_for_pandas_layer],  # pyarrow reads the model's Parquet
            environment={
                contracts.SERVING_TABLE_ENV: self.table.table_name,
                contracts.ARTIFACTS_BUCKET_ENV: artifacts_bucket_name,
            },
            description="Publish a model version (s3://<artifacts>/models/<v>/), switch the live pointer",
            ephemeral_storage=publish_ephemeral_storage,  # the model folder is copied to /tmp first
        )

    # --- front end: HTTP API -------------------------------------------------------------------------------

    def _http_api(self, rate_limit: int, burst_limit: int) -> str:
        """The four routes, each with the IAM authorizer; access logs and throttling on the one stage."""
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description="Recommendation API (IAM-authenticated)",
            create_default_stage=False,
            default_authorizer=authorizers.HttpIamAuthorizer(),
        )
        integration = integrations.HttpLambdaIntegration(
            "RecommendIntegration",
            self.api_target,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            scope_permission_to_route=True,  # API Gateway may invoke the function for these routes only
        )
        for method, path in API_ROUTES:
            for route in self.http_api.add_routes(path=path, methods=[method], integration=integration):
                route.grant_invoke(self.client_policy, http_methods=[method])
        self.access_log_group = logs.LogGroup(
            self, "HttpApiAccessLogs", retention=self._log_retention, removal_policy=self._removal_policy
        )
        stage = self.http_api.add_stage(
            "DefaultStage",
            stage_name=HTTP_API_STAGE,
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(self.access_log_group),
            throttle=apigwv2.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
        )
        Validations.of(self.client_policy).acknowledge(
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
                    f"<AWS::AccountId>:<{self._logical_id(self.http_api)}>/*/{method.value}{_arn_path(path)}]",
                    reason="execute-api:Invoke on one route of this API (CDK's HttpRoute.grant_invoke): the "
                    "stage is '*' (the API has one, $default) and so is a path parameter.",
                )
                for method, path in API_ROUTES
            )
        )
        return stage.url

    def _logical_id(self, construct: Construct) -> str:
        child = construct.node.default_child
        assert child is not None
        return str(Stack.of(self).resolve(child.logical_id))  # type: ignore[attr-defined]

    # --- functions -----------------------------------------------------------------------------------------


def _arn_path(path: str) -> str:
    """A route path as it appears in an execute-api ARN: each {parameter} becomes '*'."""
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))
