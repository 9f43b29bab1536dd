"""`recsys pipeline run|status` against moto (the pipeline state table and a state machine): a hand-requested
run goes through the same one-run lock as uploads, and the lock is shown in plain words."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from recsys import contracts
from recsys.cli.main import main
from recsys.ingest.trigger import Outcome, PipelineTrigger, StepFunctionsStarter

REGION = "us-east-1"
STATE_TABLE = "recsys-test-pipeline-state"
ROLE = "arn:aws:iam::123456789012:role/recsys-pipeline"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
# Anything that could point boto3 at real AWS, or make the command read its settings from elsewhere.
CLEARED = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SFN",
    contracts.PIPELINE_STATE_TABLE_ENV,
    contracts.STATE_MACHINE_ARN_ENV,
    contracts.PIPELINE_RUN_LEASE_ENV,
)


class Aws:
    """moto's state table and state machine, read back as the Lambdas see them."""

    def __init__(self) -> None:
        self.dynamodb = boto3.resource("dynamodb", region_name=REGION)
        self.table = self.dynamodb.create_table(
            TableName=STATE_TABLE,
            KeySchema=[{"AttributeName": contracts.PIPELINE_STATE_PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": contracts.PIPELINE_STATE_PARTITION_KEY, "AttributeType": "S"}
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.arn = self.sfn.create_state_machine(name="recsys-pipeline", definition=DEFINITION, roleArn=ROLE)[
            "stateMachineArn"
        ]

    def item(self) -> dict[str, Any]:
        key = {contracts.PIPELINE_STATE_PARTITION_KEY: contracts.PIPELINE_STATE_ITEM}
        return dict(self.table.get_item(Key=key, ConsistentRead=True).get("Item") or {})

    def put(self, **attributes: Any) -> None:
        self.table.put_item(
            Item={contracts.PIPELINE_STATE_PARTITION_KEY: contracts.PIPELINE_STATE_ITEM, **attributes}
        )

    def executions(self) -> list[str]:
        return sorted(e["name"] for e in self.sfn.list_executions(stateMachineArn=self.arn)["executions"])

    def lambda_trigger(self) -> PipelineTrigger:
        """The trigger as the ingest and pipeline Lambdas build it."""
        return PipelineTrigger(self.table, StepFunctionsStarter(self.sfn, self.arn))


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        yield Aws()


def run(aws: Aws, *extra: str) -> list[str]:
    return ["pipeline", "run", "--state-table", STATE_TABLE, "--state-machine-arn", aws.arn, *extra]


def status(*extra: str) -> list[str]:
    return ["pipeline", "status", "--state-table", STATE_TABLE, *extra]


# --- run ------------------------------------------------------------------------------------------------


def test_free_lock_starts_one_run_and_takes_the_lock(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(aws)) == 0
    out = capsys.readouterr().out
    (started,) = aws.executions()
    assert started.startswith("run-")
    assert f"started pipeline run {started}" in out
    item = aws.item()
    assert item["running"] == started
    assert item["execution_arn"] in out
    assert item["execution_arn"].endswith(f":{started}")
    assert "pending" not in item


def test_held_lock_queues_one_follow_up_and_starts_nothing(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(run(aws)) == 0
    (first,) = aws.executions()
    capsys.readouterr()
    assert main(run(aws)) == 0
    assert main(run(aws)) == 0  # a third request owes no second follow-up
    out = capsys.readouterr().out
    assert aws.executions() == [first]
    item = aws.item()
    assert item["running"] == first
    assert item["pending"] is True
    assert f"run {first} (since " in out
    assert "queued one follow-up run" in out
    assert "started pipeline run" not in out


def test_the_lambdas_see_the_hand_requested_run(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    """Same item, same rules: an upload during the hand-started run queues; the finish starts one more."""
    assert main(run(aws)) == 0
    (first,) = aws.executions()
    trigger = aws.lambda_trigger()
    assert trigger.request_run().outcome == Outcome.PENDING
    follow_up = trigger.finish_run(first, succeeded=True)  # finish_run reports a follow-up as STARTED
    assert follow_up.outcome == Outcome.STARTED
    assert follow_up.run_id != first
    assert aws.executions() == sorted([first, str(follow_up.run_id)])


def test_a_run_queued_by_the_command_is_started_by_the_finish(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = aws.lambda_trigger()
    upload = trigger.request_run()  # an upload's run holds the lock
    assert main(run(aws)) == 0
    assert aws.executions() == [upload.run_id]
    assert f"run {upload.run_id} (since" in capsys.readouterr().out
    assert trigger.finish_run(str(upload.run_id), succeeded=False).outcome == Outcome.STARTED
    assert len(aws.executions()) == 2


def test_run_json(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(aws, "--json")) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["outcome"] == "started"
    assert [started["run_id"]] == aws.executions()
    assert started["execution_arn"] == aws.item()["execution_arn"]
    assert main(run(aws, "--json")) == 0
    queued = json.loads(capsys.readouterr().out)
    assert queued["outcome"] == "pending"
    assert queued["state"]["running"]["run_id"] == started["run_id"]
    assert queued["state"]["pending"] is True


def test_table_and_arn_from_the_lambdas_environment(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(contracts.PIPELINE_STATE_TABLE_ENV, STATE_TABLE)
    monkeypatch.setenv(contracts.STATE_MACHINE_ARN_ENV, aws.arn)
    assert main(["pipeline", "run"]) == 0
    assert len(aws.executions()) == 1
    assert main(["pipeline", "status"]) == 0
    assert f"running: {aws.executions()[0]}" in capsys.readouterr().out


def test_lease_from_the_environment_takes_over_a_stale_lock(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put(running="run-crashed", started_at=int(time.time()) - 600)
    assert main(run(aws)) == 0  # within the default 24 h lease: queued
    assert aws.executions() == []
    monkeypatch.setenv(contracts.PIPELINE_RUN_LEASE_ENV, "300")
    assert main(run(aws)) == 0  # older than a 5 min lease: taken over
    (started,) = aws.executions()
    assert aws.item()["running"] == started != "run-crashed"


@pytest.mark.parametrize(
    "command",
    [
        ["pipeline", "run", "--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:x"],
        ["pipeline", "status"],
    ],
)
def test_missing_table_is_exit_2_naming_the_flag_and_variable(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "--state-table" in err
    assert contracts.PIPELINE_STATE_TABLE_ENV in err


def test_missing_state_machine_is_exit_2(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "run", "--state-table", STATE_TABLE]) == 2
    err = capsys.readouterr().err
    assert "--state-machine-arn" in err
    assert contracts.STATE_MACHINE_ARN_ENV in err
    assert aws.item() == {}


@pytest.mark.parametrize("arn", ["recsys-pipeline", "arn:aws:lambda:us-east-1:123456789012:function:x"])
def test_a_malformed_arn_is_exit_2_and_takes_no_lock(
    aws: Aws, arn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", "run", "--state-table", STATE_TABLE, "--state-machine-arn", arn]) == 2
    assert "not a state machine ARN" in capsys.readouterr().err
    assert aws.item() == {}


def test_a_bad_lease_is_exit_2(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(contracts.PIPELINE_RUN_LEASE_ENV, "soon")
    assert main(run(aws)) == 2
    assert contracts.PIPELINE_RUN_LEASE_ENV in capsys.readouterr().err
    assert aws.executions() == []


# --- AWS errors: one line, exit 1 ---------------------------------------------------------------------


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["run", "status"])
def test_table_missing_is_exit_1_with_one_clean_line(
    aws: Aws, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = run(aws) if command == "run" else status()
    args[args.index(STATE_TABLE)] = "no-such-table"
    assert main(args) == 1
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith(f"recsys pipeline {command}: error:")
    assert "'no-such-table' not found" in line
    assert captured.out == ""
    assert aws.executions() == []


def test_start_failure_gives_the_lock_back_and_reports_one_line(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As outside pytest: no handler configured, so the trigger's logged traceback would reach stderr.
    monkeypatch.setattr(logging.root, "handlers", [])
    missing = aws.arn.replace(":recsys-pipeline", ":no-such-machine")
    args = ["pipeline", "run", "--state-table", STATE_TABLE, "--state-machine-arn", missing]
    assert main(args) == 1
    line = one_line(capsys.readouterr().err)
    assert "StartExecution failed" in line
    assert "given back" in line
    item = aws.item()
    assert "running" not in item  # the lock is free again ...
    assert item["pending"] is True  # ... and the run is still owed
    assert main(run(aws)) == 0  # a request with the right ARN starts it
    assert len(aws.executions()) == 1


def test_no_credentials_is_exit_1_with_one_clean_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Never real AWS: were credentials found after all, the call would go to a closed local port.
    assert main([*status(), "--endpoint", "http://127.0.0.1:9"]) == 1
    assert "no AWS credentials" in one_line(capsys.readouterr().err)


# --- status ---------------------------------------------------------------------------------------------


def test_status_before_any_run(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(status()) == 0
    assert capsys.readouterr().out.strip() == "no pipeline run has been requested yet: the lock is free"


def test_status_in_plain_words(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.put(
        running="run-b",
        started_at=int(time.time()) - 60,
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:recsys-pipeline:run-b",
        pending=True,
        pending_since=1_800_000_000,
        last_run_id="run-a",
        last_finished_at=1_799_999_000,
        last_succeeded=False,
    )
    assert main(status()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("running: run-b since 20")
    assert lines[1] == "  execution: arn:aws:states:us-east-1:123456789012:execution:recsys-pipeline:run-b"
    assert lines[2] == (
        "pending: yes, one follow-up run owed since 2027-01-15T08:00:00Z"
        " (started when the running run finishes)"
    )
    assert lines[3] == "last run: run-a, finished 2027-01-15T07:43:20Z, failed"
    assert len(lines) == 4  # not stale


def test_status_after_a_finished_run_and_a_stale_lock(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.put(last_run_id="run-a", last_finished_at=1_799_999_000, last_succeeded=True)
    assert main(status()) == 0
    assert capsys.readouterr().out.splitlines() == [
        "running: none (the lock is free)",
        "pending: no",
        "last run: run-a, finished 2027-01-15T07:43:20Z, succeeded",
    ]
    aws.put(running="run-old", started_at=1_000_000_000)
    assert main(status()) == 0
    out = capsys.readouterr().out
    assert "stale: held longer than the 24 h lease" in out
    assert "last run: none finished yet" in out


def test_status_json(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(aws)) == 0
    (started,) = aws.executions()
    capsys.readouterr()
    assert main(status("--json")) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state_table"] == STATE_TABLE
    assert shown["running"]["run_id"] == started
    assert shown["running"]["execution_arn"] == aws.item()["execution_arn"]
    assert shown["running"]["stale"] is False
    assert shown["pending"] is False
    assert shown["pending_since"] is None
    assert shown["last_run"] is None


def test_status_reads_only(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.put(running="run-x", started_at=int(time.time()))
    before = aws.item()
    assert main(status()) == 0
    assert aws.item() == before
    assert aws.executions() == []
