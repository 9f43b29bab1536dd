"""`POST /events`: validate one event or a batch, store the valid ones, say what became of each.

Called by the events Lambda (lambdas/events/handler.py) and by the serving Lambda's `POST /events`
route. Replies (the body is always a JSON object):

| status | when | body |
|---|---|---|
| 200 | every event accepted | `accepted`, `rejected: []`, `events: [{index, event_id, event_key}]` |
| 207 | some accepted, some not | the same, `rejected: [{index, field, error}]` listing the others |
| 400 | body empty, not JSON, wrong shape; or no event valid | `error`, `field` (and `rejected` per event) |
| 413 | more than MAX_EVENTS_PER_REQUEST events, or a body over MAX_BODY_BYTES | `error`, `field` |
| 503 | a store kept failing after its retries (`Retry-After` header) | `error`, `retry_after`, `events` |

A 200/207 means every accepted event is in the recent-events table and was taken by Firehose. On 503
none of the batch may be assumed stored: send it again, with the `event_id`s the reply lists, so the
recent-events table keeps one item per event (the Firehose copy is at-least-once).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from recsys import contracts
from recsys.events.model import Event, FieldError, parse_event
from recsys.events.sinks import EventSinks, SinkError

__all__ = ["MAX_BODY_BYTES", "EventSinks", "EventsReply", "post_events"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: 500 events of generous size fit well inside
RETRY_AFTER_S = 2
EVENTS = "events"
BODY = "body"


@dataclass(frozen=True)
class EventsReply:
    status: int
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers for the reply: JSON, and `Retry-After` on 503."""
        headers = {"Content-Type": "application/json"}
        if "retry_after" in self.body:
            headers["Retry-After"] = str(self.body["retry_after"])
        return headers


def post_events(
    body: str | bytes | None, sinks: EventSinks, *, now: Callable[[], datetime] | None = None
) -> EventsReply:
    """Validate, store and acknowledge the events of one request body (see the module's table)."""
    document = _document(body)
    if isinstance(document, EventsReply):
        return document
    raw_events = _raw_events(document)
    if isinstance(raw_events, EventsReply):
        return raw_events
    now_ms = int((now or _utc_now)().timestamp() * 1000)
    accepted: list[tuple[int, Event]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        try:
            accepted.append((index, parse_event(raw, now_ms=now_ms)))
        except FieldError as exc:
            rejected.append({"index": index, "field": exc.field, "error": exc.reason})
    if not accepted:
        first = rejected[0]
        error = first["error"] if len(rejected) == 1 else f"no valid event among {len(rejected)}"
        return EventsReply(
            400, {"error": error, "field": first["field"], "accepted": 0, "rejected": rejected}
        )
    events = [e for _, e in accepted]
    receipts = [{"index": i, "event_id": e.event_id, "event_key": e.event_key} for i, e in accepted]
    try:
        sinks.store_recent(events, received_at=now_ms // 1000)
        sinks.send_to_stream(events)
    except Exception as exc:
        if not _service_failure(exc):
            raise
        logger.exception("storing %d event(s) failed; the client is asked to retry", len(events))
        return EventsReply(
            503,
            {
                "error": "events could not be stored now; send them again (with these event_ids)",
                "retry_after": RETRY_AFTER_S,
                "accepted": 0,
                "rejected": rejected,
                EVENTS: receipts,
            },
        )
    logger.info("%d event(s) stored, %d rejected", len(events), len(rejected))
    return EventsReply(
        200 if not rejected else 207, {"accepted": len(events), "rejected": rejected, EVENTS: receipts}
    )


def _document(body: str | bytes | None) -> Any:
    """The parsed JSON, or the 400/413 reply."""
    if body is None or not body:
        return _error(400, BODY, 'the request body is empty: send one event or {"events": [...]}')
    if len(body) > MAX_BODY_BYTES or (isinstance(body, str) and len(body.encode("utf-8")) > MAX_BODY_BYTES):
        return _error(413, BODY, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _error(400, BODY, f"the request body is not JSON: {exc}")


def _raw_events(document: Any) -> list[Any] | EventsReply:
    if not isinstance(document, dict):
        return _error(400, BODY, 'the request body must be a JSON object: one event, or {"events": [...]}')
    if EVENTS not in document:
        return [document]
    raw = document[EVENTS]
    if not isinstance(raw, list):
        return _error(400, EVENTS, "events must be an array of event objects")
    if not raw:
        return _error(400, EVENTS, "events is empty")
    if len(raw) > contracts.MAX_EVENTS_PER_REQUEST:
        return _error(
            413,
            EVENTS,
            f"{len(raw)} events in one request; at most {contracts.MAX_EVENTS_PER_REQUEST} are allowed",
        )
    return raw


def _error(status: int, field: str, message: str) -> EventsReply:
    return EventsReply(status, {"error": message, "field": field})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _service_failure(exc: BaseException) -> bool:
    """A store that failed (after retries), as opposed to a bug: the client should retry."""
    if isinstance(exc, SinkError):
        return True
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    return isinstance(exc, BotoCoreError | ClientError)


def _utc_now() -> datetime:
    return datetime.now(UTC)
