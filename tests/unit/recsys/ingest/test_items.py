"""Catalog items into the items table: BatchWriteItem in chunks of 25, unprocessed items retried with
backoff and then an error (never dropped), duplicates within a chunk, and the hook in process_object."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from recsys import contracts
from recsys.ingest.batch_write import Backoff, BatchWriter, UnprocessedItemsError, write_items
from recsys.ingest.items import catalog_items_hook, item_record
from recsys.ingest.manifest import Status
from recsys.ingest.settings import Policy

if TYPE_CHECKING:
    from tests.unit.recsys.ingest.conftest import Clients, Lake

ITEMS = "recsys-test-items"
KEY = contracts.ITEMS_PARTITION_KEY
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class StubClient:
    """A DynamoDB client at its boundary: records each BatchWriteItem request and answers with some of
    its items unprocessed for the first `flaky_calls` calls (or for ever)."""

    def __init__(self, *, flaky_calls: int = 0, keep: int = 2, real: Any = None) -> None:
        self.flaky_calls = flaky_calls
        self.keep = keep  # items left unprocessed per flaky answer
        self.real = real
        self.requests: list[list[dict[str, Any]]] = []

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        [(table, requests)] = kwargs["RequestItems"].items()
        self.requests.append(requests)
        keys = [r["PutRequest"]["Item"][KEY]["S"] for r in requests]
        assert len(keys) <= 25, "DynamoDB refuses more than 25 items per request"
        assert len(set(keys)) == len(keys), "DynamoDB refuses a request with duplicate keys"
        if len(self.requests) <= self.flaky_calls:
            done, left = requests[: -self.keep], requests[-self.keep :]
            if self.real is not None and done:
                self.real.batch_write_item(RequestItems={table: done})
            return {"UnprocessedItems": {table: left}}
        if self.real is not None:
            return dict(self.real.batch_write_item(**kwargs))
        return {"UnprocessedItems": {}}


def no_sleep_backoff(attempts: int = 8) -> tuple[Backoff, list[float]]:
    slept: list[float] = []
    return Backoff(attempts=attempts, base_s=0.1, cap_s=1.0, sleep=slept.append, rand=lambda: 1.0), slept


def items(n: int) -> list[dict[str, Any]]:
    return [{KEY: f"i{k}", "title": f"Title {k}", "categories": ["A", "B"], "score": 0.5} for k in range(n)]


def test_items_go_in_chunks_of_25() -> None:
    client = StubClient()
    backoff, _ = no_sleep_backoff()

    assert write_items(client, ITEMS, items(60), key=[KEY], backoff=backoff) == 60

    assert [len(r) for r in client.requests] == [25, 25, 10]
    first = client.requests[0][0]["PutRequest"]["Item"]
    assert first == {
        KEY: {"S": "i0"},
        "title": {"S": "Title 0"},
        "categories": {"L": [{"S": "A"}, {"S": "B"}]},
        "score": {"N": "0.5"},
    }


def test_unprocessed_items_are_retried_with_exponential_backoff() -> None:
    client = StubClient(flaky_calls=3, keep=4)
    backoff, slept = no_sleep_backoff()

    write_items(client, ITEMS, items(25), key=[KEY], backoff=backoff)

    assert [len(r) for r in client.requests] == [25, 4, 4, 4]  # only the unprocessed ones are resent
    assert slept == [0.1, 0.2, 0.4]  # rand()=1: the full exponential bound, jitter below it


def test_jitter_and_cap_bound_each_pause() -> None:
    slept: list[float] = []
    backoff = Backoff(base_s=0.1, cap_s=0.3, sleep=slept.append, rand=lambda: 0.5)
    for retry in range(1, 5):
        backoff.pause(retry)
    assert slept == pytest.approx([0.05, 0.1, 0.15, 0.15])


def test_items_that_stay_unprocessed_raise_instead_of_being_dropped() -> None:
    client = StubClient(flaky_calls=10**6, keep=3)
    backoff, slept = no_sleep_backoff(attempts=5)

    with pytest.raises(UnprocessedItemsError, match="3 item") as raised:
        write_items(client, ITEMS, items(10), key=[KEY], backoff=backoff)

    assert raised.value.attempts == 5
    assert len(client.requests) == 5
    assert len(slept) == 4


def test_duplicate_keys_in_a_chunk_keep_the_last_item() -> None:
    client = StubClient()
    batch = [{KEY: "a", "title": "first"}, {KEY: "b", "title": "b"}, {KEY: "a", "title": "second"}]

    written = write_items(client, ITEMS, batch, key=[KEY], backoff=no_sleep_backoff()[0])

    assert written == 2
    [request] = client.requests
    titles = {r["PutRequest"]["Item"][KEY]["S"]: r["PutRequest"]["Item"]["title"]["S"] for r in request}
    assert titles == {"a": "second", "b": "b"}


def test_a_chunk_holds_25_distinct_keys() -> None:
    client = StubClient()
    writer = BatchWriter(client, ITEMS, key=[KEY], backoff=no_sleep_backoff()[0])
    for k in range(40):
        writer.put({KEY: f"i{k % 30}", "n": k})
    writer.flush()
    assert [len(r) for r in client.requests] == [25, 15]  # the StubClient asserts keys are distinct


@pytest.mark.parametrize(
    ("title", "categories", "expected"),
    [
        (
            "Toy Story (1995)",
            "Adventure|Animation|Children",
            {"title": "Toy Story (1995)", "categories": ["Adventure", "Animation", "Children"]},
        ),
        ("", "", {"categories": []}),
        (None, None, {}),
        ("Heat", " Action | |Crime", {"title": "Heat", "categories": ["Action", "Crime"]}),
    ],
)
def test_item_record(title: str | None, categories: str | None, expected: dict[str, Any]) -> None:
    record = item_record(
        "1", title, categories, updated_at="t", source_key="catalog/m.csv", source_version="v"
    )
    assert record == {
        KEY: "1",
        "updated_at": "t",
        "source_key": "catalog/m.csv",
        "source_version": "v",
        **expected,
    }


# --- through process_object, against moto ------------------------------------------------------------


@pytest.fixture
def dynamodb(lake: Lake, clients: Clients) -> Any:
    """A low-level DynamoDB client (the Table resource's own client re-types values) and the items table."""
    dynamodb = clients.dynamodb
    dynamodb.create_table(
        TableName=ITEMS,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def stored_items(dynamodb: Any) -> dict[str, dict[str, Any]]:
    found = dynamodb.scan(TableName=ITEMS)["Items"]
    des = TypeDeserializer()
    return {i[KEY]["S"]: {k: des.deserialize(v) for k, v in i.items()} for i in found}


CATALOG = (
    b"movieId,title,genres,year\n"
    b"1,Toy Story (1995),Adventure|Animation|Children,1995\n"
    b'2,"Heat, the movie",Action|Crime,1995\n'
    b",Missing id,Drama,1990\n"
    b"3,Casino,Crime|Drama,1995\n"
)


def test_catalog_rows_land_in_the_items_table(lake: Lake, dynamodb: Any) -> None:
    obj = lake.upload("catalog/movies.csv", CATALOG)

    result = lake.ingest(obj, valid_rows_hook=catalog_items_hook(dynamodb, ITEMS, now=lambda: NOW))

    assert result.status is Status.PARTIAL
    stored = stored_items(dynamodb)
    assert set(stored) == {"1", "2", "3"}  # the row without an id is quarantined, not written
    assert stored["2"] == {
        KEY: "2",
        "title": "Heat, the movie",
        "categories": ["Action", "Crime"],
        "updated_at": "2026-11-28T12:00:00.000+00:00",
        "source_key": "catalog/movies.csv",
        "source_version": obj.version_id,
    }


def test_many_items_with_unprocessed_answers_all_land(lake: Lake, dynamodb: Any) -> None:
    rows = b"".join(f"{k},Movie {k},Drama\n".encode() for k in range(1, 131))
    obj = lake.upload("catalog/big.csv", b"item_id,title,categories\n" + rows)
    flaky = StubClient(flaky_calls=4, keep=5, real=dynamodb)
    backoff, slept = no_sleep_backoff()

    result = lake.ingest(obj, valid_rows_hook=catalog_items_hook(flaky, ITEMS, backoff=backoff))

    assert result.status is Status.ACCEPTED
    assert len(stored_items(dynamodb)) == 130
    assert len(slept) == 4


@pytest.mark.usefixtures("dynamodb")
def test_items_that_keep_failing_fail_the_object_so_it_is_retried(lake: Lake) -> None:
    obj = lake.upload("catalog/down.csv", CATALOG)
    failing = StubClient(flaky_calls=10**6, keep=1)

    with pytest.raises(UnprocessedItemsError):
        lake.ingest(obj, valid_rows_hook=catalog_items_hook(failing, ITEMS, backoff=no_sleep_backoff(3)[0]))

    assert lake.manifest_items() == []  # no outcome recorded: the message goes back to the queue
    assert lake.keys("recsys-test-curated") == []
    assert lake.open_uploads() == []


def test_a_file_rejected_whole_writes_no_items(lake: Lake, dynamodb: Any) -> None:
    obj = lake.upload("catalog/strict.csv", CATALOG)
    settings = replace(lake.settings, policy=Policy.REJECT_FILE)

    result = lake.ingest(obj, settings, valid_rows_hook=catalog_items_hook(dynamodb, ITEMS))

    assert result.status is Status.REJECTED
    assert stored_items(dynamodb) == {}  # the buffered rows are dropped with the file


def test_transactions_files_write_no_items(lake: Lake) -> None:
    calls = StubClient()
    obj = lake.upload("transactions/t.csv", b"user_id,item_id,timestamp\nu1,i1,1537799250\n")
    assert lake.ingest(obj, valid_rows_hook=catalog_items_hook(calls, ITEMS)).status is Status.ACCEPTED
    assert calls.requests == []
