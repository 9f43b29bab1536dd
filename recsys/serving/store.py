"""What the API reads, and from where: the serving table, the items table, the recent-events table, S3.

Clients are botocore low-level clients (boto3.client); tests and benchmarks pass fakes with the same
methods. Caches live per container (per `ServingStore`):

- the live pointer, for `cache_seconds` (a publish or rollback reaches every container within that time);
- per version (versions never change once complete): the popularity list and the item vectors;
- item titles and categories, for `metadata_cache_seconds`, at most `metadata_cache_size` items.

DynamoDB throttling is retried by botocore (standard mode, `dynamodb_max_attempts`); what still fails
becomes `UnavailableError` (503 with Retry-After). Fold-in is best effort: if the vectors cannot be read, the
answer is served without it and the failure is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from recsys import contracts
from recsys.serving import table
from recsys.serving.settings import ServingSettings
from recsys.serving.table import LivePointer, ScoredList
from recsys.serving.validation import UnavailableError

if TYPE_CHECKING:
    from recsys.serving.foldin import ItemVectors

logger = logging.getLogger(__name__)

# Error codes that mean "busy, try again": after botocore's own retries they become a 503.
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "503",
        "500",
    }
)
METADATA_BATCH = 100  # BatchGetItem's limit, and MAX_TOP_K
METADATA_ATTEMPTS = 4  # BatchGetItem rounds for unprocessed keys


class DynamoDBClient(Protocol):
    def get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def query(self, **kwargs: Any) -> dict[str, Any]: ...
    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]: ...
    def scan(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RecentEvent:
    item_id: str
    at_ms: int  # from the sort key "<13-digit epoch ms>#<event id>"


@dataclass(frozen=True)
class ItemInfo:
    title: str | None
    categories: tuple[str, ...]


NO_INFO = ItemInfo(None, ())


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, connection failures and timeouts: worth a retry later, not a server bug."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        ClientError,
        HTTPClientError,  # connection closed, read timeout, broken response stream
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError  # endpoint, connect timeout, proxy

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(error.get("Code")) in TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
    return isinstance(exc, HTTPClientError | BotoConnectionError)


@contextmanager
def transient_as_unavailable(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            logger.warning("%s failed after retries: %s", what, exc)
            raise UnavailableError(f"{what} is busy or unreachable; retry shortly", retry_after_s=1) from exc
        raise


class _Expiring:
    """One cached value with an expiry time (thread-safe enough: a race only costs one extra read)."""

    def __init__(self) -> None:
        self.value: Any = None
        self.until = 0.0


class ServingStore:
    def __init__(
        self,
        settings: ServingSettings,
        dynamodb: DynamoDBClient,
        s3: Callable[[], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.dynamodb = dynamodb
        self._s3 = s3  # made on first use: only the fold-in path needs S3
        self._clock = clock
        self._live = _Expiring()
        self._popular: dict[str, ScoredList] = {}
        self._vectors: dict[str, tuple[float, ItemVectors | None]] = {}
        self._metadata: dict[str, tuple[float, ItemInfo]] = {}
        self._lock = threading.Lock()

    # --- the serving table ---------------------------------------------------------------------------

    def live(self) -> LivePointer | None:
        """The live pointer (None before the first publish), re-read every `cache_seconds`."""
        now = self._clock()
        if now < self._live.until:
            return self._live.value  # type: ignore[no-any-return]
        item = self._get(table.LIVE_KEY)
        live = table.decode_live(item) if item else None
        self._live.value, self._live.until = live, now + self.settings.cache_seconds
        return live

    def user_list(self, version: str, user_id: str) -> ScoredList | None:
        item = self._get(table.user_key(version, user_id))
        return table.decode_list(item) if item else None

    def similar_list(self, version: str, item_id: str) -> ScoredList | None:
        item = self._get(table.item_key(version, item_id))
        return table.decode_list(item) if item else None

    def popular_list(self, version: str) -> ScoredList:
        cached = self._popular.get(version)
        if cached is None:
            item = self._get(table.popular_key(version))
            cached = table.decode_list(item) if item else ScoredList((), ())
            with self._lock:
                if len(self._popular) > 4:  # a container sees few versions; keep the newest ones
                    self._popular.clear()
                self._popular[version] = cached
        return cached

    def _get(self, pk: str) -> dict[str, Any] | None:
        with transient_as_unavailable("the serving table"):
            response = self.dynamodb.get_item(TableName=self.settings.serving_table, Key=table.key(pk))
        item: dict[str, Any] | None = response.get("Item")
        return item

    # --- recent events -------------------------------------------------------------------------------

    def recent_events(self, user_id: str) -> list[RecentEvent]:
        """The user's newest events, newest first (empty without a recent-events table)."""
        if not self.settings.recent_events_table:
            return []
        with transient_as_unavailable("the recent-events table"):
            response = self.dynamodb.query(
                TableName=self.settings.recent_events_table,
                KeyConditionExpression="#u = :u",
                ExpressionAttributeNames={
                    "#u": contracts.RECENT_EVENTS_PARTITION_KEY,
                    "#k": contracts.RECENT_EVENTS_SORT_KEY,
                    "#i": "item_id",
                },
                ExpressionAttributeValues={":u": {"S": user_id}},
                ProjectionExpression="#k, #i",
                ScanIndexForward=False,
                Limit=self.settings.recent_events_limit,
            )
        events = []
        for item in response.get("Items", []):
            sort_key = item.get(contracts.RECENT_EVENTS_SORT_KEY, {}).get("S", "")
            item_id = item.get("item_id", {}).get("S")
            stamp = sort_key.split("#", 1)[0]
            if item_id and stamp.isdigit():
                events.append(RecentEvent(item_id, int(stamp)))
        return events

    # --- the items table (titles, categories) --------------------------------------------------------

    def item_info(self, item_ids: list[str]) -> dict[str, ItemInfo]:
        """Title and categories of each id (NO_INFO for ids the catalog does not have)."""
        if not self.settings.items_table or not item_ids:
            return dict.fromkeys(item_ids, NO_INFO)
        now = self._clock()
        found: dict[str, ItemInfo] = {}
        wanted = []
        for item_id in dict.fromkeys(item_ids):
            cached = self._metadata.get(item_id)
            if cached is not None and cached[0] > now:
                found[item_id] = cached[1]
            else:
                wanted.append(item_id)
        for start in range(0, len(wanted), METADATA_BATCH):
            found.update(self._fetch_info(wanted[start : start + METADATA_BATCH]))
        if wanted and self.settings.metadata_cache_size:
            until = now + self.settings.metadata_cache_seconds
            with self._lock:
                if len(self._metadata) + len(wanted) > self.settings.metadata_cache_size:
                    self._metadata.clear()
                for item_id in wanted:
                    self._metadata[item_id] = (until, found[item_id])
        return found

    def _fetch_info(self, item_ids: list[str]) -> dict[str, ItemInfo]:
        name = self.settings.items_table
        found = dict.fromkeys(item_ids, NO_INFO)
        request: dict[str, Any] = {
            name: {
                "Keys": [{contracts.ITEMS_PARTITION_KEY: {"S": i}} for i in item_ids],
                "ProjectionExpression": "#i, #t, #c",
                "ExpressionAttributeNames": {
                    "#i": contracts.ITEMS_PARTITION_KEY,
                    "#t": "title",
                    "#c": "categories",
                },
            }
        }
        for attempt in range(METADATA_ATTEMPTS):
            with transient_as_unavailable("the items table"):
                response = self.dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(name, []):
                found[item[contracts.ITEMS_PARTITION_KEY]["S"]] = decode_item_info(item)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(0.02 * 2**attempt)
        raise UnavailableError("the items table is busy; retry shortly", retry_after_s=1)

    def catalog_sample(self, k: int) -> list[str]:
        """Up to k catalog item ids from one bounded read (for answers before any model is published)."""
        if not self.settings.items_table:
            return []
        with transient_as_unavailable("the items table"):
            response = self.dynamodb.scan(
                TableName=self.settings.items_table,
                Limit=k,
                ProjectionExpression="#i",
                ExpressionAttributeNames={"#i": contracts.ITEMS_PARTITION_KEY},
            )
        return sorted(item[contracts.ITEMS_PARTITION_KEY]["S"] for item in response.get("Items", []))

    # --- item vectors (fold-in) ----------------------------------------------------------------------

    def item_vectors(self, uri: str) -> ItemVectors | None:
        """The vectors at an s3:// URI, loaded once per container; None (logged) if they cannot be read."""
        now = self._clock()
        cached = self._vectors.get(uri)
        if cached is not None and (cached[1] is not None or cached[0] > now):
            return cached[1]
        vectors = None
        try:
            vectors = self._load_vectors(uri)
        except Exception:
            logger.exception("item vectors %s unavailable; answering without fold-in", uri)
        with self._lock:
            if vectors is not None:
                self._vectors = {
                    k: v for k, v in self._vectors.items() if v[1] is None
                }  # one model at a time
            self._vectors[uri] = (now + self.settings.cache_seconds, vectors)  # failures retried after this
        return vectors

    def _load_vectors(self, uri: str) -> ItemVectors:
        from recsys.serving.foldin import ItemVectors

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket or not key:
            raise ValueError(f"item vectors URI {uri!r} is not s3://bucket/key")
        body = self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        return ItemVectors.from_npz(body, uri)


def decode_item_info(item: dict[str, Any]) -> ItemInfo:
    title = item.get("title", {}).get("S")
    raw = item.get("categories", {})
    if "L" in raw:
        categories = tuple(v["S"] for v in raw["L"] if "S" in v)
    else:
        categories = tuple(sorted(raw.get("SS", ())))
    return ItemInfo(title, categories)
