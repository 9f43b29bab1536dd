"""The training trigger against moto (DynamoDB state table, Step Functions): one run at a time, exactly
one follow-up for uploads during a run, nothing left untrained, and the races that can be reproduced."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from recsys import contracts
from recsys.ingest.manifest import IngestResult, Status
from recsys.ingest.trigger import (
    ContentionError,
    Outcome,
    PipelineTrigger,
    StepFunctionsStarter,
    wants_training,
)

REGION = "us-east-1"
STATE_TABLE = "recsys-test-pipeline-state"
ROLE = "arn:aws:iam::123456789012:role/recsys-pipeline"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Pipeline:
    """moto's state table and state machine, and triggers built on them."""

    def __init__(self) -> None:
        self.dynamodb = boto3.resource("dynamodb", region_name=REGION)
        self.dynamodb.create_table(
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
        self.clock = Clock()

    def trigger(self, **kwargs: Any) -> PipelineTrigger:
        table = kwargs.pop("table", None) or self.dynamodb.Table(STATE_TABLE)
        starter = kwargs.pop("starter", None) or StepFunctionsStarter(self.sfn, self.arn)
        return PipelineTrigger(table, starter, now=self.clock, **kwargs)

    def executions(self) -> list[str]:
        listed = self.sfn.list_executions(stateMachineArn=self.arn)["executions"]
        return sorted(e["name"] for e in listed)

    def state(self) -> dict[str, Any]:
        return self.trigger().state()


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    with mock_aws():
        yield Pipeline()


class FailingStarter:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[str] = []

    def start(self, run_id: str) -> str:
        self.calls.append(run_id)
        raise self.error


def test_a_request_when_idle_starts_one_run(pipeline: Pipeline) -> None:
    result = pipeline.trigger().request_run()

    assert result.outcome is Outcome.STARTED
    assert pipeline.executions() == [result.run_id]
    state = pipeline.state()
    assert (state["running"], state["execution_arn"]) == (result.run_id, result.execution_arn)
    assert "pending" not in state
    execution = pipeline.sfn.describe_execution(executionArn=result.execution_arn)
    assert json.loads(execution["input"]) == {"run_id": result.run_id}


def test_requests_during_a_run_cause_exactly_one_follow_up(pipeline: Pipeline) -> None:
    trigger = pipeline.trigger()
    first = trigger.request_run()
    during = [trigger.request_run() for _ in range(5)]
    assert {r.outcome for r in during} == {Outcome.PENDING}
    assert pipeline.executions() == [first.run_id]

    assert first.run_id is not None
    follow_up = trigger.finish_run(first.run_id, succeeded=True)

    assert follow_up.outcome is Outcome.STARTED
    assert sorted([first.run_id, follow_up.run_id]) == pipeline.executions()
    state = pipeline.state()
    assert state["running"] == follow_up.run_id
    assert "pending" not in state
    assert (state["last_run_id"], state["last_succeeded"]) == (first.run_id, True)

    assert follow_up.run_id is not None
    assert trigger.finish_run(follow_up.run_id, succeeded=True).outcome is Outcome.IDLE
    assert len(pipeline.executions()) == 2  # the follow-up covered every upload: no third run
    assert "running" not in pipeline.state()
    assert trigger.request_run().outcome is Outcome.STARTED  # idle again: the next upload starts one


def test_a_failed_run_still_starts_the_follow_up(pipeline: Pipeline) -> None:
    trigger = pipeline.trigger()
    first = trigger.request_run()
    trigger.request_run()
    assert first.run_id is not None

    assert trigger.finish_run(first.run_id, succeeded=False).outcome is Outcome.STARTED
    assert pipeline.state()["last_succeeded"] is False
    assert len(pipeline.executions()) == 2


def test_finish_for_a_run_that_is_not_current_is_a_no_op(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recsys.ingest.trigger")
    trigger = pipeline.trigger()
    assert trigger.finish_run("run-unknown", succeeded=True).outcome is Outcome.NOT_CURRENT  # never ran
    first = trigger.request_run()
    trigger.request_run()
    assert first.run_id is not None
    follow_up = trigger.finish_run(first.run_id, succeeded=True)
    before = pipeline.state()

    again = trigger.finish_run(first.run_id, succeeded=True)  # the finish step retried

    assert (again.outcome, again.run_id) == (Outcome.NOT_CURRENT, follow_up.run_id)
    assert pipeline.state() == before
    assert len(pipeline.executions()) == 2
    assert f"finish of run {first.run_id} ignored" in caplog.text


@pytest.fixture
def atomic_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each conditional write atomically; moto checks and writes without a lock, so
    threads could interleave inside one call. One lock around moto's item operations restores that
    guarantee, and only that: the calls of different threads still interleave freely."""
    lock = threading.RLock()
    for name in ("get_item", "put_item", "update_item", "delete_item"):
        real = getattr(DynamoDBBackend, name)

        def locked(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            with lock:
                return _real(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.mark.usefixtures("atomic_items")
def test_many_concurrent_requests_start_exactly_one_run(pipeline: Pipeline) -> None:
    threads_n = 12
    # A resource per thread (boto3 resources are not thread-safe); one client for all (clients are).
    tables = [
        boto3.session.Session(region_name=REGION).resource("dynamodb").Table(STATE_TABLE)
        for _ in range(threads_n)
    ]
    starter = StepFunctionsStarter(pipeline.sfn, pipeline.arn)
    barrier = threading.Barrier(threads_n)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def request(i: int) -> None:
        trigger = pipeline.trigger(table=tables[i], starter=starter)
        barrier.wait()
        try:
            outcomes.append(trigger.request_run().outcome)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=request, args=(i,)) for i in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    assert sorted(outcomes) == sorted([Outcome.STARTED] + [Outcome.PENDING] * (threads_n - 1))
    assert len(pipeline.executions()) == 1
    assert pipeline.state()["pending"] is True


def test_a_request_between_the_finish_read_and_write_still_yields_a_run(pipeline: Pipeline) -> None:
    trigger = pipeline.trigger()
    first = trigger.request_run()
    assert first.run_id is not None
    injected: list[Outcome] = []

    def request_once() -> None:
        if not injected:  # an upload lands after finish read "nothing pending"
            injected.append(pipeline.trigger().request_run().outcome)

    racing = pipeline.trigger(after_read=request_once)
    result = racing.finish_run(first.run_id, succeeded=True)

    assert injected == [Outcome.PENDING]
    assert result.outcome is Outcome.STARTED  # the release failed its condition; the re-read found pending
    assert len(pipeline.executions()) == 2
    assert pipeline.state()["running"] == result.run_id


def test_start_failing_after_the_lock_was_taken_releases_it_and_raises(pipeline: Pipeline) -> None:
    failing = FailingStarter(RuntimeError("StartExecution throttled"))

    with pytest.raises(RuntimeError, match="throttled"):
        pipeline.trigger(starter=failing).request_run()

    state = pipeline.state()
    assert "running" not in state
    assert state["pending"] is True
    retried = pipeline.trigger().request_run()  # the queue message comes back
    assert retried.outcome is Outcome.STARTED
    assert pipeline.executions() == [retried.run_id]
    assert "pending" not in pipeline.state()


def test_a_follow_up_that_fails_to_start_is_started_by_the_retried_finish(pipeline: Pipeline) -> None:
    trigger = pipeline.trigger()
    first = trigger.request_run()
    trigger.request_run()
    assert first.run_id is not None
    before = pipeline.state()

    with pytest.raises(RuntimeError):
        pipeline.trigger(starter=FailingStarter(RuntimeError("down"))).finish_run(first.run_id, True)

    assert pipeline.state() == before  # back as it was: the first run holds the lock, a run is owed
    retried = trigger.finish_run(first.run_id, succeeded=True)
    assert retried.outcome is Outcome.STARTED
    assert len(pipeline.executions()) == 2


def test_a_stale_lock_is_taken_over_after_the_lease(pipeline: Pipeline) -> None:
    trigger = pipeline.trigger(lease_s=3600)
    crashed = trigger.request_run()
    pipeline.clock.now += 1800
    assert trigger.request_run().outcome is Outcome.PENDING  # within the lease: still running

    pipeline.clock.now += 1801
    taken = trigger.request_run()

    assert taken.outcome is Outcome.STARTED
    assert taken.run_id != crashed.run_id
    assert pipeline.state()["running"] == taken.run_id
    assert "pending" not in pipeline.state()  # the new run reads every upload so far
    assert crashed.run_id is not None
    assert trigger.finish_run(crashed.run_id, succeeded=False).outcome is Outcome.NOT_CURRENT
    assert len(pipeline.executions()) == 2


def test_contention_that_never_ends_raises(pipeline: Pipeline) -> None:
    trigger = pipeline.trigger()
    first = trigger.request_run()
    assert first.run_id is not None

    def flip() -> None:  # every read is outdated by the time of the write
        state = pipeline.state()
        table = pipeline.dynamodb.Table(STATE_TABLE)
        key = {contracts.PIPELINE_STATE_PARTITION_KEY: contracts.PIPELINE_STATE_ITEM}
        if state.get("pending"):
            table.update_item(
                Key=key, UpdateExpression="REMOVE #p", ExpressionAttributeNames={"#p": "pending"}
            )
        else:
            table.update_item(
                Key=key,
                UpdateExpression="SET #p = :t",
                ExpressionAttributeNames={"#p": "pending"},
                ExpressionAttributeValues={":t": True},
            )

    with pytest.raises(ContentionError):
        pipeline.trigger(after_read=flip, max_attempts=3).finish_run(first.run_id, succeeded=True)
    assert pipeline.executions() == [first.run_id]


@pytest.mark.parametrize(
    ("key", "kind", "status", "expected"),
    [
        ("transactions/ratings.csv", "transactions", Status.ACCEPTED, True),
        ("transactions/ratings.csv", "transactions", Status.PARTIAL, True),
        ("transactions/ratings.csv", "transactions", Status.REJECTED, False),
        ("transactions/ratings.csv", "transactions", Status.HANDED_OFF, False),
        ("catalog/movies.csv", "catalog", Status.ACCEPTED, False),
        (contracts.EVENTS_STREAM_PREFIX + "2026/11/28/12/s-1", "transactions", Status.ACCEPTED, False),
    ],
)
def test_which_results_request_a_run(key: str, kind: str, status: Status, expected: bool) -> None:
    result = IngestResult("bucket", key, "v1", status, kind=kind)
    assert wants_training(result) is expected
