"""Catalog uploads also feed the items table that serving reads (titles and categories of items).

One DynamoDB item per catalog item id (partition key `contracts.ITEMS_PARTITION_KEY`), written whole with
BatchWriteItem while the file streams (`recsys.ingest.batch_write`: chunks of 25, unprocessed items
retried with backoff, then an error so the queue message is retried). Writing a version again rewrites
the same items, so a retry never duplicates anything.

Hooked into `process_object` as a per-batch hook: `catalog_items_hook(...)` returns the factory to pass
as its `valid_rows_hook`; transactions files get no hook.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from recsys import contracts
from recsys.csv_contract import CATEGORIES, CATEGORY_SEPARATOR, ITEM_ID, TITLE, Kind
from recsys.ingest.batch_write import Backoff, BatchWriteClient, BatchWriter
from recsys.ingest.events import ObjectRef

if TYPE_CHECKING:
    import pyarrow as pa

    from recsys.ingest.process import HookFactory

UPDATED_AT = "updated_at"
SOURCE_KEY = "source_key"
SOURCE_VERSION = "source_version"


def item_record(
    item_id: str,
    title: str | None,
    categories: str | None,
    *,
    updated_at: str,
    source_key: str,
    source_version: str,
) -> dict[str, Any]:
    """The items-table item for one catalog row. Absent or empty title → no `title` attribute; categories
    are split on '|' into a list (empty parts dropped); absent column → no `categories` attribute."""
    item: dict[str, Any] = {
        contracts.ITEMS_PARTITION_KEY: item_id,
        UPDATED_AT: updated_at,
        SOURCE_KEY: source_key,
        SOURCE_VERSION: source_version,
    }
    if title:
        item[TITLE] = title
    if categories is not None:
        item[CATEGORIES] = [c.strip() for c in categories.split(CATEGORY_SEPARATOR) if c.strip()]
    return item


class CatalogItemsHook:
    """Writes the accepted rows of one catalog version to the items table as they stream."""

    def __init__(self, writer: BatchWriter, *, source_key: str, source_version: str, updated_at: str) -> None:
        self.writer = writer
        self.source_key = source_key
        self.source_version = source_version
        self.updated_at = updated_at

    def add(self, rows: pa.Table) -> None:
        names = rows.column_names
        ids = rows.column(ITEM_ID).to_pylist()
        titles = rows.column(TITLE).to_pylist() if TITLE in names else [None] * len(ids)
        categories = rows.column(CATEGORIES).to_pylist() if CATEGORIES in names else [None] * len(ids)
        for item_id, title, cats in zip(ids, titles, categories, strict=True):
            self.writer.put(
                item_record(
                    item_id,
                    title,
                    cats,
                    updated_at=self.updated_at,
                    source_key=self.source_key,
                    source_version=self.source_version,
                )
            )

    def close(self, kept: bool) -> None:
        """Send what is buffered when the file's rows are kept; drop it when the file is rejected."""
        if kept:
            self.writer.flush()


def catalog_items_hook(
    client: BatchWriteClient,
    table: str,
    *,
    now: Callable[[], datetime] | None = None,
    backoff: Backoff | None = None,
) -> HookFactory:
    """The `valid_rows_hook` for `process_object`: catalog files write their items to `table`."""

    def factory(kind: Kind, ref: ObjectRef, version: str) -> CatalogItemsHook | None:
        if kind is not Kind.CATALOG:
            return None
        writer = BatchWriter(client, table, key=(contracts.ITEMS_PARTITION_KEY,), backoff=backoff)
        stamp = (now or _utc_now)().astimezone(UTC).isoformat(timespec="milliseconds")
        return CatalogItemsHook(writer, source_key=ref.key, source_version=version, updated_at=stamp)

    return factory


def _utc_now() -> datetime:
    return datetime.now(UTC)
