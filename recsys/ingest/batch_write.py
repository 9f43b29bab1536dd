"""DynamoDB BatchWriteItem in chunks of 25, with the items DynamoDB leaves unprocessed retried.

BatchWriteItem succeeds even when it writes only part of a request (throttling, partition limits): the
rest comes back as `UnprocessedItems` and is the caller's to resend. Here it is resent with exponential
backoff and full jitter, a bounded number of times; then `UnprocessedItemsError` is raised, so the caller
fails (and its message or request is retried) instead of dropping items. botocore's own retries still
handle throttled or failed calls as a whole.

Items are plain Python values (str, int, float, bool, lists, dicts); they are serialised to DynamoDB's
typed form here, so callers need no boto3 resource. Only the standard library and botocore's light
`boto3.dynamodb.types` serialiser are imported.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Context, Inexact, Rounded
from typing import Any, Protocol

logger = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 25  # DynamoDB's limit per BatchWriteItem request
DEFAULT_ATTEMPTS = 8  # calls per chunk, the first included
BASE_DELAY_S = 0.05
MAX_DELAY_S = 5.0


class BatchWriteClient(Protocol):
    """The one call used: a boto3 DynamoDB *client* (low-level, typed attribute values)."""

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]: ...


class UnprocessedItemsError(RuntimeError):
    """DynamoDB kept leaving items unprocessed after every attempt; nothing was dropped silently."""

    def __init__(self, table: str, count: int, attempts: int) -> None:
        super().__init__(f"{count} item(s) still unprocessed in {table} after {attempts} attempts")
        self.table = table
        self.count = count
        self.attempts = attempts


class Backoff:
    """Exponential backoff with full jitter: attempt n sleeps uniform(0, min(cap, base * 2**n))."""

    def __init__(
        self,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        base_s: float = BASE_DELAY_S,
        cap_s: float = MAX_DELAY_S,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.base_s = base_s
        self.cap_s = cap_s
        self.sleep = sleep
        self.rand = rand

    def pause(self, retry: int) -> None:
        """Sleep before retry number `retry` (1 for the first retry)."""
        self.sleep(self.rand() * min(self.cap_s, self.base_s * 2 ** (retry - 1)))


def write_items(
    client: BatchWriteClient,
    table: str,
    items: Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str],
    backoff: Backoff | None = None,
) -> int:
    """Put every item, 25 per request; returns how many were sent (after de-duplication).

    Items with the same `key` attributes in one request are an error for DynamoDB: within each chunk
    the last one wins (as if written in order).
    """
    writer = BatchWriter(client, table, key=key, backoff=backoff)
    for item in items:
        writer.put(item)
    writer.flush()
    return writer.written


class BatchWriter:
    """Buffers puts and sends them in chunks of 25 distinct keys; `flush()` sends the rest."""

    def __init__(
        self, client: BatchWriteClient, table: str, *, key: Sequence[str], backoff: Backoff | None = None
    ) -> None:
        from boto3.dynamodb.types import TypeSerializer  # type: ignore[import-untyped]

        self.client = client
        self.table = table
        self.key = tuple(key)
        self.backoff = backoff or Backoff()
        self.written = 0
        self.retries = 0
        self._serializer = TypeSerializer()
        self._pending: dict[tuple[Any, ...], dict[str, Any]] = {}

    def put(self, item: Mapping[str, Any]) -> None:
        identity = tuple(item[k] for k in self.key)
        self._pending.pop(identity, None)  # last wins, and it moves to the end of the chunk
        self._pending[identity] = {k: self._serialize(v) for k, v in item.items() if v is not None}
        if len(self._pending) >= MAX_BATCH_ITEMS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        requests = [{"PutRequest": {"Item": item}} for item in self._pending.values()]
        self._pending = {}
        self._send(requests)
        self.written += len(requests)

    def _send(self, requests: list[dict[str, Any]]) -> None:
        pending = requests
        for attempt in range(1, self.backoff.attempts + 1):
            if attempt > 1:
                self.retries += 1
                self.backoff.pause(attempt - 1)
            response = self.client.batch_write_item(RequestItems={self.table: pending})
            pending = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if not pending:
                return
            logger.warning(
                "%d of %d item(s) unprocessed by %s (attempt %d of %d)",
                len(pending),
                len(requests),
                self.table,
                attempt,
                self.backoff.attempts,
            )
        raise UnprocessedItemsError(self.table, len(pending), self.backoff.attempts)

    def _serialize(self, value: Any) -> dict[str, Any]:
        return dict(self._serializer.serialize(_dynamo_value(value)))


_EXACT = Context(prec=38, traps=[Inexact, Rounded])


def _dynamo_value(value: Any) -> Any:
    """Floats become Decimals (DynamoDB numbers), via their shortest repr; containers recursively."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB cannot store {value!r}")
        return _EXACT.create_decimal(repr(value))
    if isinstance(value, list | tuple):
        return [_dynamo_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _dynamo_value(v) for k, v in value.items() if v is not None}
    return value
