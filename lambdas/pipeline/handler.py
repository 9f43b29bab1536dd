"""The state machine's step Lambdas; one asset, three entry points (stacks/orchestration.py):

- `evaluate`: {"run_id", "run_uri", "candidates": [...]} → metrics of each candidate, popularity and the
  live model on the run's held-out split, and the gate's decision (`recsys.pipeline_steps`); the metrics go
  out as CloudWatch embedded metrics (Powertools), one per model, metric and version.
- `finish`: {"run_id", "succeeded"} → `recsys.ingest.trigger` finish_run: frees the one-run lock, or starts
  the one follow-up run owed to uploads made during this run.
- `request`: the optional schedule's target → request_run (the same lock as uploads: no second run).

Thin on purpose: parse, build clients once per container, call the core, return plain JSON.
"""

from __future__ import annotations

import logging
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys import contracts
from recsys import pipeline_steps as steps

logger = Logger(service=contracts.PIPELINE_SERVICE_NAME)
logging.getLogger("recsys").setLevel(logging.INFO)


@cache
def _clients() -> tuple[Any, Any]:
    """S3 and DynamoDB clients, made on the first event and kept for the container's life."""
    return boto3.client("s3"), boto3.client("dynamodb")


def _trigger() -> Any:
    from recsys.ingest.settings import lease_from_env
    from recsys.ingest.trigger import PipelineTrigger, StepFunctionsStarter

    env = os.environ
    table = boto3.resource("dynamodb").Table(env[contracts.PIPELINE_STATE_TABLE_ENV])
    starter = StepFunctionsStarter(boto3.client("stepfunctions"), env[contracts.STATE_MACHINE_ARN_ENV])
    return PipelineTrigger(table, starter, lease_s=lease_from_env(env))


def emit_metrics(evaluation: dict[str, Any], run_id: str, versions: dict[str, str]) -> int:
    """One embedded metric per (model, metric), dimensions service, model and version."""
    rows = steps.metric_records(evaluation, run_id)
    for model, metric, value in rows:
        with single_metric(
            name=metric,
            unit=MetricUnit.NoUnit,
            value=value,
            namespace=contracts.METRICS_NAMESPACE,
            default_dimensions={"service": contracts.PIPELINE_SERVICE_NAME},
        ) as record:
            record.add_dimension(name=contracts.MODEL_METRIC_DIMENSION, value=model)
            record.add_dimension(name="version", value=versions.get(model, f"{model}-{run_id}"))
    return len(rows)


@logger.inject_lambda_context(clear_state=True)
def evaluate(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from recsys import gate, model_eval

    run_id, run_uri = event.get("run_id"), event.get("run_uri")
    if not isinstance(run_id, str) or not isinstance(run_uri, str):
        raise steps.StepError(f"run_id and run_uri: expected strings, got {run_id!r} and {run_uri!r}")
    candidates = steps.parse_candidates(event.get("candidates"))
    settings = steps.GateSettings.from_env(os.environ)
    s3, dynamodb = _clients()
    live_uri = steps.live_model_uri(dynamodb, os.environ[contracts.SERVING_TABLE_ENV])
    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
        result = steps.evaluate_and_gate(
            run_uri,
            candidates,
            live_uri,
            Path(scratch),
            settings,
            fetch=lambda uri, target, dirs, files: steps.download_folder(s3, uri, target, dirs, files),
            evaluate_outputs=model_eval.evaluate_outputs,
            evaluate_popularity=model_eval.evaluate_popularity,
            decide=gate.decide,
        )
    versions = {c.name: c.version for c in candidates if c.version}
    emit_metrics(result, run_id, versions)
    logger.info("evaluated", extra={"run_id": run_id, "evaluation": result})
    return result


@logger.inject_lambda_context(clear_state=True)
def finish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run_id, succeeded = steps.finish_event(event)
    result: dict[str, Any] = _trigger().finish_run(run_id, succeeded).to_dict()
    logger.info("run finished", extra={"run_id": run_id, "succeeded": succeeded, "trigger": result})
    return result


@logger.inject_lambda_context(clear_state=True)
def request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result: dict[str, Any] = _trigger().request_run().to_dict()
    logger.info("scheduled run requested", extra={"trigger": result})
    return result
