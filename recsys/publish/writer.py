"""Bulk writes: BatchWriteItem, 25 items a request, a bounded number of requests in flight, unprocessed
items retried with exponential backoff and full jitter.

botocore retries whole requests that fail (throttling exceptions, 5xx); DynamoDB can also accept a
request but leave some items unprocessed (partial throttling), which only the caller can retry. A batch
still unprocessed after `max_batch_attempts` rounds stops the load with an error: the publish is then
interrupted and the live version stays as it was.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from recsys.publish.settings import PublishSettings

BATCH_ITEMS = 25  # DynamoDB's limit per BatchWriteItem
Item = dict[str, Any]


class LoadError(RuntimeError):
    """Items could not be written (still unprocessed after every retry, or a request failed)."""


class BatchWriter:
    def __init__(
        self,
        dynamodb: Any,
        settings: PublishSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = settings.serving_table
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.requests = 0  # BatchWriteItem calls made, retries included
        self.retried_items = 0

    def write(self, items: Iterable[Item]) -> int:
        """Write every item; returns how many. Raises LoadError (or the client's error) on failure."""
        written = 0
        in_flight: set[Future[None]] = set()
        limit = 2 * self.settings.concurrency  # queued batches: bounded memory whatever the input size
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="publish") as pool:
            try:
                for batch in _batches(items):
                    if len(in_flight) >= limit:
                        done, in_flight = _wait(in_flight)
                        for future in done:
                            future.result()  # the first failure stops the load
                    in_flight.add(pool.submit(self._write_batch, batch))
                    written += len(batch)
                for future in in_flight:
                    future.result()
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return written

    def _write_batch(self, batch: list[Item]) -> None:
        requests = [{"PutRequest": {"Item": item}} for item in batch]
        for attempt in range(self.settings.max_batch_attempts):
            response = self.dynamodb.batch_write_item(RequestItems={self.table: requests})
            requests = response.get("UnprocessedItems", {}).get(self.table, [])
            with self._lock:
                self.requests += 1
                self.retried_items += len(requests)
            if not requests:
                return
            if attempt + 1 < self.settings.max_batch_attempts:
                self._sleep(self._backoff(attempt))
        raise LoadError(
            f"{len(requests)} item(s) still unprocessed after {self.settings.max_batch_attempts} "
            f"BatchWriteItem attempts (table {self.table} is throttling)"
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**attempt)
        with self._lock:
            return self._rng.uniform(0, ceiling)


def _batches(items: Iterable[Item]) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH_ITEMS:
            yield batch
            batch = []
    if batch:
        yield batch


def _wait(futures: set[Future[None]]) -> tuple[set[Future[None]], set[Future[None]]]:
    done, pending = wait(futures, return_when=FIRST_COMPLETED)
    return done, pending
