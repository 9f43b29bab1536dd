"""The pipeline step Lambdas against moto: evaluate + gate on real model folders and a real run (S3), the
live model read from the serving table, metrics out as embedded metrics; finish and request through the
one-run lock (DynamoDB) and Step Functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.pipeline import handler
from recsys import contracts
from recsys.pipeline_steps import NoModelError, StepError
from recsys.serving import table
from recsys.serving.table import LivePointer, VersionRecord
from tests.unit.recsys.serving.helpers import DUMMY_CREDENTIALS, REAL_AWS_SWITCHES, REGION
from tests.unit.recsys.test_model_eval import write_model, write_run

CURATED, ARTIFACTS = "recsys-test-curated", "recsys-test-artifacts"
SERVING, STATE = "recsys-test-serving", "recsys-test-pipeline-state"
RUN = "run-20261128T000000Z-abc"
RUN_URI = f"s3://{CURATED}/curated/runs/{RUN}/"
# Items a..e are indices 0..4 (write_model); u1's held-out positives are c, d and u2's is e.
PERFECT = {"u1": [2, 3], "u2": [4]}
POOR = {"u1": [4], "u2": [1]}


class Context:
    function_name = "recsys-pipeline"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:recsys-pipeline"
    aws_request_id = "req-1"
    log_group_name = "g"
    log_stream_name = "s"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Aws:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        for bucket in (CURATED, ARTIFACTS):
            self.s3.create_bucket(Bucket=bucket)
        for name, key in (
            (SERVING, contracts.SERVING_PARTITION_KEY),
            (STATE, contracts.PIPELINE_STATE_PARTITION_KEY),
        ):
            self.dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        self.state_machine_arn = self.sfn.create_state_machine(
            name="recsys-pipeline",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/recsys-pipeline",
        )["stateMachineArn"]

    def upload(self, folder: Path, bucket: str, prefix: str) -> str:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())
        return f"s3://{bucket}/{prefix}"

    def model(self, name: str, rows: dict[str, list[int]]) -> str:
        folder = self.tmp_path / name
        write_model(folder, rows, version=name)
        return self.upload(folder, ARTIFACTS, f"{contracts.MODELS_PREFIX}{name}/")

    def make_live(self, version: str, source: str) -> None:
        record = VersionRecord(version, "live", "fm", "2026-11-27T00:00:00Z", 0, source)
        self.dynamodb.put_item(TableName=SERVING, Item=table.encode_version(record))
        live = LivePointer(version, None, 0, None, "2026-11-27T00:00:00Z")
        self.dynamodb.put_item(TableName=SERVING, Item=table.encode_live(live))

    def state(self) -> dict[str, Any]:
        key = {contracts.PIPELINE_STATE_PARTITION_KEY: {"S": contracts.PIPELINE_STATE_ITEM}}
        return dict(self.dynamodb.get_item(TableName=STATE, Key=key, ConsistentRead=True).get("Item", {}))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in REAL_AWS_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    handler._clients.cache_clear()
    with mock_aws():
        aws = Aws(tmp_path)
        write_run(tmp_path / "run")
        aws.upload(tmp_path / "run", CURATED, f"curated/runs/{RUN}/")
        env = {
            contracts.SERVING_TABLE_ENV: SERVING,
            contracts.PIPELINE_STATE_TABLE_ENV: STATE,
            contracts.STATE_MACHINE_ARN_ENV: aws.state_machine_arn,
            contracts.EVAL_K_ENV: "2",
            contracts.GATE_METRIC_ENV: "precision@2",
            contracts.GATE_MARGIN_ENV: "0.1",
            contracts.GATE_TOLERANCE_ENV: "0.02",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield aws
    handler._clients.cache_clear()


def candidate(name: str, uri: str) -> dict[str, Any]:
    """A branch's output: the version is the folder's name (models/<version>/)."""
    return {"name": name, "model_uri": uri, "version": uri.rstrip("/").rsplit("/", 1)[-1]}


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The embedded-metric records printed by Powertools (one JSON object per line)."""
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    return [json.loads(line) for line in lines]


def test_evaluate_publishes_the_best_model_that_beats_popularity(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a perfect FM model, a poor DSSTNE model and no live model
    fm, dsstne = aws.model("fm-r1", PERFECT), aws.model("dsstne-r1", POOR)
    # WHEN the evaluate step runs on the run's held-out split
    event = {
        "run_id": RUN,
        "run_uri": RUN_URI,
        "candidates": [candidate("fm", fm), candidate("dsstne", dsstne)],
    }
    result = handler.evaluate(event, Context())
    # THEN FM is published, DSSTNE is rejected with the gate's reason, and the metrics are emitted
    assert result["publish"] is True
    assert (result["winner"], result["model_uri"], result["version"]) == ("fm", fm, "fm-r1")
    assert result["models"]["fm"]["precision@2"] == pytest.approx(0.75)  # u1: 2/2 hits, u2: 1 of k=2
    assert "dsstne" in result["rejected"]
    assert result["live"] is None
    assert result["live_uri"] is None
    json.dumps(result, allow_nan=False)  # plain JSON for the state machine
    records = emitted(capsys)
    models = {(r[contracts.MODEL_METRIC_DIMENSION], r["version"]) for r in records if "precision@2" in r}
    assert {("fm", "fm-r1"), ("dsstne", "dsstne-r1"), ("popularity", f"popularity-{RUN}")} <= models
    assert all(r["service"] == contracts.PIPELINE_SERVICE_NAME for r in records)


def test_evaluate_keeps_the_live_model_when_the_candidate_is_worse(aws: Aws) -> None:
    # GIVEN a perfect live model and a poor candidate
    aws.make_live("fm-r0", aws.model("fm-r0", PERFECT))
    event = {"run_id": RUN, "run_uri": RUN_URI, "candidates": [candidate("fm", aws.model("fm-r1", POOR))]}
    # WHEN evaluated
    result = handler.evaluate(event, Context())
    # THEN the live model was measured on the same split and nothing is published
    assert result["publish"] is False
    assert result["winner"] is None
    assert result["live"]["precision@2"] == pytest.approx(0.75)
    assert result["live_uri"] == f"s3://{ARTIFACTS}/models/fm-r0/"


def test_a_failed_branch_and_a_missing_model_are_rejected_with_their_reasons(aws: Aws) -> None:
    # GIVEN the FM branch failed (its Catch output), the DSSTNE folder is empty, and a good model "ok"
    failed = {"name": "fm", "error": {"Error": "States.TaskFailed", "Cause": "training job failed"}}
    missing = candidate("dsstne", f"s3://{ARTIFACTS}/dsstne/{RUN}/model/")
    ok = candidate("ok", aws.model("ok-r1", PERFECT))
    # WHEN evaluated
    result = handler.evaluate(
        {"run_id": RUN, "run_uri": RUN_URI, "candidates": [failed, missing, ok]}, Context()
    )
    # THEN the good one is published and each other reason is kept
    assert result["winner"] == "ok"
    assert "States.TaskFailed: training job failed" in result["skipped"]["fm"]
    assert "no objects" in result["skipped"]["dsstne"]
    assert {"fm", "dsstne"} <= set(result["rejected"])


def test_a_run_without_any_usable_model_fails_with_the_reasons(aws: Aws) -> None:
    failed = {"name": "fm", "error": {"Error": "States.TaskFailed", "Cause": "training job failed"}}
    missing = candidate("dsstne", f"s3://{ARTIFACTS}/dsstne/{RUN}/model/")
    event = {"run_id": RUN, "run_uri": RUN_URI, "candidates": [failed, missing]}
    with pytest.raises(NoModelError, match=r"dsstne: .*no objects.*; fm: States.TaskFailed"):
        handler.evaluate(event, Context())


def test_finish_starts_the_owed_follow_up_then_frees_the_lock(aws: Aws) -> None:
    # GIVEN run RUN holds the lock and an upload came during it
    key = {contracts.PIPELINE_STATE_PARTITION_KEY: {"S": contracts.PIPELINE_STATE_ITEM}}
    item = {**key, "running": {"S": RUN}, "started_at": {"N": "1"}, "pending": {"BOOL": True}}
    aws.dynamodb.put_item(TableName=STATE, Item=item)
    # WHEN the run finishes
    first = handler.finish({"run_id": RUN, "succeeded": True}, Context())
    # THEN exactly one follow-up run was started and holds the lock
    assert first["outcome"] == "started"  # recsys.ingest.trigger reports the follow-up as started
    follow_up = first["run_id"]
    assert follow_up != RUN
    assert aws.state()["running"] == {"S": follow_up}
    executions = aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [follow_up]
    # WHEN a retried finish of the old run arrives, and then the follow-up fails
    assert handler.finish({"run_id": RUN, "succeeded": True}, Context())["outcome"] == "not-current"
    assert handler.finish({"run_id": follow_up, "succeeded": False}, Context())["outcome"] == "idle"
    # THEN the lock is free and the failure recorded
    state = aws.state()
    assert "running" not in state
    assert state["last_succeeded"] == {"BOOL": False}


def test_scheduled_request_takes_the_lock_like_an_upload(aws: Aws) -> None:
    assert handler.request({}, Context())["outcome"] == "started"
    assert handler.request({}, Context())["outcome"] == "pending"  # one run at a time


@pytest.mark.parametrize(
    ("event", "message"),
    [({"succeeded": True}, "run_id"), ({"run_id": RUN, "succeeded": "yes"}, "succeeded")],
)
def test_finish_rejects_a_bad_event_by_field(aws: Aws, event: dict[str, Any], message: str) -> None:
    with pytest.raises(StepError, match=message):
        handler.finish(event, Context())
