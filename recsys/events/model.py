"""One real-time event: the rules a posted event must meet, and the normalised form kept of it.

The rules are those of a transactions CSV row (DESIGN.md §4), a little stricter where an HTTP client can
be told at once: ids are printable, 1..MAX_ID_LENGTH characters, with no space at either end; the
timestamp is epoch seconds (a number) or ISO-8601 (naive means UTC), absent means the server's time, and
it may not lie more than a day ahead. Every event accepted here is also accepted by the CSV validator, so
the stream copy that Firehose delivers lands in the curated zone whole.

Standard library only: the serving Lambda imports this at cold start.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from recsys import contracts
from recsys.csv_contract import EVENT_TYPE, ITEM_ID, MAX_EVENT_TYPE_LENGTH, RATING, TIMESTAMP, USER_ID

EVENT_ID = "event_id"
MAX_EVENT_ID_LENGTH = 128  # keeps the sort key "<13 digits>#<event id>" far below DynamoDB's 1,024 bytes
MAX_FUTURE_S = 24 * 3600  # clocks drift; a timestamp further ahead than this is a mistake
MAX_EPOCH_S = 4_102_444_800  # 2100-01-01, the CSV contract's bound
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]+")
_EPOCH_TEXT = re.compile(r"[+-]?\d+(?:\.\d+)?")


class FieldError(ValueError):
    """One field of one event is wrong; `field` names it (None for the event as a whole)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Event:
    user_id: str
    item_id: str
    event_type: str
    timestamp_ms: int  # epoch milliseconds, UTC
    event_id: str
    rating: float | None = None

    @property
    def event_key(self) -> str:
        """The recent-events sort key: `<epoch ms, 13 digits>#<event id>` (time-ordered, unique)."""
        return f"{self.timestamp_ms:013d}#{self.event_id}"


def parse_event(raw: object, *, now_ms: int) -> Event:
    """The event a JSON object describes, or FieldError naming the first field at fault."""
    if not isinstance(raw, dict):
        raise FieldError(None, f"an event must be a JSON object, not {_json_type(raw)}")
    event_id = raw.get(EVENT_ID)
    return Event(
        user_id=_id(raw, USER_ID),
        item_id=_id(raw, ITEM_ID),
        event_type=_event_type(raw),
        timestamp_ms=_timestamp_ms(raw.get(TIMESTAMP), now_ms),
        event_id=uuid.uuid4().hex if event_id is None else _event_id(event_id),
        rating=_rating(raw.get(RATING)),
    )


def _id(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if value is None:
        raise FieldError(name, f"{name} is required")
    if not isinstance(value, str):
        raise FieldError(name, f"{name} must be a string, not {_json_type(value)}")
    if not value.strip():
        raise FieldError(name, f"{name} is empty")
    if len(value) > contracts.MAX_ID_LENGTH:
        raise FieldError(
            name, f"{name} is {len(value)} characters long; at most {contracts.MAX_ID_LENGTH} are allowed"
        )
    if not value.isprintable():
        raise FieldError(name, f"{name} contains a control or other non-printable character")
    if value != value.strip():
        raise FieldError(name, f"{name} starts or ends with a space")
    return value


def _event_type(raw: dict[str, Any]) -> str:
    value = raw.get(EVENT_TYPE)
    if value is None:
        raise FieldError(EVENT_TYPE, "event_type is required (e.g. purchase, view, rating, click)")
    if not isinstance(value, str):
        raise FieldError(EVENT_TYPE, f"event_type must be a string, not {_json_type(value)}")
    if not value.strip():
        raise FieldError(EVENT_TYPE, "event_type is empty")
    if len(value) > MAX_EVENT_TYPE_LENGTH:
        raise FieldError(
            EVENT_TYPE,
            f"event_type is {len(value)} characters long; at most {MAX_EVENT_TYPE_LENGTH} are allowed",
        )
    if not value.isprintable():
        raise FieldError(EVENT_TYPE, "event_type contains a control or other non-printable character")
    return value


def _event_id(value: object) -> str:
    if not isinstance(value, str):
        raise FieldError(EVENT_ID, f"event_id must be a string, not {_json_type(value)}")
    if not 1 <= len(value) <= MAX_EVENT_ID_LENGTH or not _EVENT_ID.fullmatch(value):
        raise FieldError(
            EVENT_ID,
            f"event_id must be 1 to {MAX_EVENT_ID_LENGTH} characters of letters, digits and . _ : -",
        )
    return value


def _timestamp_ms(value: object, now_ms: int) -> int:
    if value is None:
        return now_ms
    if isinstance(value, bool):
        raise FieldError(TIMESTAMP, "timestamp must be epoch seconds (a number) or an ISO-8601 string")
    if isinstance(value, int | float | Decimal):
        seconds = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    elif isinstance(value, str):
        seconds = _text_seconds(value)
    else:
        raise FieldError(
            TIMESTAMP, f"timestamp must be epoch seconds or an ISO-8601 string, not {_json_type(value)}"
        )
    if not seconds.is_finite() or not 0 <= seconds < MAX_EPOCH_S:
        hint = " (milliseconds? send seconds)" if seconds.is_finite() and seconds >= MAX_EPOCH_S else ""
        raise FieldError(TIMESTAMP, f"timestamp {value!r} is outside 1970..2099{hint}")
    ms = int((seconds * 1000).to_integral_value(rounding=ROUND_FLOOR))
    if ms > now_ms + MAX_FUTURE_S * 1000:
        raise FieldError(TIMESTAMP, f"timestamp {value!r} is more than {MAX_FUTURE_S // 3600} hours ahead")
    return ms


def _text_seconds(value: str) -> Decimal:
    text = value.strip()
    if _EPOCH_TEXT.fullmatch(text):
        return Decimal(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(
            TIMESTAMP,
            f"not a timestamp: {value[:40]!r} "
            "(expected epoch seconds or ISO-8601, e.g. 2018-09-24T14:27:30Z)",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


MAX_RATING = 1e6  # ratings are small numbers on a scale (1-5, 0-10, 0-100); this bounds nonsense
RATING_DECIMALS = 6


def _rating(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise FieldError(RATING, f"rating must be a number, not {_json_type(value)}")
    try:
        rating = float(value)
    except OverflowError:
        rating = math.inf
    if not math.isfinite(rating) or abs(rating) > MAX_RATING:
        raise FieldError(RATING, f"rating must be a finite number from -{MAX_RATING:g} to {MAX_RATING:g}")
    # DynamoDB numbers keep 38 significant digits from 1e-130 on; a rating is nowhere near that fine.
    return round(rating, RATING_DECIMALS)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
