"""The events Lambda handler with real event shapes (Function URL / HTTP API payload 2.0, base64 bodies,
direct invocation) against moto, and its lean import."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.events import handler
from recsys import contracts

REGION = "us-east-1"
RECENT = "recsys-handler-recent"
STREAM = "recsys-handler-stream"
BUCKET = "recsys-handler-events-ingest"
REPO = Path(__file__).resolve().parents[3]

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    contracts.RECENT_EVENTS_TABLE_ENV: RECENT,
    contracts.EVENTS_STREAM_ENV: STREAM,
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    handler.sinks.cache_clear()
    yield
    handler.sinks.cache_clear()


class Aws:
    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb.create_table(
            TableName=RECENT,
            KeySchema=[
                {"AttributeName": contracts.RECENT_EVENTS_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": contracts.RECENT_EVENTS_SORT_KEY, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": contracts.RECENT_EVENTS_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": contracts.RECENT_EVENTS_SORT_KEY, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.s3.create_bucket(Bucket=BUCKET)

    def create_stream(self) -> None:
        boto3.client("firehose", region_name=REGION).create_delivery_stream(
            DeliveryStreamName=STREAM,
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/recsys-firehose",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": contracts.EVENTS_STREAM_PREFIX,
            },
        )

    def recent_count(self) -> int:
        return int(self.dynamodb.scan(TableName=RECENT, Select="COUNT")["Count"])

    def delivered(self) -> bytes:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=contracts.EVENTS_STREAM_PREFIX).get(
            "Contents", []
        )
        return b"".join(self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed)


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        state = Aws()
        state.create_stream()
        yield state


def function_url_event(body: str, *, base64_encoded: bool = False) -> dict[str, Any]:
    """A Lambda Function URL request (the HTTP API payload format 2.0)."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/events",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "http": {
                "method": "POST",
                "path": "/events",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1764331200000,
        },
        "body": base64.b64encode(body.encode()).decode() if base64_encoded else body,
        "isBase64Encoded": base64_encoded,
    }


EVENT = {"user_id": "alice", "item_id": "movie-1", "event_type": "view", "timestamp": 1764331200}


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_a_function_url_request_is_stored(aws: Aws, base64_encoded: bool) -> None:
    response = handler.lambda_handler(function_url_event(json.dumps(EVENT), base64_encoded=base64_encoded))

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"])["accepted"] == 1
    assert aws.recent_count() == 1
    assert aws.delivered() == b"alice,movie-1,1764331200,,view\n"


def test_a_direct_invocation_is_the_request_itself(aws: Aws) -> None:
    response = handler.lambda_handler({"events": [EVENT, {**EVENT, "user_id": ""}]})
    assert response["statusCode"] == 207
    assert [r["index"] for r in json.loads(response["body"])["rejected"]] == [1]
    assert aws.recent_count() == 1


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        (function_url_event("{oops"), 400, "body"),
        ({**function_url_event(""), "body": "!!not base64!!", "isBase64Encoded": True}, 400, "body"),
        (function_url_event(json.dumps({"events": [EVENT] * 501})), 413, "events"),
        ({**function_url_event(""), "body": None}, 400, "body"),
    ],
)
def test_bad_requests_get_a_json_4xx(aws: Aws, event: dict[str, Any], status: int, field: str) -> None:
    response = handler.lambda_handler(event)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["field"] == field
    assert aws.recent_count() == 0


def test_a_stream_that_is_down_is_a_503_with_retry_after() -> None:
    with mock_aws():
        aws = Aws()  # no delivery stream: PutRecordBatch fails
        response = handler.lambda_handler(function_url_event(json.dumps(EVENT)))
        assert response["statusCode"] == 503
        assert int(response["headers"]["Retry-After"]) > 0
        assert "send them again" in json.loads(response["body"])["error"]
        assert aws.delivered() == b""


def test_importing_the_handler_loads_nothing_heavy() -> None:
    heavy = ("pandas", "pyarrow", "numpy", "boto3", "aws_lambda_powertools")
    code = f"import sys, lambdas.events.handler; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
