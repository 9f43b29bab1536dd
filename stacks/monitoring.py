"""Operations: the encrypted topic that pipeline notifications and alarms go to, the alarms, the dashboard.

`Notifications` comes first (the state machine notifies through it); `Monitoring` is built last, from the
other constructs' resources and metrics. Alarms fire on the failure signals an operator acts on:

- the ingest dead-letter queue holds a message (an upload failed ingest MAX_RECEIVE_COUNT times);
- a pipeline run failed, timed out or was aborted;
- the recommendation API answered 5xx;
- any of the pipeline's Lambdas reported an error;
- an AWS Batch job (DSSTNE, FM top-k) ended FAILED: an EventBridge rule sends the job's own event to the
  topic (Batch publishes no failure metric), and the dashboard counts the rule's matches.

Model metrics are the evaluate step's embedded metrics (namespace contracts.METRICS_NAMESPACE, dimensions
service, model, version); the dashboard finds every version with a SEARCH expression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from recsys import contracts
from stacks.encryption import allow_cloudwatch_logs
from stacks.ingest import Ingest
from stacks.serving import Serving

PERIOD = Duration.minutes(5)
MODEL_METRICS_PERIOD = Duration.days(1)
DASHBOARD_WIDTH = 24


class Notifications(Construct):
    """A rotating KMS key and the SNS topic it encrypts (SSL-only publishing).

    The key also encrypts the state machine's log group; its policy lets CloudWatch alarms, EventBridge
    and CloudWatch Logs (this account and region) use it, which an AWS-managed key cannot allow."""

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy, email: str = ""
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="Pipeline notifications, alarms and the state machine's logs",
            removal_policy=removal_policy,
        )
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],  # in a key policy, "*" is this key
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )
        allow_cloudwatch_logs(self.key)
        self.topic = sns.Topic(
            self,
            "Topic",
            master_key=self.key,
            enforce_ssl=True,
            display_name="Recommender pipeline: runs and alarms",
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


class Monitoring(Construct):
    """Alarms (`alarms`, by name) to the topic, the Batch failure rule, and the dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        ingest: Ingest,
        serving: Serving,
        state_machine: sfn.IStateMachine,
        functions: Mapping[str, lambda_.IFunction],
        job_queues: Sequence[batch.IJobQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        action = cw_actions.SnsAction(topic)

        def alarm(name: str, metric: cloudwatch.IMetric, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            self.alarms[name] = created

        alarm(
            "DeadLetterQueue",
            ingest.dead_letter_queue_depth_metric,
            "An upload failed ingest repeatedly and waits in the dead-letter queue: fix, then redrive.",
        )
        run_metrics = {
            "PipelineFailed": state_machine.metric_failed(period=PERIOD, statistic="Sum"),
            "PipelineTimedOut": state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            "PipelineAborted": state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
        }
        for name, metric in run_metrics.items():
            alarm(name, metric, f"{name}: the live model is unchanged; the run's notification says why.")
        alarm("Api5xx", self._api_5xx(serving), "The recommendation API answered 5xx.")
        for name, function in functions.items():
            alarm(
                f"{name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"The {name} Lambda reported errors (see its log group).",
            )
        self.batch_failures_rule = events.Rule(
            self,
            "BatchJobFailedRule",
            description="AWS Batch jobs of the pipeline that ended FAILED",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": [q.job_queue_arn for q in job_queues]},
            ),
        )
        self.batch_failures_rule.add_target(
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_object(
                    {
                        "alarm": "BatchJobFailed",
                        "job": events.EventField.from_path("$.detail.jobName"),
                        "jobId": events.EventField.from_path("$.detail.jobId"),
                        "queue": events.EventField.from_path("$.detail.jobQueue"),
                        "reason": events.EventField.from_path("$.detail.statusReason"),
                    }
                ),
            )
        )
        self.batch_failures_metric = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            dimensions_map={"RuleName": self.batch_failures_rule.rule_name},
            statistic=cloudwatch.Stats.SUM,
            period=PERIOD,
        )
        self.dashboard = self._dashboard(ingest, serving, state_machine, functions)

    def _api_5xx(self, serving: Serving) -> cloudwatch.IMetric:
        if serving.http_api is not None:
            return serving.http_api.metric_server_error(period=PERIOD, statistic="Sum")
        return self._url_metric(serving, "Url5xxCount", "Sum")

    def _url_metric(self, serving: Serving, name: str, statistic: str) -> cloudwatch.Metric:
        """Function URL metrics (AWS/Lambda); with the alias `live` they carry its Resource dimension."""
        function_name = serving.recommend_function.function_name
        dimensions = {"FunctionName": function_name}
        if serving.live_alias is not None:
            dimensions["Resource"] = f"{function_name}:{serving.live_alias.alias_name}"
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=PERIOD,
        )

    def _dashboard(
        self,
        ingest: Ingest,
        serving: Serving,
        state_machine: sfn.IStateMachine,
        functions: Mapping[str, lambda_.IFunction],
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(7))

        def graph(title: str, metrics: list[cloudwatch.IMetric], width: int = 8) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6)

        objects = ingest.ingest_function.metric_invocations(period=PERIOD, statistic="Sum", label="Objects")
        dashboard.add_widgets(
            graph("Ingest: objects processed", [objects]),
            graph(
                "Ingest: rows accepted and quarantined, files rejected",
                [ingest.rows_accepted_metric, ingest.rows_quarantined_metric, ingest.files_rejected_metric],
            ),
            graph("Ingest: dead-letter queue depth", [ingest.dead_letter_queue_depth_metric]),
        )
        dashboard.add_widgets(
            graph(
                "Pipeline runs",
                [
                    state_machine.metric_started(period=PERIOD, statistic="Sum", label="started"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum", label="succeeded"),
                    state_machine.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum", label="timed out"),
                ],
            ),
            graph(
                "Pipeline run duration (ms)",
                [
                    state_machine.metric_time(period=PERIOD, statistic="Average", label="average"),
                    state_machine.metric_time(period=PERIOD, statistic="Maximum", label="maximum"),
                ],
            ),
            graph("Batch jobs failed (DSSTNE, FM top-k)", [self.batch_failures_metric]),
        )
        search = (
            f"SEARCH('{{{contracts.METRICS_NAMESPACE},{contracts.MODEL_METRIC_DIMENSION},service,version}} "
            f"service=\"{contracts.PIPELINE_SERVICE_NAME}\"', 'Maximum', "
            f"{int(MODEL_METRICS_PERIOD.to_seconds())})"
        )
        dashboard.add_widgets(
            graph(
                "Model metrics per model and version (evaluate step)",
                [cloudwatch.MathExpression(expression=search, label="", period=MODEL_METRICS_PERIOD)],
                width=DASHBOARD_WIDTH,
            )
        )
        recommend = serving.recommend_function
        latency = [
            recommend.metric_duration(period=PERIOD, statistic="p50", label="Lambda p50"),
            recommend.metric_duration(period=PERIOD, statistic="p99", label="Lambda p99"),
        ]
        if serving.http_api is not None:
            latency += [
                serving.http_api.metric_latency(period=PERIOD, statistic="p50", label="API p50"),
                serving.http_api.metric_latency(period=PERIOD, statistic="p99", label="API p99"),
            ]
            api_errors: list[cloudwatch.IMetric] = [
                serving.http_api.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
                serving.http_api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
            ]
        else:
            latency += [
                self._url_metric(serving, "UrlRequestLatency", "p50").with_(label="URL p50"),
                self._url_metric(serving, "UrlRequestLatency", "p99").with_(label="URL p99"),
            ]
            api_errors = [
                self._url_metric(serving, "Url4xxCount", "Sum").with_(label="4xx"),
                self._url_metric(serving, "Url5xxCount", "Sum").with_(label="5xx"),
            ]
        dashboard.add_widgets(
            graph("API latency (ms)", latency),
            graph("API errors", api_errors),
            graph(
                "Lambda errors",
                [
                    f.metric_errors(period=PERIOD, statistic="Sum", label=name)
                    for name, f in functions.items()
                ],
            ),
        )
        return dashboard
