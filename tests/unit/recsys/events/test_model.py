"""The rules of one event, field by field, and the forms it is stored in (CSV record, recent item)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from recsys import contracts
from recsys.events.model import Event, FieldError, parse_event
from recsys.events.records import csv_record, recent_item, timestamp_text

NOW_MS = 1_764_331_200_000  # 2026-11-28T12:00:00Z
VALID = {"user_id": "u1", "item_id": "i1", "event_type": "purchase"}


def parse(**fields: Any) -> Event:
    return parse_event({**VALID, **fields}, now_ms=NOW_MS)


def rejected(**fields: Any) -> FieldError:
    event = {k: v for k, v in {**VALID, **fields}.items() if v is not ...}
    with pytest.raises(FieldError) as raised:
        parse_event(event, now_ms=NOW_MS)
    return raised.value


def test_a_minimal_event_gets_server_time_and_an_id() -> None:
    event = parse()
    assert (event.user_id, event.item_id, event.event_type, event.rating) == ("u1", "i1", "purchase", None)
    assert event.timestamp_ms == NOW_MS
    assert len(event.event_id) == 32
    assert parse().event_id != event.event_id
    assert event.event_key == f"{NOW_MS}#{event.event_id}"


@pytest.mark.parametrize(
    ("timestamp", "expected_ms"),
    [
        (1537799250, 1537799250000),
        (Decimal("1537799250.123"), 1537799250123),
        (Decimal("1537799250.9999"), 1537799250999),  # floored to the millisecond
        (1537799250.5, 1537799250500),
        ("1537799250", 1537799250000),
        ("2018-09-24T14:27:30Z", 1537799250000),
        ("2018-09-24T16:27:30+02:00", 1537799250000),
        ("2018-09-24T14:27:30.25", 1537799250250),  # naive means UTC
        ("2018-09-24", 1537747200000),
        (0, 0),
    ],
)
def test_timestamps(timestamp: Any, expected_ms: int) -> None:
    assert parse(timestamp=timestamp).timestamp_ms == expected_ms


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (NOW_MS // 1000 + 2 * 86400, "ahead"),
        (NOW_MS, "milliseconds"),  # epoch milliseconds by mistake
        (-1, "outside"),
        ("yesterday", "not a timestamp"),
        (True, "epoch seconds"),
        ([1], "not an array"),
        (Decimal("Infinity"), "outside"),
    ],
)
def test_bad_timestamps(timestamp: Any, reason: str) -> None:
    error = rejected(timestamp=timestamp)
    assert error.field == "timestamp"
    assert reason in error.reason


def test_a_day_ahead_is_allowed_for_clock_drift() -> None:
    assert parse(timestamp=NOW_MS // 1000 + 86400).timestamp_ms == NOW_MS + 86400 * 1000


@pytest.mark.parametrize("field", ["user_id", "item_id"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (..., "required"),
        (None, "required"),
        (17, "must be a string, not a number"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 257, "257 characters long; at most 256"),
        ("a\x00b", "non-printable"),
        ("line\nbreak", "non-printable"),
        ("tab\there", "non-printable"),
        ("del\x7f", "non-printable"),
        ("\u2028sep", "non-printable"),
        (" padded", "space"),
    ],
)
def test_bad_ids(field: str, value: Any, reason: str) -> None:
    error = rejected(**{field: value})
    assert error.field == field
    assert reason in error.reason


def test_ids_of_256_characters_and_any_printable_text_are_fine() -> None:
    event = parse(user_id="u" * contracts.MAX_ID_LENGTH, item_id='Amélie, "the film" 🎬')
    assert len(event.user_id) == 256
    assert event.item_id == 'Amélie, "the film" 🎬'


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"event_type": ...}, "event_type", "required"),
        ({"event_type": ""}, "event_type", "empty"),
        ({"event_type": "v" * 65}, "event_type", "at most 64"),
        ({"event_type": "vi\x1bew"}, "event_type", "non-printable"),
        ({"rating": "5"}, "rating", "must be a number, not a string"),
        ({"rating": True}, "rating", "not a boolean"),
        ({"rating": Decimal("1e400")}, "rating", "finite"),
        ({"event_id": "has space"}, "event_id", "letters, digits"),
        ({"event_id": "e" * 129}, "event_id", "1 to 128"),
        ({"event_id": 5}, "event_id", "must be a string"),
    ],
)
def test_other_bad_fields(fields: dict[str, Any], field: str, reason: str) -> None:
    error = rejected(**fields)
    assert error.field == field
    assert reason in error.reason


def test_an_event_that_is_not_an_object() -> None:
    with pytest.raises(FieldError, match="must be a JSON object, not an array") as raised:
        parse_event([1, 2], now_ms=NOW_MS)
    assert raised.value.field is None


def test_optional_fields_are_kept() -> None:
    event = parse(rating=Decimal("4.5"), event_id="client-42", timestamp=1537799250)
    assert (event.rating, event.event_id, event.event_key) == (4.5, "client-42", "1537799250000#client-42")


@pytest.mark.parametrize(
    ("ms", "text"), [(1537799250000, "1537799250"), (1537799250050, "1537799250.050"), (0, "0")]
)
def test_timestamp_text(ms: int, text: str) -> None:
    assert timestamp_text(ms) == text


def test_the_csv_record_is_one_quoted_line_in_canonical_order() -> None:
    event = Event('user "one"', "item,1", "view", 1537799250050, "e1", rating=4.5)
    record = csv_record(event)
    assert record == b'"user ""one""","item,1",1537799250.050,4.5,view\n'
    assert next(csv.reader(io.StringIO(record.decode()))) == [
        'user "one"',
        "item,1",
        "1537799250.050",
        "4.5",
        "view",
    ]
    assert csv_record(Event("u", "i", "click", 1000, "e")) == b"u,i,1,,click\n"


def test_the_recent_item() -> None:
    event = Event("u1", "i1", "rating", 1537799250050, "e1", rating=3.0)
    item = recent_item(event, received_at=1_764_331_200)
    assert item == {
        "user_id": "u1",
        "event_key": "1537799250050#e1",
        "item_id": "i1",
        "event_type": "rating",
        "timestamp_ms": 1537799250050,
        "rating": 3.0,
        "event_id": "e1",
        "received_at": 1_764_331_200,
        "expires_at": 1_764_331_200 + 30 * 86400,
    }
