"""The two forms an accepted event is stored in.

- Firehose record: one CSV line, no header, columns in the canonical transactions order
  (`recsys.ingest.layout.STREAM_COLUMNS`: user_id,item_id,timestamp,rating,event_type), quoted by the csv
  module. Firehose concatenates records into objects under `contracts.EVENTS_STREAM_PREFIX`, which the
  ingest Lambda reads as headerless transactions CSV.
- Recent-events item: partition `user_id`, sort key `<13-digit epoch ms>#<event id>`, TTL attribute
  `expires_at` (epoch seconds, RECENT_EVENTS_TTL_DAYS after it was received).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from recsys import contracts
from recsys.csv_contract import EVENT_TYPE, ITEM_ID, RATING, TIMESTAMP, USER_ID
from recsys.events.model import EVENT_ID, Event
from recsys.ingest.layout import STREAM_COLUMNS

# Attributes of a recent-events item besides the keys (serving reads these).
TIMESTAMP_MS = "timestamp_ms"
RECEIVED_AT = "received_at"  # epoch seconds

TTL_SECONDS = contracts.RECENT_EVENTS_TTL_DAYS * 24 * 3600


def timestamp_text(ms: int) -> str:
    """Epoch seconds as the CSV contract reads them: whole seconds, or with three decimals."""
    seconds, rest = divmod(ms, 1000)
    return str(seconds) if not rest else f"{seconds}.{rest:03d}"


def csv_record(event: Event) -> bytes:
    """One line, `\\n`-terminated, UTF-8."""
    values = {
        USER_ID: event.user_id,
        ITEM_ID: event.item_id,
        TIMESTAMP: timestamp_text(event.timestamp_ms),
        RATING: "" if event.rating is None else repr(event.rating),
        EVENT_TYPE: event.event_type,
    }
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values[c] for c in STREAM_COLUMNS])
    return out.getvalue().encode("utf-8")


def recent_item(event: Event, *, received_at: int) -> dict[str, Any]:
    """The recent-events item (plain values; `recsys.ingest.batch_write` types them)."""
    return {
        contracts.RECENT_EVENTS_PARTITION_KEY: event.user_id,
        contracts.RECENT_EVENTS_SORT_KEY: event.event_key,
        ITEM_ID: event.item_id,
        EVENT_TYPE: event.event_type,
        TIMESTAMP_MS: event.timestamp_ms,
        RATING: event.rating,  # None: no attribute
        EVENT_ID: event.event_id,
        RECEIVED_AT: received_at,
        contracts.RECENT_EVENTS_TTL_ATTRIBUTE: received_at + TTL_SECONDS,
    }
