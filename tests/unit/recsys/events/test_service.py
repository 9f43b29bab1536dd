"""post_events against moto (DynamoDB recent-events table, Firehose delivering to S3): replies, what is
stored where, and the retries of what DynamoDB or Firehose leave undone."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from recsys import contracts
from recsys.events.service import MAX_BODY_BYTES, EventSinks, post_events
from tests.unit.recsys.events.conftest import NOW_S, now

if TYPE_CHECKING:
    from tests.unit.recsys.events.conftest import Aws


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "user_id": f"u{n % 3}",
        "item_id": f"i{n}",
        "event_type": "view",
        "timestamp": NOW_S - 60 + n,
        **fields,
    }


def post(body: Any, sinks: EventSinks) -> Any:
    text = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    return post_events(text, sinks, now=now)


def test_one_event_is_stored_in_both_places(aws: Aws, sinks: EventSinks) -> None:
    reply = post({"user_id": "alice", "item_id": "movie-1", "event_type": "rating", "rating": 4.5}, sinks)

    assert reply.status == 200
    assert reply.headers == {"Content-Type": "application/json"}
    [receipt] = reply.body["events"]
    assert (reply.body["accepted"], reply.body["rejected"], receipt["index"]) == (1, [], 0)
    [item] = aws.recent()
    assert item["event_key"] == f"{NOW_S * 1000}#{receipt['event_id']}" == receipt["event_key"]
    assert (item["user_id"], item["item_id"], item["rating"], item["event_type"]) == (
        "alice",
        "movie-1",
        4.5,
        "rating",
    )
    assert item["expires_at"] == NOW_S + 30 * 86400
    assert aws.delivered() == f"alice,movie-1,{NOW_S},4.5,rating\n".encode()


def test_a_mixed_batch_keeps_the_valid_events(aws: Aws, sinks: EventSinks) -> None:
    events = [
        event(0),
        event(1, user_id="x" * 257),  # over MAX_ID_LENGTH
        event(2),
        event(3, item_id="bad\x01id"),  # a control character
        event(4, timestamp="not a time"),
        event(5, rating=5),
        "not an object",
    ]

    reply = post({"events": events}, sinks)

    assert reply.status == 207
    assert reply.body["accepted"] == 3
    assert [(r["index"], r["field"]) for r in reply.body["rejected"]] == [
        (1, "user_id"),
        (3, "item_id"),
        (4, "timestamp"),
        (6, None),
    ]
    assert "257 characters" in reply.body["rejected"][0]["error"]
    assert [r["index"] for r in reply.body["events"]] == [0, 2, 5]
    assert sorted(i["item_id"] for i in aws.recent()) == ["i0", "i2", "i5"]
    delivered = aws.delivered().decode().splitlines()
    assert sorted(line.split(",")[1] for line in delivered) == ["i0", "i2", "i5"]


def test_a_batch_with_no_valid_event_is_a_400(aws: Aws, sinks: EventSinks) -> None:
    reply = post({"events": [event(0, user_id=""), event(1, item_id=None)]}, sinks)
    assert reply.status == 400
    assert reply.body["accepted"] == 0
    assert [r["field"] for r in reply.body["rejected"]] == [
        "user_id",
        "item_id",
    ]
    assert aws.recent() == []
    assert aws.stream_objects() == []


def test_a_single_invalid_event_names_its_field(aws: Aws, sinks: EventSinks) -> None:
    reply = post({"user_id": "u", "item_id": "i" * 300, "event_type": "view"}, sinks)
    assert reply.status == 400
    assert reply.body["field"] == "item_id"
    assert "300 characters" in reply.body["error"]


def test_more_than_500_events_is_a_413_and_stores_nothing(aws: Aws, sinks: EventSinks) -> None:
    reply = post({"events": [event(n) for n in range(contracts.MAX_EVENTS_PER_REQUEST + 1)]}, sinks)
    assert reply.status == 413
    assert reply.body["field"] == "events"
    assert "501 events" in reply.body["error"]
    assert aws.recent() == []
    assert aws.stream_objects() == []


def test_500_events_are_accepted(aws: Aws, sinks: EventSinks) -> None:
    reply = post({"events": [event(n) for n in range(500)]}, sinks)
    assert (reply.status, reply.body["accepted"]) == (200, 500)
    assert len(aws.recent()) == 500
    assert len(aws.delivered().splitlines()) == 500


def test_a_body_over_the_size_limit_is_a_413(aws: Aws, sinks: EventSinks) -> None:
    body = json.dumps({"events": [event(0, padding="x" * MAX_BODY_BYTES)]})
    reply = post(body, sinks)
    assert (reply.status, reply.body["field"]) == (413, "body")
    assert aws.recent() == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("{not json", "body", "not JSON"),
        (b"\xff\xfe\x00garbage", "body", "not JSON"),
        ('{"user_id": "u", "item_id": "i", "event_type": "v", "rating": NaN}', "body", "NaN"),
        (None, "body", "empty"),
        ("", "body", "empty"),
        ("[1, 2]", "body", "JSON object"),
        ('"text"', "body", "JSON object"),
        ('{"events": {"user_id": "u"}}', "events", "array"),
        ('{"events": []}', "events", "empty"),
    ],
)
def test_bodies_of_the_wrong_shape_are_a_400_naming_the_field(
    aws: Aws, sinks: EventSinks, body: Any, field: str, message: str
) -> None:
    reply = post_events(body, sinks, now=now)
    assert reply.status == 400
    assert reply.body["field"] == field
    assert message in reply.body["error"]
    assert aws.recent() == []


def test_bytes_bodies_are_read_as_utf8(aws: Aws, sinks: EventSinks) -> None:
    body = json.dumps(
        {"user_id": "zoë", "item_id": "café", "event_type": "view"}, ensure_ascii=False
    ).encode()
    assert post_events(body, sinks, now=now).status == 200
    assert aws.recent()[0]["user_id"] == "zoë"


class FlakyFirehose:
    """Firehose at its boundary: the first `failing_calls` calls report their last `fail` records as
    failed (the others are delivered by moto); later calls go through."""

    def __init__(self, real: Any, *, failing_calls: int, fail: int = 2) -> None:
        self.real = real
        self.failing_calls = failing_calls
        self.fail = fail
        self.calls: list[int] = []

    def put_record_batch(self, **kwargs: Any) -> dict[str, Any]:
        records = kwargs["Records"]
        self.calls.append(len(records))
        if len(self.calls) > self.failing_calls:
            return dict(self.real.put_record_batch(**kwargs))
        ok, failed = records[: -self.fail], records[-self.fail :]
        answers = self.real.put_record_batch(**{**kwargs, "Records": ok})["RequestResponses"] if ok else []
        answers += [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"}] * len(failed)
        return {"FailedPutCount": len(failed), "RequestResponses": answers, "Encrypted": False}


def test_records_firehose_reports_failed_are_sent_again(
    aws: Aws, sinks: EventSinks, slept: list[float]
) -> None:
    flaky = FlakyFirehose(aws.firehose, failing_calls=2, fail=3)
    reply = post({"events": [event(n) for n in range(10)]}, replace(sinks, firehose=flaky))

    assert reply.status == 200
    assert flaky.calls == [10, 3, 3]  # only the failed records go again
    assert len(slept) == 2
    delivered = sorted(line.split(",")[1] for line in aws.delivered().decode().splitlines())
    assert delivered == sorted(f"i{n}" for n in range(10))  # each exactly once


def test_records_that_keep_failing_are_a_503_with_retry_after(aws: Aws, sinks: EventSinks) -> None:
    flaky = FlakyFirehose(aws.firehose, failing_calls=10**6, fail=1)
    reply = post({"events": [event(n, event_id=f"e{n}") for n in range(3)]}, replace(sinks, firehose=flaky))

    assert reply.status == 503
    assert reply.headers["Retry-After"] == str(reply.body["retry_after"])
    assert reply.body["accepted"] == 0
    assert [r["event_id"] for r in reply.body["events"]] == ["e0", "e1", "e2"]  # resend with these ids
    assert len(flaky.calls) == sinks.backoff.attempts


class FlakyDynamo:
    """DynamoDB at its boundary: the first `failing_calls` BatchWriteItem calls leave `keep` items
    unprocessed (the rest are written by moto)."""

    def __init__(self, real: Any, *, failing_calls: int, keep: int = 2) -> None:
        self.real = real
        self.failing_calls = failing_calls
        self.keep = keep
        self.calls: list[int] = []

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        [(table, requests)] = kwargs["RequestItems"].items()
        self.calls.append(len(requests))
        if len(self.calls) > self.failing_calls:
            return dict(self.real.batch_write_item(**kwargs))
        done, left = requests[: -self.keep], requests[-self.keep :]
        if done:
            self.real.batch_write_item(RequestItems={table: done})
        return {"UnprocessedItems": {table: left}}


def test_unprocessed_recent_items_are_retried(aws: Aws, sinks: EventSinks, slept: list[float]) -> None:
    flaky = FlakyDynamo(aws.dynamodb, failing_calls=2, keep=4)
    reply = post({"events": [event(n) for n in range(30)]}, replace(sinks, dynamodb=flaky))

    assert reply.status == 200
    assert flaky.calls == [25, 4, 4, 5]  # the first chunk twice short of 4 items, then the last 5
    assert len(aws.recent()) == 30
    assert len(slept) == 2


def test_recent_items_that_stay_unprocessed_are_a_503_before_firehose(aws: Aws, sinks: EventSinks) -> None:
    flaky = FlakyDynamo(aws.dynamodb, failing_calls=10**6, keep=1)
    reply = post({"events": [event(n) for n in range(3)]}, replace(sinks, dynamodb=flaky))
    assert reply.status == 503
    assert "Retry-After" in reply.headers
    assert aws.stream_objects() == []  # nothing sent on to training for a batch the client will resend


def test_the_same_event_id_resent_is_one_recent_item(aws: Aws, sinks: EventSinks) -> None:
    body = {"events": [event(1, event_id="e-1"), event(1, event_id="e-1")]}
    assert post(body, sinks).status == 200
    assert post(body, sinks).status == 200
    assert len(aws.recent()) == 1


def test_an_aws_error_is_a_503(aws: Aws, sinks: EventSinks) -> None:
    reply = post(event(0), replace(sinks, table_name="no-such-table"))
    assert reply.status == 503


def test_sinks_from_env() -> None:
    env = {contracts.RECENT_EVENTS_TABLE_ENV: "recent", contracts.EVENTS_STREAM_ENV: "stream"}
    sinks = EventSinks.from_env(env)
    assert (sinks.table_name, sinks.stream_name, sinks.dynamodb, sinks.firehose) == (
        "recent",
        "stream",
        None,
        None,
    )
    with pytest.raises(ValueError, match=contracts.EVENTS_STREAM_ENV):
        EventSinks.from_env({contracts.RECENT_EVENTS_TABLE_ENV: "recent"})


def test_clients_are_made_on_first_use(aws: Aws) -> None:
    sinks = EventSinks.from_env(
        {contracts.RECENT_EVENTS_TABLE_ENV: "recent", contracts.EVENTS_STREAM_ENV: "s"}
    )
    client = sinks.firehose_client()
    assert client is sinks.firehose_client()
    assert client.meta.service_model.service_name == "firehose"
