"""Queue message bodies → the object versions they name."""

from __future__ import annotations

import json

import pytest

from recsys.ingest.events import EventError, ObjectRef, refs_from_message


def notification(*records: dict[str, object]) -> str:
    return json.dumps({"Records": list(records)})


def s3_record(key: str, event_name: str = "ObjectCreated:Put", **obj: object) -> dict[str, object]:
    return {
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": "b-1"}, "object": {"key": key, **obj}},
    }


def test_s3_notification_keys_are_url_decoded() -> None:
    body = notification(
        s3_record("transactions/my+file%2B1%3D.csv", size=12, eTag="abc", versionId="v1", sequencer="00A")
    )
    assert refs_from_message(body) == [
        ObjectRef("b-1", "transactions/my file+1=.csv", "v1", "abc", 12, "00A")
    ]


def test_several_records_and_only_created_objects() -> None:
    body = notification(
        s3_record("a.csv", "ObjectCreated:CompleteMultipartUpload", size=0),
        s3_record("b.csv", "ObjectRemoved:Delete"),
        s3_record("c.csv", "ObjectCreated:Copy"),
    )
    assert [(r.key, r.size) for r in refs_from_message(body)] == [("a.csv", 0), ("c.csv", None)]


def test_s3_test_event_names_nothing() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "x", "Bucket": "b-1"})
    assert refs_from_message(body) == []


def test_eventbridge_shape() -> None:
    body = json.dumps(
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {
                "bucket": {"name": "b-1"},
                "object": {"key": "catalog/x+y.csv", "size": 5, "etag": "e", "version-id": "v9"},
            },
        }
    )
    assert refs_from_message(body) == [ObjectRef("b-1", "catalog/x y.csv", "v9", "e", 5)]
    deleted = json.loads(body) | {"detail-type": "Object Deleted"}
    assert refs_from_message(json.dumps(deleted)) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": "nope"}),
        json.dumps({"Records": [{"eventSource": "aws:sqs"}]}),
        notification({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}),
        notification(s3_record("")),
    ],
)
def test_bodies_that_are_not_s3_events_are_errors(body: str) -> None:
    with pytest.raises(EventError):
        refs_from_message(body)
