"""The data lake's buckets: security baseline, lifecycle rules and per-stage retention.

Assertions run on a plugin-free app (cdk-nag has its own test), built by the same factory as `app.py`,
one synth per stage for the whole module.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from recsys import contracts
from stacks.app_factory import build_app, stack_id
from stacks.config import StageConfig
from stacks.pipeline_stack import RecsysPipelineStack

STAGES = ("dev", "prod")


class Synth:
    def __init__(self, stage: str) -> None:
        app = build_app(context={"stage": stage, "aws:cdk:bundling-stacks": []}, nag=False)
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack = stack
        self.config = StageConfig.from_context(stage, app.node.try_get_context("stages"))
        self.template = Template.from_stack(stack)
        self.buckets: dict[str, dict[str, Any]] = self.template.find_resources("AWS::S3::Bucket")
        lake = stack.data_lake
        self.ids = {
            name: logical_id(stack, getattr(lake, f"{name}_bucket"))
            for name in ("access_log", "ingest", "curated", "artifacts")
        }

    def props(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.buckets[self.ids[name]]["Properties"]
        return props

    def rule(self, name: str, rule_id: str) -> dict[str, Any]:
        rules = self.props(name)["LifecycleConfiguration"]["Rules"]
        (rule,) = [r for r in rules if r["Id"] == rule_id]
        return dict(rule)


def logical_id(stack: Stack, construct: Any) -> str:
    return str(stack.resolve(construct.node.default_child.logical_id))


@pytest.fixture(scope="module")
def synths() -> dict[str, Synth]:
    return {stage: Synth(stage) for stage in STAGES}


@pytest.fixture(scope="module")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


DATA_BUCKETS = ("ingest", "curated", "artifacts")
ALL_BUCKETS = ("access_log", *DATA_BUCKETS)


def test_four_buckets(dev: Synth) -> None:
    dev.template.resource_count_is("AWS::S3::Bucket", 4)


@pytest.mark.parametrize("name", ALL_BUCKETS)
def test_every_bucket_is_encrypted_and_private(dev: Synth, name: str) -> None:
    props = dev.props(name)
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse == [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


@pytest.mark.parametrize("name", ALL_BUCKETS)
def test_every_bucket_policy_denies_plain_http_and_old_tls(dev: Synth, name: str) -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Principal": {"AWS": "*"}}
    dev.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": dev.ids[name]},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({**deny, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                        Match.object_like({**deny, "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}}),
                    ]
                )
            },
        },
    )


@pytest.mark.parametrize("name", DATA_BUCKETS)
def test_data_buckets_are_versioned_and_log_to_the_log_bucket(dev: Synth, name: str) -> None:
    props = dev.props(name)
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": dev.ids["access_log"]},
        "LogFilePrefix": f"{name}/",
    }


def test_log_bucket_does_not_log_to_itself_and_admits_the_logging_service(dev: Synth) -> None:
    assert "LoggingConfiguration" not in dev.props("access_log")
    dev.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": dev.ids["access_log"]},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": "s3:PutObject",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                            }
                        )
                    ]
                )
            },
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_lifecycle_rules_follow_the_stage_config(synths: dict[str, Synth], stage: str) -> None:
    synth = synths[stage]
    config = synth.config
    assert synth.rule("ingest", "ExpireQuarantine") == {
        "Id": "ExpireQuarantine",
        "Prefix": contracts.QUARANTINE_PREFIX,
        "ExpirationInDays": config.quarantine_expiry_days,
        "Status": "Enabled",
    }
    for name in DATA_BUCKETS:
        tidy = synth.rule(name, "TidyVersionsAndUploads")
        assert tidy["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": config.noncurrent_version_expiry_days
        }
        assert tidy["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": config.abort_incomplete_upload_days
        }
        assert tidy["ExpiredObjectDeleteMarker"] is True
    assert synth.rule("access_log", "ExpireLogs")["ExpirationInDays"] == config.access_log_retention_days


def test_only_the_ingest_bucket_expires_the_quarantine(dev: Synth) -> None:
    for name in ("curated", "artifacts"):
        ids = [r["Id"] for r in dev.props(name)["LifecycleConfiguration"]["Rules"]]
        assert ids == ["TidyVersionsAndUploads"]


def test_dev_buckets_are_destroyed_and_emptied_with_the_stack(synths: dict[str, Synth]) -> None:
    dev = synths["dev"]
    assert dev.config.removal_policy == "destroy"
    assert dev.config.auto_delete_objects
    for bucket in dev.buckets.values():
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Delete", "Delete")
    dev.template.resource_count_is("Custom::S3AutoDeleteObjects", 4)
    assert not dev.stack.termination_protection


def test_prod_buckets_are_retained_and_the_stack_protected(synths: dict[str, Synth]) -> None:
    prod = synths["prod"]
    assert prod.config.removal_policy == "retain"
    for bucket in prod.buckets.values():
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    prod.template.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    functions = prod.template.find_resources("AWS::Lambda::Function")  # the ingest part has its own
    assert not [f for f in functions if f.startswith("CustomS3AutoDeleteObjects")]
    assert prod.stack.termination_protection


@pytest.mark.parametrize(
    ("output", "name"),
    [
        ("IngestBucketName", "ingest"),
        ("CuratedBucketName", "curated"),
        ("ArtifactsBucketName", "artifacts"),
        ("AccessLogBucketName", "access_log"),
    ],
)
def test_bucket_names_are_stack_outputs(dev: Synth, output: str, name: str) -> None:
    dev.template.has_output(output, {"Value": {"Ref": dev.ids[name]}})


def test_bucket_names_are_left_to_cloudformation(dev: Synth) -> None:
    # Explicit names would clash between stages and accounts; the outputs carry the generated ones.
    assert all("BucketName" not in dev.props(name) for name in ALL_BUCKETS)
