"""Events Lambda: a Function URL (or API Gateway payload 2.0) request, or a direct invocation, →
`recsys.events.service.post_events`.

Thin on purpose: take the body out of the event (base64-decoded when `isBase64Encoded`), call the core,
shape the HTTP reply. A direct invocation without a `body` is taken as the request body itself. Nothing
heavy loads at import: boto3 loads with the first request that stores events.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from functools import cache
from typing import Any

from recsys.events.service import EventSinks, EventsReply, post_events

logger = logging.getLogger("recsys")
logger.setLevel(logging.INFO)  # the core's log lines reach CloudWatch


@cache
def sinks() -> EventSinks:
    """Built on the first request (not at import), so tests and local mode can set the environment first."""
    return EventSinks.from_env(os.environ)


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    body = request_body(event)
    if isinstance(body, EventsReply):
        return http_response(body)
    return http_response(post_events(body, sinks()))


def request_body(event: Any) -> str | bytes | EventsReply | None:
    """The request body an invocation carries, or a 400 reply when it cannot be decoded."""
    if not isinstance(event, dict) or "body" not in event:
        return json.dumps(event)  # a direct invocation: the event is the request
    body = event["body"]
    if body is None or not event.get("isBase64Encoded"):
        return body if isinstance(body, str | None) else json.dumps(body)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return EventsReply(400, {"error": "the request body is not valid base64", "field": "body"})


def http_response(reply: EventsReply) -> dict[str, Any]:
    return {"statusCode": reply.status, "headers": reply.headers, "body": json.dumps(reply.body)}
