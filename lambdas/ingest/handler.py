"""Ingest Lambda: SQS messages carrying S3 event notifications → `recsys.ingest.process.process_object`.

Thin on purpose: parse the event, build settings and clients once per container, call the core.

- Each SQS message succeeds or fails on its own (Powertools batch processing with
  ReportBatchItemFailures): a failed message goes back to the queue and, after the redrive count, to
  the dead-letter queue. Nothing is dropped.
- Each object version is processed once (Powertools idempotency keyed on bucket, key and version id or
  ETag): S3 delivers at least once, and a redelivered message finds the stored result.
- After an accepted (or partial) uploaded transactions file, one pipeline run is requested
  (`recsys.ingest.trigger`: at most one run at a time, one follow-up for uploads during a run); skipped
  with a log line when no state machine is configured. Real-time event deliveries under
  `transactions/stream/` do not request runs: the next run includes them.
- Catalog files also write their items to the items table, when one is configured.
- Per object, the rows quarantined and whether the file was rejected go out as CloudWatch embedded
  metrics (Powertools Metrics, namespace `contracts.METRICS_NAMESPACE`).
- Only boto3 and Powertools load at cold start; Arrow and the validator load with the first object.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys import contracts
from recsys.ingest.aws import client_config
from recsys.ingest.events import refs_from_message
from recsys.ingest.settings import IngestSettings

logger = Logger(service=contracts.INGEST_SERVICE_NAME)
metrics = Metrics(namespace=contracts.METRICS_NAMESPACE, service=contracts.INGEST_SERVICE_NAME)
logging.getLogger("recsys").setLevel(logging.INFO)  # the core's one line per object reaches the logs
# A batch whose every message failed is reported like any other (each message back to the queue), not
# raised: the outcome per message is the same, and the response stays one shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# What makes two deliveries "the same object version" (JMESPath over ObjectRef.to_dict()).
IDEMPOTENCY_KEY = "[bucket, key, version_id || etag]"

Deadline = Callable[[], float]


@dataclass(frozen=True)
class Runtime:
    """What one container builds once: settings, clients, and the idempotent ingest function."""

    settings: IngestSettings
    s3: Any
    manifest: Any
    idempotency: IdempotencyConfig
    ingest: Callable[..., dict[str, Any]]  # ingest(ref=ObjectRef.to_dict(), deadline=...) -> result dict
    trigger: Any = None  # recsys.ingest.trigger.PipelineTrigger, when a state machine is configured


@cache
def runtime() -> Runtime:
    """Built on the first event (not at import), so a test or local mode can set the environment first."""
    settings = IngestSettings.from_env(os.environ)
    config = client_config(settings.s3_max_attempts)
    s3 = boto3.client("s3", config=config)
    manifest = boto3.resource("dynamodb", config=config).Table(settings.manifest_table)
    idempotency = IdempotencyConfig(
        event_key_jmespath=IDEMPOTENCY_KEY,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_expiry_s,
    )
    store = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table,
        key_attr=contracts.IDEMPOTENCY_PARTITION_KEY,
        expiry_attr=contracts.IDEMPOTENCY_TTL_ATTRIBUTE,
        boto_config=config,
    )
    hooks = None
    if settings.items_table:
        from recsys.ingest.items import catalog_items_hook

        hooks = catalog_items_hook(boto3.client("dynamodb", config=config), settings.items_table)
    trigger = None
    if settings.starts_training:
        from recsys.ingest.trigger import PipelineTrigger, StepFunctionsStarter

        trigger = PipelineTrigger(
            boto3.resource("dynamodb", config=config).Table(settings.pipeline_state_table),
            StepFunctionsStarter(boto3.client("stepfunctions", config=config), settings.state_machine_arn),
            lease_s=settings.run_lease_s,
        )

    def ingest_once(ref: dict[str, Any], deadline: Deadline | None = None) -> dict[str, Any]:
        from recsys.ingest.process import process_object  # Arrow loads here, on the first object
        from recsys.ingest.trigger import wants_training

        result = process_object(
            s3,
            manifest,
            settings,
            ref["bucket"],
            ref["key"],
            ref.get("version_id"),
            ref.get("etag"),
            ref.get("size"),
            deadline=deadline,
            valid_rows_hook=hooks,
        )
        outcome = result.to_dict()
        if wants_training(result):
            # Inside the idempotent function: a redelivered message does not request a second run, and a
            # request that fails fails the object, so its message is retried.
            if trigger is None:
                logger.info(f"{contracts.STATE_MACHINE_ARN_ENV} is not set: no pipeline run requested")
            else:
                outcome["training"] = trigger.request_run().to_dict()
        emit_metrics(outcome)
        return outcome

    ingest = idempotent_function(data_keyword_argument="ref", persistence_store=store, config=idempotency)(
        ingest_once
    )
    return Runtime(settings, s3, manifest, idempotency, ingest, trigger)


def emit_metrics(outcome: dict[str, Any]) -> None:
    """One embedded-metrics record per object: rows curated, rows quarantined, and 1 when the whole file was
    rejected."""
    metrics.add_metric(
        name=contracts.INGEST_ROWS_ACCEPTED_METRIC, unit=MetricUnit.Count, value=outcome["rows_valid"]
    )
    metrics.add_metric(
        name=contracts.INGEST_ROWS_QUARANTINED_METRIC,
        unit=MetricUnit.Count,
        value=outcome["rows_quarantined"],
    )
    rejected = 1 if outcome["status"] == "REJECTED" else 0
    metrics.add_metric(name=contracts.INGEST_FILES_REJECTED_METRIC, unit=MetricUnit.Count, value=rejected)
    metrics.add_metadata(key="object", value=f"s3://{outcome['bucket']}/{outcome['key']}")
    metrics.add_metadata(key="version", value=outcome["version"])
    metrics.add_metadata(key="status", value=outcome["status"])
    metrics.flush_metrics()


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> list[dict[str, Any]]:
    """One SQS message: every object it names. Raises (so the message is retried) if any object failed."""
    refs = refs_from_message(record.body)  # EventError: not an event we know; retried, then the DLQ
    if not refs:
        logger.info("message names no created object (S3 test event or other event type)")
        return []
    ingest = runtime().ingest
    deadline = _deadline(lambda_context)
    results, failed = [], []
    for ref in refs:  # usually one; each is tried, so one failure does not hold back the others
        try:
            results.append(ingest(ref=ref.to_dict(), deadline=deadline))
        except Exception:
            logger.exception("ingest failed; the message will be retried", extra={"ref": ref.to_dict()})
            failed.append(f"s3://{ref.bucket}/{ref.key}")
    if failed:
        raise IngestFailedError(failed)
    return results


class IngestFailedError(RuntimeError):
    def __init__(self, objects: list[str]) -> None:
        super().__init__(f"ingest failed for {', '.join(objects)}")
        self.objects = objects


def _deadline(context: LambdaContext | None) -> Deadline | None:
    if context is None:
        return None
    return lambda: context.get_remaining_time_in_millis() / 1000


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime().idempotency.register_lambda_context(context)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
