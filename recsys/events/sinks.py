"""Where accepted events go: the recent-events table (serving's real-time fold-in) and the Firehose
stream (the next training run). Both writes retry what the service reports as not done, with backoff, a
bounded number of times, then raise `SinkError`: the caller answers 503 and the client sends again.

boto3 is imported when the first client is made, not with this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from recsys import contracts
from recsys.events.model import Event
from recsys.events.records import csv_record, recent_item
from recsys.ingest.batch_write import Backoff, BatchWriteClient, UnprocessedItemsError, write_items

MAX_RECORDS_PER_CALL = 500  # PutRecordBatch: at most 500 records ...
MAX_BYTES_PER_CALL = 4 * 1000 * 1000  # ... and 4 MB per call
CLIENT_ATTEMPTS = 3  # botocore's own retries per call (an HTTP client is waiting)


class ConfigError(ValueError):
    """A setting of the events function is missing; the message names the environment variable."""


class SinkError(RuntimeError):
    """A write kept failing after its retries; nothing acknowledged may be assumed stored."""


class FirehoseClient(Protocol):
    def put_record_batch(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass
class EventSinks:
    """The recent-events table and the Firehose stream, with their clients (made on first use when not
    given: boto3 clients with standard retries and short timeouts)."""

    table_name: str
    stream_name: str
    dynamodb: BatchWriteClient | None = None  # a boto3 DynamoDB *client*
    firehose: FirehoseClient | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(attempts=5, base_s=0.05, cap_s=1.0))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EventSinks:
        return cls(
            table_name=_required(env, contracts.RECENT_EVENTS_TABLE_ENV),
            stream_name=_required(env, contracts.EVENTS_STREAM_ENV),
        )

    def dynamodb_client(self) -> BatchWriteClient:
        if self.dynamodb is None:
            self.dynamodb = _client("dynamodb")
        return self.dynamodb

    def firehose_client(self) -> FirehoseClient:
        if self.firehose is None:
            self.firehose = _client("firehose")
        return self.firehose

    def store_recent(self, events: Sequence[Event], *, received_at: int) -> None:
        """Put each event in the recent-events table (25 per request, unprocessed items retried)."""
        items = [recent_item(e, received_at=received_at) for e in events]
        key = (contracts.RECENT_EVENTS_PARTITION_KEY, contracts.RECENT_EVENTS_SORT_KEY)
        try:
            write_items(self.dynamodb_client(), self.table_name, items, key=key, backoff=self.backoff)
        except UnprocessedItemsError as exc:
            raise SinkError(f"recent-events table: {exc}") from exc

    def send_to_stream(self, events: Sequence[Event]) -> None:
        """PutRecordBatch of one CSV line per event; the records Firehose reports failed are sent again."""
        client = self.firehose_client()
        for chunk in _chunks([csv_record(e) for e in events]):
            pending = chunk
            for attempt in range(1, self.backoff.attempts + 1):
                if attempt > 1:
                    self.backoff.pause(attempt - 1)
                response = client.put_record_batch(
                    DeliveryStreamName=self.stream_name, Records=[{"Data": data} for data in pending]
                )
                if not response.get("FailedPutCount"):
                    break
                answers = response.get("RequestResponses", [])
                pending = [
                    data for data, answer in zip(pending, answers, strict=True) if answer.get("ErrorCode")
                ]
                if not pending:  # FailedPutCount without a failed record: nothing to resend
                    break
            else:
                raise SinkError(
                    f"Firehose stream {self.stream_name}: {len(pending)} record(s) still failing after "
                    f"{self.backoff.attempts} attempts"
                )


def _chunks(records: list[bytes]) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for record in records:
        if chunk and (len(chunk) == MAX_RECORDS_PER_CALL or size + len(record) > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += len(record)
    if chunk:
        yield chunk


def _client(service: str) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(
        retries={"mode": "standard", "total_max_attempts": CLIENT_ATTEMPTS},
        connect_timeout=2,
        read_timeout=5,
    )
    return boto3.client(service, config=config)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value
