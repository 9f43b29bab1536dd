"""BatchWriteItem in parallel: batches of 25, bounded requests in flight, unprocessed items retried."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from recsys.publish.settings import PublishSettings
from recsys.publish.writer import BatchWriter, LoadError


class FakeDynamoDB:
    """Leaves the last item of each request unprocessed `unprocessed_rounds` times, then takes all."""

    def __init__(self, unprocessed_rounds: int = 0, delay_s: float = 0.0) -> None:
        self.unprocessed_rounds = unprocessed_rounds
        self.delay_s = delay_s
        self.stored: list[str] = []
        self.sizes: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.rounds: dict[str, int] = {}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        [(table, requests)] = RequestItems.items()
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.sizes.append(len(requests))
        time.sleep(self.delay_s)
        keys = [r["PutRequest"]["Item"]["pk"]["S"] for r in requests]
        last = keys[-1]
        with self.lock:
            self.in_flight -= 1
            rounds = self.rounds.get(last, 0)
            if rounds < self.unprocessed_rounds:
                self.rounds[last] = rounds + 1
                self.stored += keys[:-1]
                return {"UnprocessedItems": {table: requests[-1:]}}
            self.stored += keys
        return {"UnprocessedItems": {}}


def items(n: int) -> list[dict[str, Any]]:
    return [{"pk": {"S": f"k{i}"}} for i in range(n)]


def settings(**kwargs: Any) -> PublishSettings:
    return PublishSettings(serving_table="t", **kwargs)


def test_items_go_in_batches_of_25_and_all_arrive() -> None:
    client = FakeDynamoDB()
    writer = BatchWriter(client, settings(concurrency=3))
    assert writer.write(items(101)) == 101
    assert sorted(client.sizes) == [1, 25, 25, 25, 25]
    assert sorted(client.stored) == sorted(f"k{i}" for i in range(101))
    assert writer.requests == 5


def test_requests_in_flight_never_exceed_the_concurrency() -> None:
    client = FakeDynamoDB(delay_s=0.01)
    BatchWriter(client, settings(concurrency=3)).write(items(25 * 12))
    assert 1 < client.max_in_flight <= 3


def test_unprocessed_items_are_retried_with_full_jitter_backoff() -> None:
    client = FakeDynamoDB(unprocessed_rounds=3)
    slept: list[float] = []
    writer = BatchWriter(
        client,
        settings(concurrency=1, backoff_base_s=0.1, backoff_cap_s=0.3),
        sleep=slept.append,
        rng=random.Random(7),
    )
    assert writer.write(items(25)) == 25
    assert sorted(client.stored) == sorted(f"k{i}" for i in range(25))
    assert writer.requests == 4
    assert writer.retried_items == 3
    assert len(slept) == 3
    assert all(0 <= s <= ceiling for s, ceiling in zip(slept, [0.1, 0.2, 0.3], strict=True))
    assert len(set(slept)) == 3  # jittered, not a fixed schedule


def test_items_still_unprocessed_after_every_attempt_stop_the_load() -> None:
    client = FakeDynamoDB(unprocessed_rounds=100)
    writer = BatchWriter(client, settings(max_batch_attempts=4, backoff_base_s=0.0), sleep=lambda s: None)
    with pytest.raises(LoadError, match="1 item\\(s\\) still unprocessed after 4 BatchWriteItem attempts"):
        writer.write(items(30))


def test_a_failing_request_stops_the_load_and_no_more_batches_are_sent() -> None:
    class Failing(FakeDynamoDB):
        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
            if len(self.sizes) >= 2:
                raise ConnectionError("down")
            return super().batch_write_item(RequestItems)

    client = Failing()
    with pytest.raises(ConnectionError):
        BatchWriter(client, settings(concurrency=1)).write(items(25 * 100))
    assert len(client.sizes) <= 2 + 2  # bounded queue: far fewer than the 100 batches
