"""Starting training: at most one pipeline run at a time, uploads during a run cause exactly one
follow-up run, and no upload is left untrained.

The state is one DynamoDB item (`contracts.PIPELINE_STATE_ITEM` in the pipeline state table), changed
only by conditional writes, so concurrent Lambdas agree without any other lock:

- `running` (+ `started_at`, `execution_arn`): the run that holds the lock;
- `pending` (+ `pending_since`): uploads arrived while that run was going; they need one more run.

`request_run()` (after an accepted upload): take the lock if it is free (or stale: held longer than the
lease, i.e. a run that crashed without finishing) and start a run; otherwise set `pending`. Taking the
lock clears `pending`, because the run it starts reads every upload made so far.

`finish_run(run_id, succeeded)` (the state machine's last step): if `pending` is set, hand the lock to
one follow-up run and start it; otherwise free the lock. Each write is conditioned on what was read, so
a request landing between the read and the write makes the write fail and the loop read again (and
start the follow-up). For a run id that does not hold the lock it does nothing: a retried finish step
cannot start a second follow-up.

If StartExecution fails after the lock was taken, the lock is given back (with `pending` set, so the run
is still owed) and the error raised: the queue message, or the state machine's finish step, is retried.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from recsys import contracts
from recsys.csv_contract import Kind
from recsys.ingest import layout
from recsys.ingest.aws import error_code
from recsys.ingest.manifest import IngestResult, Status
from recsys.ingest.settings import DEFAULT_RUN_LEASE_S

logger = logging.getLogger(__name__)

DEFAULT_LEASE_S = DEFAULT_RUN_LEASE_S
MAX_ATTEMPTS = 20  # conditional writes lost to other writers before giving up (the caller is retried)
_CONDITION_FAILED = "ConditionalCheckFailedException"

# Attribute names of the state item (all behind #placeholders in expressions).
RUNNING = "running"
STARTED_AT = "started_at"  # epoch seconds
EXECUTION_ARN = "execution_arn"
PENDING = "pending"
PENDING_SINCE = "pending_since"
LAST_RUN = "last_run_id"
LAST_FINISHED_AT = "last_finished_at"
LAST_SUCCEEDED = "last_succeeded"
_PLACEHOLDER = re.compile(r"#\w+")
_NAMES = {
    f"#{n}": n
    for n in (
        RUNNING,
        STARTED_AT,
        EXECUTION_ARN,
        PENDING,
        PENDING_SINCE,
        LAST_RUN,
        LAST_FINISHED_AT,
        LAST_SUCCEEDED,
    )
}


class RunStarter(Protocol):
    """Starts one pipeline run; returns its execution ARN (or another handle)."""

    def start(self, run_id: str) -> str: ...


class StepFunctionsStarter:
    """StartExecution on the pipeline state machine, the run id as execution name and input."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, run_id: str) -> str:
        response = self.client.start_execution(
            stateMachineArn=self.state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id})
        )
        return str(response["executionArn"])


class StateTable(Protocol):
    """A boto3 DynamoDB Table resource for the pipeline state table."""

    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def update_item(self, **kwargs: Any) -> dict[str, Any]: ...


class Outcome(StrEnum):
    STARTED = "started"  # a run was started: request (lock free or stale) or finish (the owed follow-up)
    PENDING = "pending"  # request: a run is going; one follow-up run is owed
    IDLE = "idle"  # finish: nothing pending; the lock is free
    NOT_CURRENT = "not-current"  # finish: the run id does not hold the lock; nothing done


@dataclass(frozen=True)
class TriggerResult:
    outcome: Outcome
    run_id: str | None = None  # the run started, or the run that holds the lock
    execution_arn: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "run_id": self.run_id, "execution_arn": self.execution_arn}


class ContentionError(RuntimeError):
    """Every conditional write lost to another writer; the caller is retried later."""


def wants_training(result: IngestResult) -> bool:
    """An uploaded transactions file with curated rows requests a run. Stream deliveries (real-time
    events, under `contracts.EVENTS_STREAM_PREFIX`) do not: the next run includes them."""
    return (
        result.kind == Kind.TRANSACTIONS.value
        and result.status in (Status.ACCEPTED, Status.PARTIAL)
        and not layout.is_event_stream(result.key)
    )


def new_run_id(now: float) -> str:
    """`run-<UTC time>-<random>`: a valid Step Functions execution name, sortable by start time."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{uuid.uuid4().hex[:12]}"


class PipelineTrigger:
    """`request_run` and `finish_run` over the state item. `after_read` is a test seam: it runs between
    finish_run's read and its conditional write."""

    def __init__(
        self,
        table: StateTable,
        starter: RunStarter,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        item_name: str = contracts.PIPELINE_STATE_ITEM,
        now: Callable[[], float] = time.time,
        run_ids: Callable[[float], str] = new_run_id,
        max_attempts: int = MAX_ATTEMPTS,
        after_read: Callable[[], None] | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.table = table
        self.starter = starter
        self.lease_s = lease_s
        self.key = {contracts.PIPELINE_STATE_PARTITION_KEY: item_name}
        self.now = now
        self.run_ids = run_ids
        self.max_attempts = max_attempts
        self.after_read = after_read

    # --- the two operations ------------------------------------------------------------------------

    def request_run(self) -> TriggerResult:
        """Start a run if none is going (or the one going is stale); otherwise mark one follow-up owed."""
        for _ in range(self.max_attempts):
            now = int(self.now())
            run_id = self.run_ids(now)
            if self._update(
                "SET #running = :run, #started_at = :now REMOVE #pending, #pending_since, #execution_arn",
                "attribute_not_exists(#running) OR #started_at < :stale",
                {":run": run_id, ":now": now, ":stale": self._stale_before(now)},
            ):
                return self._start(run_id, revert=None)
            if self._update(
                "SET #pending = :true, #pending_since = if_not_exists(#pending_since, :now)",
                "attribute_exists(#running) AND #started_at >= :stale",
                {":true": True, ":now": now, ":stale": self._stale_before(now)},
            ):
                logger.info("a pipeline run is going: one follow-up run is owed")
                return TriggerResult(Outcome.PENDING)
            # The lock was freed (or went stale) between the two writes: try again.
        raise ContentionError(f"could not request a run after {self.max_attempts} attempts")

    def finish_run(self, run_id: str, succeeded: bool) -> TriggerResult:
        """End `run_id`: start the one follow-up run if uploads came meanwhile, else free the lock."""
        for _ in range(self.max_attempts):
            state = self.state()
            if self.after_read is not None:
                self.after_read()
            current = state.get(RUNNING)
            if current != run_id:
                logger.info("finish of run %s ignored: the lock is held by %s", run_id, current or "no run")
                return TriggerResult(Outcome.NOT_CURRENT, run_id=current)
            now = int(self.now())
            last = {":old": run_id, ":now": now, ":ok": bool(succeeded)}
            if state.get(PENDING):
                follow_up = self.run_ids(now)
                if self._update(
                    "SET #running = :run, #started_at = :now, #last_run_id = :old, #last_finished_at = :now,"
                    " #last_succeeded = :ok REMOVE #pending, #pending_since, #execution_arn",
                    "#running = :old AND #pending = :true",
                    {**last, ":run": follow_up, ":true": True},
                ):
                    return self._start(follow_up, revert=state)
            elif self._update(
                "SET #last_run_id = :old, #last_finished_at = :now, #last_succeeded = :ok"
                " REMOVE #running, #started_at, #execution_arn",
                "#running = :old AND attribute_not_exists(#pending)",
                last,
            ):
                logger.info("pipeline run %s finished (%s); nothing pending", run_id, _verdict(succeeded))
                return TriggerResult(Outcome.IDLE)
            # A request (or a takeover) changed the item after the read: read it again.
        raise ContentionError(f"could not finish run {run_id} after {self.max_attempts} attempts")

    def state(self) -> dict[str, Any]:
        """The state item as stored (strongly consistent read); {} before the first run."""
        return dict(self.table.get_item(Key=self.key, ConsistentRead=True).get("Item") or {})

    # --- helpers ------------------------------------------------------------------------------------

    def _start(self, run_id: str, *, revert: dict[str, Any] | None) -> TriggerResult:
        """Start the run whose lock was just taken; on failure give the lock back and raise."""
        try:
            execution_arn = self.starter.start(run_id)
        except BaseException:
            logger.exception("could not start pipeline run %s; the lock is given back", run_id)
            self._give_back(run_id, revert)
            raise
        try:  # informational only: a failure here must not make the caller retry a started run
            self._update(
                "SET #execution_arn = :arn", "#running = :run", {":arn": execution_arn, ":run": run_id}
            )
        except Exception:
            logger.warning("could not record the execution ARN of run %s", run_id, exc_info=True)
        logger.info("pipeline run %s started: %s", run_id, execution_arn)
        return TriggerResult(Outcome.STARTED, run_id, execution_arn)

    def _give_back(self, run_id: str, previous: dict[str, Any] | None) -> None:
        """Undo a lock taken for `run_id`, keeping the run owed (`pending`).

        After a request: the lock is freed, so the retried message takes it again. After a finish: the
        finishing run gets the lock back with `pending`, so the retried finish step starts the follow-up.
        """
        now = int(self.now())
        if previous is None:
            update = "SET #pending = :true, #pending_since = if_not_exists(#pending_since, :now)"
            update += " REMOVE #running, #started_at, #execution_arn"
            values: dict[str, Any] = {":run": run_id, ":true": True, ":now": now}
        else:
            update = (
                "SET #running = :old, #started_at = :old_start, #pending = :true, #pending_since = :since"
            )
            values = {
                ":run": run_id,
                ":old": previous[RUNNING],
                ":old_start": previous.get(STARTED_AT, now),
                ":true": True,
                ":since": previous.get(PENDING_SINCE, now),
            }
            removed = []
            for n, name in enumerate((EXECUTION_ARN, LAST_RUN, LAST_FINISHED_AT, LAST_SUCCEEDED)):
                if name in previous:
                    update += f", #{name} = :prev{n}"
                    values[f":prev{n}"] = previous[name]
                else:
                    removed.append(f"#{name}")
            if removed:
                update += " REMOVE " + ", ".join(removed)
        try:
            if not self._update(update, "#running = :run", values):
                logger.warning("lock of run %s was taken over before it could be given back", run_id)
        except Exception:  # the lease frees it in the end; the caller's own error matters more
            logger.warning("could not give back the lock of run %s", run_id, exc_info=True)

    def _update(self, update: str, condition: str, values: dict[str, Any]) -> bool:
        """One conditional UpdateItem; False when the condition did not hold."""
        names = {k: _NAMES[k] for k in sorted(set(_PLACEHOLDER.findall(update + " " + condition)))}
        try:
            self.table.update_item(
                Key=self.key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True

    def _stale_before(self, now: int) -> int:
        return int(now - self.lease_s)


def _verdict(succeeded: bool) -> str:
    return "succeeded" if succeeded else "failed"
