"""Publish Lambda: `{"model_uri": "s3://<artifacts>/models/<version>/", "version": optional}` →
`recsys.publish.publish.publish`; the state machine of the orchestration issue invokes it.

Thin on purpose: check the event, check the model folder fits in /tmp (the core copies an s3:// folder to a
temporary directory before loading it; /tmp is the stage's `publish_ephemeral_storage_mb`), call the core,
return its result (`PublishResult.to_dict()`, plain JSON) as the task's output.

Failures are raised and named by their class, so the state machine can catch them by name:
`PublishRequestError` (a bad event), `ModelTooLargeError` (the folder does not fit in /tmp),
`ModelFormatError` and `VersionError` (a bad model folder), `PublishError` and `LiveChangedError` (not
published, the live version is unchanged), `LoadError` (DynamoDB kept throttling: worth a later retry).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys import contracts
from recsys.publish.publish import publish
from recsys.publish.settings import PublishSettings
from recsys.publish.source import split_s3_uri

logger = Logger(service=contracts.PUBLISH_SERVICE_NAME)
logging.getLogger("recsys").setLevel(logging.INFO)  # the core's lines (retired versions, ...) reach the logs
CLIENT_ATTEMPTS = 8  # as `recsys publish`: a long load rides out throttling rather than failing


class PublishRequestError(ValueError):
    """The event is not {"model_uri": "s3://bucket/prefix/", "version": optional string}."""


class ModelTooLargeError(RuntimeError):
    """The model folder is larger than the free space in /tmp (raise publish_ephemeral_storage_mb)."""


@cache
def clients() -> tuple[Any, Any]:
    """DynamoDB and S3 clients, made on the first event and kept for the container's life."""
    import boto3  # type: ignore[import-untyped]

    from recsys.serving.runtime import client_config

    session = boto3.session.Session()
    config = client_config(CLIENT_ATTEMPTS)
    return session.client("dynamodb", config=config), session.client("s3", config=config)


def parse_event(event: Any) -> tuple[str, str | None]:
    """(model_uri, version or None) from the event; PublishRequestError names the field at fault."""
    if not isinstance(event, dict):
        raise PublishRequestError(f"expected a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - {"model_uri", "version"})
    if unknown:
        raise PublishRequestError(f"unknown field(s) {', '.join(unknown)} (allowed: model_uri, version)")
    uri = event.get("model_uri")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise PublishRequestError(f"model_uri: expected an s3://bucket/prefix/ string, got {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket or not prefix.strip("/"):
        raise PublishRequestError(f"model_uri: {uri!r} does not name a model folder (s3://bucket/prefix/)")
    version = event.get("version")
    if version is not None and not isinstance(version, str):
        raise PublishRequestError(f"version: expected a string or null, got {version!r}")
    return uri, version or None


def folder_bytes(s3: Any, uri: str) -> int:
    """Total size of the objects under the folder (what the core will download)."""
    bucket, prefix = split_s3_uri(uri)
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        total += sum(int(obj["Size"]) for obj in page.get("Contents", []))
    return total


def check_fits(size: int, free: int, uri: str) -> None:
    if size > free:
        raise ModelTooLargeError(
            f"{uri}: {size / 2**20:,.0f} MiB of model files do not fit in /tmp ({free / 2**20:,.0f} MiB "
            "free); raise the stage's publish_ephemeral_storage_mb (up to 10240)"
        )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    uri, version = parse_event(event)
    settings = PublishSettings.from_env(os.environ)
    dynamodb, s3 = clients()
    check_fits(folder_bytes(s3, uri), shutil.disk_usage(tempfile.gettempdir()).free, uri)
    logger.info("publishing", extra={"model_uri": uri, "version": version})
    result = publish(uri, dynamodb, s3, settings, version=version).to_dict()
    logger.info("published", extra=result)
    return result
