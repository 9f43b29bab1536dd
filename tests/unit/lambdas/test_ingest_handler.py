"""The ingest Lambda handler against moto, with real event shapes: S3 notifications inside SQS records.

Covers the delivery guarantees: one bad message fails alone, the same object version is processed once,
a new or an older version is processed, throttling and 5xx are retried with backoff, and a message whose
object keeps failing is reported back to SQS (then the DLQ) instead of being dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from lambdas.ingest import handler
from recsys import contracts
from recsys.ingest import process

REGION = "us-east-1"
INGEST = "recsys-handler-ingest"
CURATED = "recsys-handler-curated"
MANIFEST = "recsys-handler-manifest"
IDEMPOTENCY = "recsys-handler-idempotency"
CSV = b"user_id,item_id,timestamp,rating\nu1,i1,1537799250,4.5\nu2,i2,1537799251,\n"


@dataclass
class FakeContext:
    """The attributes of the Lambda context that Powertools reads."""

    remaining_ms: int = 600_000
    function_name: str = "recsys-ingest"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:recsys-ingest"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"
    log_group_name: str = "/aws/lambda/recsys-ingest"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    contracts.INGEST_BUCKET_ENV: INGEST,
    contracts.CURATED_BUCKET_ENV: CURATED,
    contracts.INGEST_MANIFEST_TABLE_ENV: MANIFEST,
    contracts.INGEST_IDEMPOTENCY_TABLE_ENV: IDEMPOTENCY,
}


@pytest.fixture(scope="module", autouse=True)
def environment() -> Iterator[None]:
    """Dummy credentials and the Lambda's settings for the whole module.

    The handler builds its clients once per container; here once per module too (moto intercepts
    clients made before each test's `mock_aws`), which keeps each test at moto's own cost.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "POWERTOOLS_IDEMPOTENCY_DISABLED"):
            monkeypatch.delenv(name, raising=False)
        handler.runtime.cache_clear()
        yield
        handler.runtime.cache_clear()


@pytest.fixture(scope="module")
def clients(environment: None) -> tuple[Any, Any]:
    return boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)


class Aws:
    """moto with the handler's buckets and tables, and helpers to make events and read outcomes."""

    def __init__(self, s3: Any, dynamodb: Any) -> None:
        self.s3 = s3
        self.dynamodb = dynamodb
        for bucket in (INGEST, CURATED):
            self.s3.create_bucket(Bucket=bucket)
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self._table(
            MANIFEST, [(contracts.MANIFEST_PARTITION_KEY, "HASH"), (contracts.MANIFEST_SORT_KEY, "RANGE")]
        )
        self._table(IDEMPOTENCY, [(contracts.IDEMPOTENCY_PARTITION_KEY, "HASH")])

    def _table(self, name: str, keys: list[tuple[str, str]]) -> None:
        self.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )

    def upload(self, key: str, body: bytes = CSV) -> dict[str, Any]:
        response = self.s3.put_object(Bucket=INGEST, Key=key, Body=body)
        return {
            "key": key,
            "versionId": response["VersionId"],
            "eTag": response["ETag"].strip('"'),
            "size": len(body),
        }

    def manifest(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=MANIFEST)["Items"]
        return sorted(
            ({k: next(iter(v.values())) for k, v in i.items()} for i in items), key=lambda i: i["version"]
        )

    def curated_versions(self) -> int:
        return len(self.s3.list_object_versions(Bucket=CURATED).get("Versions", []))


@pytest.fixture
def aws(clients: tuple[Any, Any]) -> Iterator[Aws]:
    with mock_aws():
        yield Aws(*clients)


def s3_notification(obj: dict[str, Any], event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """An S3 event notification as S3 sends it to SQS (the key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-11-28T12:00:00.000Z",
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "203.0.113.7"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ingest-transactions",
                    "bucket": {
                        "name": INGEST,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{INGEST}",
                    },
                    "object": {
                        "key": quote_plus(obj["key"], safe="/"),
                        "size": obj["size"],
                        "eTag": obj["eTag"],
                        "versionId": obj["versionId"],
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def eventbridge_event(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-28T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{INGEST}"],
        "detail": {
            "version": "0",
            "bucket": {"name": INGEST},
            "object": {
                "key": obj["key"],
                "size": obj["size"],
                "etag": obj["eTag"],
                "version-id": obj["versionId"],
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def sqs_event(*bodies: str) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it, one record per body."""
    return {
        "Records": [
            {
                "messageId": f"msg-{n}",
                "receiptHandle": f"handle-{n}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764331200000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764331200001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:recsys-ingest",
                "awsRegion": REGION,
            }
            for n, body in enumerate(bodies)
        ]
    }


def invoke(event: dict[str, Any], context: FakeContext | None = None) -> list[str]:
    """Run the handler; the ids of the messages it reports as failed."""
    response = handler.lambda_handler(event, context or FakeContext())  # type: ignore[arg-type]
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keys process_object was called with (the handler imports it at call time)."""
    seen: list[str] = []
    real = process.process_object

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(process, "process_object", counting)
    return seen


def test_an_s3_event_in_an_sqs_message_is_ingested(aws: Aws) -> None:
    obj = aws.upload("transactions/2026/my file+1.csv")  # the event carries "my+file%2B1.csv"

    assert invoke(sqs_event(json.dumps(s3_notification(obj)))) == []

    [item] = aws.manifest()
    assert (item["key"], item["status"], item["rows_valid"]) == (obj["key"], "ACCEPTED", "2")
    assert aws.curated_versions() == 1


def test_the_same_event_twice_is_processed_once(aws: Aws, calls: list[str]) -> None:
    obj = aws.upload("transactions/twice.csv")
    body = json.dumps(s3_notification(obj))

    assert invoke(sqs_event(body)) == []
    first = aws.manifest()
    assert invoke(sqs_event(body, body)) == []  # again, and twice in one batch

    assert calls == [obj["key"]]
    assert aws.manifest() == first  # not even processed_at changed
    assert aws.curated_versions() == 1


def test_a_new_version_of_the_same_key_is_processed(aws: Aws, calls: list[str]) -> None:
    first = aws.upload("transactions/daily.csv")
    invoke(sqs_event(json.dumps(s3_notification(first))))
    second = aws.upload("transactions/daily.csv", CSV + b"u3,i3,1537799252,1\n")
    invoke(sqs_event(json.dumps(s3_notification(second))))

    assert calls == [first["key"], second["key"]]
    assert {(i["version"], i["rows_total"]) for i in aws.manifest()} == {
        (first["versionId"], "2"),
        (second["versionId"], "3"),
    }


def test_an_event_for_an_older_version_processes_that_version(aws: Aws) -> None:
    old = aws.upload("transactions/late.csv")
    aws.upload("transactions/late.csv", CSV + b"u3,i3,1537799252,1\n")  # now the current version

    assert invoke(sqs_event(json.dumps(s3_notification(old)))) == []

    [item] = aws.manifest()
    assert (item["version"], item["rows_total"]) == (old["versionId"], "2")


def test_one_bad_message_does_not_fail_its_neighbours(aws: Aws) -> None:
    obj = aws.upload("transactions/neighbour.csv")
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": INGEST, "RequestId": "x"}
    removed = s3_notification(obj, "ObjectRemoved:Delete")
    event = sqs_event(
        "not json at all", json.dumps(s3_notification(obj)), json.dumps(test_event), json.dumps(removed)
    )

    assert invoke(event) == ["msg-0"]

    assert [i["status"] for i in aws.manifest()] == ["ACCEPTED"]


def test_an_eventbridge_shaped_body_is_understood(aws: Aws) -> None:
    obj = aws.upload("catalog/movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Animation\n")
    assert invoke(sqs_event(json.dumps(eventbridge_event(obj)))) == []
    [item] = aws.manifest()
    assert (item["kind"], item["status"]) == ("catalog", "ACCEPTED")


def test_a_skipped_object_is_acknowledged(aws: Aws) -> None:
    obj = aws.upload("transactions/empty.csv", b"")
    assert invoke(sqs_event(json.dumps(s3_notification(obj)))) == []
    assert [i["status"] for i in aws.manifest()] == ["SKIPPED"]


def test_no_time_left_hands_the_file_off(aws: Aws) -> None:
    obj = aws.upload("transactions/late.csv")
    assert invoke(sqs_event(json.dumps(s3_notification(obj))), FakeContext(remaining_ms=5_000)) == []
    assert [i["status"] for i in aws.manifest()] == ["HANDED_OFF"]


class _Raw:
    """The raw HTTP body botocore reads from a response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


class GetObjectFaults:
    """Answers the first `times` GetObject requests of the handler's S3 client with an S3 error."""

    def __init__(self) -> None:
        self.attempts = 0
        self.times = 0
        self.status, self.code = 503, "SlowDown"

    def inject(self, status: int, code: str, times: int) -> None:
        self.status, self.code, self.times = status, code, times

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > self.times:
            return None  # on to moto
        body = f"<Error><Code>{self.code}</Code><Message>injected</Message></Error>".encode()
        return AWSResponse(request.url, self.status, {"Content-Type": "application/xml"}, _Raw(body))


@pytest.fixture
def faults(aws: Aws) -> Iterator[GetObjectFaults]:
    hook = GetObjectFaults()
    events = handler.runtime().s3.meta.events
    events.register_first("before-send.s3.GetObject", hook)
    yield hook
    events.unregister("before-send.s3.GetObject", hook)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's backoff sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_throttling_and_5xx_on_read_are_retried_with_backoff(
    aws: Aws, faults: GetObjectFaults, sleeps: list[float], status: int, code: str
) -> None:
    obj = aws.upload("transactions/flaky.csv")
    faults.inject(status, code, times=2)

    assert invoke(sqs_event(json.dumps(s3_notification(obj)))) == []

    assert faults.attempts == 3
    assert len(sleeps) == 2
    assert [i["status"] for i in aws.manifest()] == ["ACCEPTED"]


def test_a_read_that_keeps_failing_sends_the_message_back_then_succeeds(
    aws: Aws, faults: GetObjectFaults, sleeps: list[float]
) -> None:
    obj = aws.upload("transactions/down.csv")
    faults.inject(503, "SlowDown", times=10**6)
    event = sqs_event(json.dumps(s3_notification(obj)))

    assert invoke(event) == ["msg-0"]  # back to the queue (and after maxReceiveCount, the DLQ)

    assert faults.attempts == handler.runtime().settings.s3_max_attempts
    assert len(sleeps) == faults.attempts - 1
    assert aws.manifest() == []
    faults.inject(503, "SlowDown", times=0)
    assert invoke(event) == []  # the redelivery is not blocked by an idempotency record
    assert [i["status"] for i in aws.manifest()] == ["ACCEPTED"]


# --- training trigger, catalog items, metrics ------------------------------------------------------

STATE_TABLE = "recsys-handler-pipeline-state"
ITEMS_TABLE = "recsys-handler-items"
PIPELINE = "recsys-handler-pipeline"
PIPELINE_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:{PIPELINE}"


@pytest.fixture
def configured(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """The handler with its optional parts on: the items table and the training trigger."""
    aws._table(ITEMS_TABLE, [(contracts.ITEMS_PARTITION_KEY, "HASH")])
    aws._table(STATE_TABLE, [(contracts.PIPELINE_STATE_PARTITION_KEY, "HASH")])
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    assert (
        sfn.create_state_machine(
            name=PIPELINE, definition=definition, roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        == PIPELINE_ARN
    )
    monkeypatch.setenv(contracts.ITEMS_TABLE_ENV, ITEMS_TABLE)
    monkeypatch.setenv(contracts.PIPELINE_STATE_TABLE_ENV, STATE_TABLE)
    monkeypatch.setenv(contracts.STATE_MACHINE_ARN_ENV, PIPELINE_ARN)
    handler.runtime.cache_clear()
    yield aws
    handler.runtime.cache_clear()


def executions() -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return list(sfn.list_executions(stateMachineArn=PIPELINE_ARN)["executions"])


def pipeline_state(aws: Aws) -> dict[str, Any]:
    key = {contracts.PIPELINE_STATE_PARTITION_KEY: {"S": contracts.PIPELINE_STATE_ITEM}}
    item = aws.dynamodb.get_item(TableName=STATE_TABLE, Key=key).get("Item", {})
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_an_accepted_transactions_upload_starts_one_run(configured: Aws) -> None:
    obj = configured.upload("transactions/day1.csv")

    assert invoke(sqs_event(json.dumps(s3_notification(obj)))) == []

    [execution] = executions()
    assert pipeline_state(configured)["running"] == execution["name"]


def test_uploads_during_a_run_cause_exactly_one_follow_up(configured: Aws) -> None:
    bodies = [json.dumps(s3_notification(configured.upload(f"transactions/day{n}.csv"))) for n in range(4)]
    assert invoke(sqs_event(bodies[0])) == []
    assert invoke(sqs_event(*bodies[1:])) == []  # three uploads while the first run goes
    [first] = executions()
    assert pipeline_state(configured)["pending"] is True

    follow_up = handler.runtime().trigger.finish_run(
        first["name"], succeeded=True
    )  # the state machine's last step

    assert follow_up.outcome.value == "started"
    assert len(executions()) == 2
    assert "pending" not in pipeline_state(configured)


def test_the_same_upload_delivered_twice_requests_one_run(configured: Aws) -> None:
    body = json.dumps(s3_notification(configured.upload("transactions/once.csv")))
    assert invoke(sqs_event(body)) == []
    assert invoke(sqs_event(body)) == []
    assert len(executions()) == 1
    assert "pending" not in pipeline_state(configured)  # the redelivery did not even owe a follow-up


def test_stream_deliveries_catalogs_and_rejected_files_start_no_run(configured: Aws) -> None:
    stream = configured.upload(
        contracts.EVENTS_STREAM_PREFIX + "2026/11/28/12/s-1", b"u1,i1,1537799250,,view\n"
    )
    catalog = configured.upload("catalog/movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Animation\n")
    rejected = configured.upload("transactions/bad.csv", b"no,header,here\n1,2,3\n")
    event = sqs_event(*(json.dumps(s3_notification(o)) for o in (stream, catalog, rejected)))

    assert invoke(event) == []

    assert sorted(i["status"] for i in configured.manifest()) == ["ACCEPTED", "ACCEPTED", "REJECTED"]
    assert executions() == []


def test_a_run_that_cannot_start_sends_the_message_back(
    configured: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(contracts.STATE_MACHINE_ARN_ENV, PIPELINE_ARN + "-missing")
    handler.runtime.cache_clear()
    body = json.dumps(s3_notification(configured.upload("transactions/day1.csv")))

    assert invoke(sqs_event(body)) == ["msg-0"]  # retried, then the DLQ: the upload is not left untrained

    state = pipeline_state(configured)
    assert "running" not in state
    assert state["pending"] is True
    monkeypatch.setenv(contracts.STATE_MACHINE_ARN_ENV, PIPELINE_ARN)
    handler.runtime.cache_clear()
    assert invoke(sqs_event(body)) == []  # the redelivery is not blocked by an idempotency record
    assert len(executions()) == 1


def test_without_a_state_machine_no_run_is_requested(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[str] = []
    monkeypatch.setattr(handler.logger, "info", lambda message, *_, **__: logged.append(message))
    body = json.dumps(s3_notification(aws.upload("transactions/day1.csv")))

    assert invoke(sqs_event(body)) == []

    assert handler.runtime().trigger is None
    assert f"{contracts.STATE_MACHINE_ARN_ENV} is not set: no pipeline run requested" in logged


def test_a_catalog_upload_writes_the_items_table(configured: Aws) -> None:
    obj = configured.upload(
        "catalog/movies.csv", b"movieId,title,genres\n1,Toy Story (1995),Animation|Children\n"
    )
    assert invoke(sqs_event(json.dumps(s3_notification(obj)))) == []
    [item] = configured.dynamodb.scan(TableName=ITEMS_TABLE)["Items"]
    assert item["title"] == {"S": "Toy Story (1995)"}
    assert item["categories"] == {"L": [{"S": "Animation"}, {"S": "Children"}]}
    assert item["source_version"] == {"S": obj["versionId"]}


def emf_records(out: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format records among the printed lines."""
    records = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def test_quarantine_counts_go_out_as_embedded_metrics(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    partial = aws.upload("transactions/partial.csv", CSV + b"u3,,1537799252,1\nu4,i4,soon,1\n")
    rejected = aws.upload(
        "transactions/rejected.csv", b"user_id,item_id,timestamp\nu1,,1537799250\n"
    )  # no valid row
    capsys.readouterr()

    assert (
        invoke(sqs_event(json.dumps(s3_notification(partial)), json.dumps(s3_notification(rejected)))) == []
    )

    records = {r["object"]: r for r in emf_records(capsys.readouterr().out)}
    assert set(records) == {f"s3://{INGEST}/{partial['key']}", f"s3://{INGEST}/{rejected['key']}"}
    first = records[f"s3://{INGEST}/{partial['key']}"]
    [directive] = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == contracts.METRICS_NAMESPACE == "RecsysPipeline"
    assert directive["Dimensions"] == [["service"]]
    assert first["service"] == contracts.INGEST_SERVICE_NAME
    assert {m["Name"] for m in directive["Metrics"]} == {
        contracts.INGEST_ROWS_ACCEPTED_METRIC,
        contracts.INGEST_ROWS_QUARANTINED_METRIC,
        contracts.INGEST_FILES_REJECTED_METRIC,
    }
    assert (first["RowsQuarantined"], first["FilesRejected"], first["status"]) == ([2.0], [0.0], "PARTIAL")
    assert first["RowsAccepted"] == [float(CSV.count(b"\n") - 1)]
    assert records[f"s3://{INGEST}/{rejected['key']}"]["RowsAccepted"] == [0.0]
    second = records[f"s3://{INGEST}/{rejected['key']}"]
    assert (second["RowsQuarantined"], second["FilesRejected"], second["status"]) == (
        [1.0],
        [1.0],
        "REJECTED",
    )
