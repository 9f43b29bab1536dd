"""Monitoring: the encrypted topic, alarms on the failure signals, the Batch failure rule, the dashboard.

Plugin-free synths (cdk-nag has its own test): dev as committed (Function URL), and dev with the HTTP API
front end, whose 5xx alarm reads API Gateway's metric instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from recsys import contracts
from stacks.app_factory import build_app, cdk_json_context, stack_id
from stacks.pipeline_stack import RecsysPipelineStack


class Synth:
    def __init__(self, outdir: Path, **overrides: Any) -> None:
        stages = cdk_json_context()["stages"]
        context = {
            "stage": "dev",
            "aws:cdk:bundling-stacks": [],
            "stages": {"dev": {**stages["dev"], **overrides}},
        }
        app = build_app(context=context, outdir=str(outdir), nag=False)
        stack = app.node.find_child(stack_id("dev"))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack = stack
        self.template = Template.from_stack(stack)
        self.resources: dict[str, Any] = dict(self.template.to_json())["Resources"]

    def id(self, construct: Any) -> str:
        child = getattr(construct, "node", None) and construct.node.default_child
        return str(self.stack.resolve((child or construct).logical_id))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r["Properties"] for r in self.resources.values() if r["Type"] == kind]

    def alarm(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[self.id(self.stack.monitoring.alarms[name])]["Properties"]
        return props


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("dev"))


@pytest.fixture(scope="module")
def http_api(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("http"), serving_api="http-api", alarm_email="ops@example.com")


def test_topic_is_kms_encrypted_ssl_only_and_usable_by_alarms_and_rules(dev: Synth) -> None:
    notifications = dev.stack.notifications
    topic = dev.resources[dev.id(notifications.topic)]["Properties"]
    key_arn = {"Fn::GetAtt": [dev.id(notifications.key), "Arn"]}
    assert topic["KmsMasterKeyId"] == key_arn
    (policy,) = dev.of_type("AWS::SNS::TopicPolicy")
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    key = dev.resources[dev.id(notifications.key)]["Properties"]
    assert key["EnableKeyRotation"] is True
    services: set[str] = set()
    for statement in key["KeyPolicy"]["Statement"]:
        service = statement["Principal"].get("Service", [])
        if "kms:GenerateDataKey" in statement["Action"]:
            services.update([service] if isinstance(service, str) else service)
    assert {"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= services
    assert dev.of_type("AWS::SNS::Subscription") == []  # no alarm_email in dev


def test_every_failure_signal_has_an_alarm_to_the_topic(dev: Synth) -> None:
    monitoring = dev.stack.monitoring
    topic = {"Ref": dev.id(dev.stack.notifications.topic)}
    expected = {
        "DeadLetterQueue": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "PipelineFailed": ("AWS/States", "ExecutionsFailed"),
        "PipelineTimedOut": ("AWS/States", "ExecutionsTimedOut"),
        "PipelineAborted": ("AWS/States", "ExecutionsAborted"),
        "Api5xx": ("AWS/Lambda", "Url5xxCount"),
    }
    functions = ("Ingest", "Events", "Recommend", "Publish", "Evaluate", "Finish")
    expected.update({f"{name}Errors": ("AWS/Lambda", "Errors") for name in functions})
    assert set(monitoring.alarms) == set(expected)
    for name, (namespace, metric) in expected.items():
        alarm = dev.alarm(name)
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric), name
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [topic], name
    sm = dev.id(dev.stack.orchestration.state_machine)
    assert dev.alarm("PipelineFailed")["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": sm}}]


def test_batch_jobs_that_fail_reach_the_topic(dev: Synth) -> None:
    (rule,) = dev.of_type("AWS::Events::Rule")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail"]["status"] == ["FAILED"]
    queues = [dev.stack.dsstne.job_queue, dev.stack.orchestration.fm_topk_queue]
    assert pattern["detail"]["jobQueue"] == [{"Fn::GetAtt": [dev.id(q), "JobQueueArn"]} for q in queues]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": dev.id(dev.stack.notifications.topic)}
    assert "<detail-jobName>" in target["InputTransformer"]["InputTemplate"]
    assert target["InputTransformer"]["InputPathsMap"]["detail-statusReason"] == "$.detail.statusReason"


def test_dashboard_shows_ingest_runs_models_api_dlq_and_batch(dev: Synth) -> None:
    (dashboard,) = dev.of_type("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["DashboardBody"])
    for needle in (
        contracts.INGEST_ROWS_QUARANTINED_METRIC,
        "ApproximateNumberOfMessagesVisible",
        "ExecutionsStarted",
        "ExecutionTime",
        "SEARCH(",
        contracts.PIPELINE_SERVICE_NAME,
        "p50",
        "p99",
        "Url5xxCount",
        "UrlRequestLatency",
        "MatchedEvents",
    ):
        assert needle in body, needle


def test_http_api_alarms_on_api_gateway_5xx_and_subscribes_the_email(http_api: Synth) -> None:
    alarm = http_api.alarm("Api5xx")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/ApiGateway", "5xx")
    (subscription,) = http_api.of_type("AWS::SNS::Subscription")
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "ops@example.com"
    (dashboard,) = http_api.of_type("AWS::CloudWatch::Dashboard")
    assert "AWS/ApiGateway" in json.dumps(dashboard["DashboardBody"])
