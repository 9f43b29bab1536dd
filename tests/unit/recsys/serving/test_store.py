"""The store's error mapping and caches, with fake clients (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from recsys.serving.settings import ServingSettings
from recsys.serving.store import ServingStore, is_transient, transient_as_unavailable
from recsys.serving.validation import UnavailableError


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetItem")


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("InternalServerError", 500),
        client_error("Whatever", 503),
        EndpointConnectionError(endpoint_url="http://x"),
        ConnectionClosedError(endpoint_url="http://x"),
        ReadTimeoutError(endpoint_url="http://x"),
        HTTPClientError(error="IncompleteRead"),
    ],
)
def test_busy_or_unreachable_is_transient(exc: Exception) -> None:
    assert is_transient(exc)
    with pytest.raises(UnavailableError) as caught, transient_as_unavailable("the serving table"):
        raise exc
    assert (caught.value.status, caught.value.headers()) == (503, {"Retry-After": "1"})


@pytest.mark.parametrize(
    "exc", [client_error("ValidationException"), client_error("ResourceNotFoundException"), ValueError("bug")]
)
def test_other_errors_are_not_hidden(exc: Exception) -> None:
    assert not is_transient(exc)
    with pytest.raises(type(exc)), transient_as_unavailable("the serving table"):
        raise exc


class FakeDynamoDB:
    def __init__(self, unprocessed_rounds: int = 0) -> None:
        self.unprocessed_rounds = unprocessed_rounds
        self.batch_calls: list[list[str]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        [(name, request)] = RequestItems.items()
        keys = [k["item_id"]["S"] for k in request["Keys"]]
        self.batch_calls.append(keys)
        if len(self.batch_calls) <= self.unprocessed_rounds:
            return {"Responses": {name: []}, "UnprocessedKeys": RequestItems}
        items = [
            {"item_id": {"S": k}, "title": {"S": k.upper()}, "categories": {"SS": ["b", "a"]}} for k in keys
        ]
        return {"Responses": {name: items}, "UnprocessedKeys": {}}


def store(client: FakeDynamoDB, now: list[float], **settings: Any) -> ServingStore:
    values = {"serving_table": "s", "items_table": "i"} | settings
    return ServingStore(ServingSettings(**values), client, lambda: None, clock=lambda: now[0])  # type: ignore[arg-type]


def test_titles_are_fetched_once_then_cached_until_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recsys.serving.store.time.sleep", lambda s: None)
    client, now = FakeDynamoDB(unprocessed_rounds=1), [0.0]
    s = store(client, now, metadata_cache_seconds=60.0)
    info = s.item_info(["x", "y", "x"])
    assert (info["x"].title, info["y"].categories) == ("X", ("a", "b"))
    assert client.batch_calls == [["x", "y"], ["x", "y"]]  # unprocessed keys asked again
    s.item_info(["x"])
    assert len(client.batch_calls) == 2  # cached
    now[0] = 61.0
    s.item_info(["x"])
    assert client.batch_calls[-1] == ["x"]


def test_keys_still_unprocessed_are_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recsys.serving.store.time.sleep", lambda s: None)
    with pytest.raises(UnavailableError, match="items table is busy"):
        store(FakeDynamoDB(unprocessed_rounds=100), [0.0]).item_info(["x"])


def test_without_an_items_table_answers_carry_no_titles() -> None:
    client = FakeDynamoDB()
    info = store(client, [0.0], items_table="").item_info(["x"])
    assert (info["x"].title, info["x"].categories, client.batch_calls) == (None, (), [])
