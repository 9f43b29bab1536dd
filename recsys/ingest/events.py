"""Which objects a queue message is about: S3 event notifications, S3's test event, EventBridge events.

Plain dictionaries, no pydantic: the handler's cold start stays short, and the shapes tolerated here are
few and stable. Keys arrive URL-encoded ("red flower.csv" is "red+flower.csv") and are decoded here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus


class EventError(ValueError):
    """A message that is not an event this Lambda understands (it goes back to the queue, then the DLQ)."""


@dataclass(frozen=True)
class ObjectRef:
    """One object version to ingest, as an event names it."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refs_from_message(body: str) -> list[ObjectRef]:
    """The created objects a message body names; [] for S3's test event and for other event types."""
    try:
        message = json.loads(body)
    except (TypeError, ValueError):
        raise EventError("message body is not JSON") from None
    return refs_from_event(message)


def refs_from_event(message: object) -> list[ObjectRef]:
    if not isinstance(message, dict):
        raise EventError("event is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    if "Records" in message:
        return [ref for record in _list(message["Records"]) if (ref := _from_record(record))]
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):
        return [ref] if (ref := _from_eventbridge(message)) else []
    raise EventError("not an S3 event notification, S3 test event or EventBridge S3 event")


def _from_record(record: object) -> ObjectRef | None:
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        raise EventError("a record of the notification is not an S3 record")
    if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
        return None
    s3 = _dict(record.get("s3"), "s3")
    obj = _dict(s3.get("object"), "s3.object")
    return ObjectRef(
        bucket=_text(_dict(s3.get("bucket"), "s3.bucket").get("name"), "s3.bucket.name"),
        key=unquote_plus(_text(obj.get("key"), "s3.object.key")),
        version_id=_optional_text(obj.get("versionId")),
        etag=_optional_text(obj.get("eTag")),
        size=_optional_int(obj.get("size")),
        sequencer=_optional_text(obj.get("sequencer")),
    )


def _from_eventbridge(message: dict[str, Any]) -> ObjectRef | None:
    if message.get("detail-type") != "Object Created":
        return None
    detail = message["detail"]
    obj = _dict(detail.get("object"), "detail.object")
    return ObjectRef(
        bucket=_text(_dict(detail.get("bucket"), "detail.bucket").get("name"), "detail.bucket.name"),
        key=unquote_plus(_text(obj.get("key"), "detail.object.key")),
        version_id=_optional_text(obj.get("version-id")),
        etag=_optional_text(obj.get("etag")),
        size=_optional_int(obj.get("size")),
        sequencer=_optional_text(obj.get("sequencer")),
    )


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise EventError("Records is not a list")
    return value


def _dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventError(f"{where} is missing or not an object")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventError(f"{where} is missing or not a string")
    return value


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
