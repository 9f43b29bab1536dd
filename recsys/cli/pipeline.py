"""`recsys pipeline run` and `recsys pipeline status`: request a pipeline run by hand through the one-run
lock, and show the lock.

`run` calls `recsys.ingest.trigger.PipelineTrigger.request_run()`, the same conditional writes on the same
state item as the ingest Lambda and the schedule: if no run is going it starts one (StartExecution, the run
id as execution name and input); if one is going it marks one follow-up run owed, which that run's finish
step starts. A hand-requested run therefore never runs next to another one.

The state table and the state machine come from the flags or the Lambdas' environment variables
(RECSYS_PIPELINE_STATE_TABLE, RECSYS_STATE_MACHINE_ARN; the stack outputs PipelineStateTableName and
StateMachineArn); the lease from RECSYS_PIPELINE_RUN_LEASE_SECONDS (default 24 h, as in the Lambdas); the
AWS endpoint from AWS_ENDPOINT_URL or --endpoint (local mode's embedded AWS).
Exit 0: done (a run started, or a follow-up queued); 1: an AWS error, nothing requested; 2: bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from recsys import contracts

PROG = "recsys pipeline"
CLIENT_ATTEMPTS = 8  # botocore standard retries, as the ingest Lambda's clients


class UsageError(ValueError):
    """A missing or malformed setting (exit 2)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="request a pipeline run through the one-run lock, or show the lock",
        description="Pipeline runs, one at a time: `run` requests one the way an upload does; `status` "
        "shows which run holds the lock, whether a follow-up is owed, and the last run.",
    )
    commands = parser.add_subparsers(dest="pipeline_command", metavar="SUBCOMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="start a run now, or queue one follow-up if a run is going",
        description="Request a pipeline run through the pipeline state table's lock: start it if no run "
        "is going; otherwise mark one follow-up run owed (started when the current run finishes). "
        "Never starts a second run next to one in progress.",
    )
    _table_flag(run)
    run.add_argument(
        "--state-machine-arn",
        metavar="ARN",
        help=f"the pipeline state machine (default: ${contracts.STATE_MACHINE_ARN_ENV}; "
        "stack output StateMachineArn)",
    )
    _common(run)
    run.set_defaults(handler=run_request)

    status = commands.add_parser(
        "status",
        help="show the run holding the lock, a follow-up owed, and the last run",
        description="Print the pipeline state item: the run holding the lock and since when, whether a "
        "follow-up run is owed, and the last finished run with its outcome.",
    )
    _table_flag(status)
    _common(status)
    status.set_defaults(handler=run_status)


def _table_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-table",
        metavar="TABLE",
        help=f"the pipeline state table (default: ${contracts.PIPELINE_STATE_TABLE_ENV}; "
        "stack output PipelineStateTableName)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="URL", help="AWS endpoint (default: $AWS_ENDPOINT_URL or AWS)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


# --- handlers -------------------------------------------------------------------------------------------


def run_request(args: argparse.Namespace) -> int:
    from recsys.ingest.trigger import ContentionError, Outcome, PipelineTrigger, StepFunctionsStarter

    prog = f"{PROG} run"
    try:
        table_name = _setting(args.state_table, contracts.PIPELINE_STATE_TABLE_ENV, "--state-table")
        arn = _setting(args.state_machine_arn, contracts.STATE_MACHINE_ARN_ENV, "--state-machine-arn")
        region = _arn_region(arn)
        lease_s = _lease_s(os.environ)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        table, sfn = _aws(args.endpoint, region, table_name, stepfunctions=True)
        trigger = PipelineTrigger(table, StepFunctionsStarter(sfn, arn), lease_s=lease_s)
        with _trigger_warnings(prog):
            result = trigger.request_run()
    except ContentionError as exc:
        print(f"{prog}: error: {exc}; try again", file=sys.stderr)
        return 1
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        print(f"{prog}: error: {_describe(exc, table_name)}", file=sys.stderr)
        return 1
    state: dict[str, Any] | None = None
    if result.outcome == Outcome.PENDING:  # which run the follow-up waits for (informational only)
        with contextlib.suppress(Exception):
            state = trigger.state()
    plain = None if state is None else _plain(state, lease_s)
    if args.json:
        print(json.dumps({**result.to_dict(), "state": plain}, indent=2))
    elif result.outcome == Outcome.STARTED:
        print(f"started pipeline run {result.run_id}")
        print(f"  execution: {result.execution_arn}")
    else:
        running = (plain or {}).get("running")
        holder = f"run {running['run_id']} (since {running['started_at']})" if running else "a run"
        print(f"{holder} is going: queued one follow-up run; it starts when that run finishes")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from recsys.ingest.trigger import PipelineTrigger

    prog = f"{PROG} status"
    try:
        table_name = _setting(args.state_table, contracts.PIPELINE_STATE_TABLE_ENV, "--state-table")
        lease_s = _lease_s(os.environ)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        table, _ = _aws(args.endpoint, None, table_name, stepfunctions=False)
        state = PipelineTrigger(table, _NoStarter(), lease_s=lease_s).state()
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        print(f"{prog}: error: {_describe(exc, table_name)}", file=sys.stderr)
        return 1
    plain = _plain(state, lease_s)
    if args.json:
        print(json.dumps({"state_table": table_name, **plain}, indent=2))
    else:
        print("\n".join(_status_lines(plain, lease_s)))
    return 0


# --- settings and clients -------------------------------------------------------------------------------


def _setting(flag: str | None, env_name: str, flag_name: str) -> str:
    value = (flag if flag is not None else os.environ.get(env_name, "")).strip()
    if not value:
        raise UsageError(f"no {flag_name[2:].replace('-', ' ')}: pass {flag_name} or set ${env_name}")
    return value


def _arn_region(arn: str) -> str:
    """The region in a state machine ARN (arn:<partition>:states:<region>:<account>:stateMachine:<name>)."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "stateMachine":
        raise UsageError(
            f"{arn!r} is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
        )
    return parts[3]


def _lease_s(env: Mapping[str, str]) -> float:
    from recsys.ingest.settings import SettingsError, lease_from_env

    try:
        return lease_from_env(env)
    except SettingsError as exc:
        raise UsageError(f"${exc}") from None


def _aws(
    endpoint: str | None, region: str | None, table_name: str, *, stepfunctions: bool
) -> tuple[Any, Any]:
    """The state table resource (and a Step Functions client), with the ingest Lambda's client config. The
    region is the session's, else the state machine ARN's."""
    import boto3  # type: ignore[import-untyped]

    from recsys.ingest.aws import client_config

    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"config": client_config(CLIENT_ATTEMPTS)}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if session.region_name is None and region:
        kwargs["region_name"] = region
    table = session.resource("dynamodb", **kwargs).Table(table_name)
    sfn = session.client("stepfunctions", **kwargs) if stepfunctions else None
    return table, sfn


class _NoStarter:
    """`status` reads the state only; it never starts a run."""

    def start(self, run_id: str) -> str:
        raise RuntimeError("recsys pipeline status never starts a run")


@contextlib.contextmanager
def _trigger_warnings(prog: str) -> Iterator[None]:
    """While the trigger runs: its warnings (e.g. a lock it could not give back) as one line each on
    stderr, no tracebacks; its errors are re-raised and reported by the caller."""
    trigger_logger = logging.getLogger("recsys.ingest.trigger")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(lambda record: record.levelno == logging.WARNING)
    handler.setFormatter(_OneLineFormatter(f"{prog}: warning: %(message)s"))
    propagate = trigger_logger.propagate
    trigger_logger.addHandler(handler)
    trigger_logger.propagate = False
    try:
        yield
    finally:
        trigger_logger.removeHandler(handler)
        trigger_logger.propagate = propagate


class _OneLineFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = ""
        line = super().format(record)
        if record.exc_info and record.exc_info[1] is not None:
            line += f": {record.exc_info[1]}"
        return line


# --- errors ---------------------------------------------------------------------------------------------


def _is_aws_error(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    return isinstance(exc, BotoCoreError | ClientError)


def _describe(exc: BaseException, table_name: str) -> str:
    """One line for an AWS error: what failed, and what to do where it is clear."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (configure a profile, or set AWS_PROFILE or the AWS_* keys)"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the profile)"
    if not isinstance(exc, ClientError):
        return str(exc)
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", "")).strip()
    operation = getattr(exc, "operation_name", "") or "the AWS call"
    if operation == "StartExecution":
        return (
            f"the run was not started: StartExecution failed: {code}: {message}; the lock was given back "
            "with the run still owed (pending): fix the cause and request again"
        )
    if code == "ResourceNotFoundException":
        return f"pipeline state table {table_name!r} not found ({operation}: {message})"
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        return f"access denied to pipeline state table {table_name!r} ({operation}): {message}"
    return f"{operation} failed: {code}: {message}"


# --- the state in plain words ---------------------------------------------------------------------------


def _plain(state: Mapping[str, Any], lease_s: float, now: float | None = None) -> dict[str, Any]:
    """The state item as JSON-ready values (times as ISO-8601 UTC)."""
    from recsys.ingest import trigger as n

    now = time.time() if now is None else now
    running = None
    if state.get(n.RUNNING):
        started = _epoch(state.get(n.STARTED_AT))
        running = {
            "run_id": str(state[n.RUNNING]),
            "started_at": _iso(started),
            "execution_arn": state.get(n.EXECUTION_ARN),
            "stale": started is not None and started < now - lease_s,
        }
    last = None
    if state.get(n.LAST_RUN):
        succeeded = state.get(n.LAST_SUCCEEDED)
        last = {
            "run_id": str(state[n.LAST_RUN]),
            "finished_at": _iso(state.get(n.LAST_FINISHED_AT)),
            "succeeded": None if succeeded is None else bool(succeeded),
        }
    pending = bool(state.get(n.PENDING))
    return {
        "running": running,
        "pending": pending,
        "pending_since": _iso(state.get(n.PENDING_SINCE)) if pending else None,
        "last_run": last,
    }


def _status_lines(plain: Mapping[str, Any], lease_s: float) -> list[str]:
    running, last = plain["running"], plain["last_run"]
    if running is None and last is None and not plain["pending"]:
        return ["no pipeline run has been requested yet: the lock is free"]
    lines = []
    if running is None:
        lines.append("running: none (the lock is free)")
    else:
        lines.append(f"running: {running['run_id']} since {running['started_at']}")
        if running["execution_arn"]:
            lines.append(f"  execution: {running['execution_arn']}")
        if running["stale"]:
            lines.append(
                f"  stale: held longer than the {_duration(lease_s)} lease, taken as crashed; "
                "the next request takes the lock over"
            )
    if plain["pending"]:
        owed = "when the running run finishes" if running else "by the next request"
        lines.append(f"pending: yes, one follow-up run owed since {plain['pending_since']} (started {owed})")
    else:
        lines.append("pending: no")
    if last is None:
        lines.append("last run: none finished yet")
    else:
        outcome = {True: "succeeded", False: "failed", None: "outcome unknown"}[last["succeeded"]]
        lines.append(f"last run: {last['run_id']}, finished {last['finished_at']}, {outcome}")
    return lines


def _epoch(value: Any) -> float | None:
    try:
        return None if value is None else float(value)  # DynamoDB numbers arrive as Decimal
    except (TypeError, ValueError):
        return None


def _iso(value: Any) -> str | None:
    seconds = _epoch(value)
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g} h" if hours >= 1 else f"{seconds:g} s"
