"""Where things go: the kind of an upload from its key, and the keys of its curated and quarantine outputs.

Every output key is a function of the source key and version only, so processing a version again
overwrites its outputs instead of adding to them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

from recsys import contracts
from recsys.csv_contract import EVENT_TYPE, ITEM_ID, RATING, TIMESTAMP, USER_ID, Kind

_PREFIXES = {contracts.CATALOG_PREFIX: Kind.CATALOG, contracts.TRANSACTIONS_PREFIX: Kind.TRANSACTIONS}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 120  # keeps curated keys far below S3's 1,024-byte limit


def kind_for_key(key: str) -> Kind | None:
    """The kind of file an upload key holds, or None when the key is outside the ingest prefixes."""
    for prefix, kind in _PREFIXES.items():
        if key.startswith(prefix):
            return kind
    return None


def version_tag(version_id: str | None, etag: str | None) -> str:
    """What tells versions of one key apart: the version id, or the ETag where the bucket has none."""
    if version_id and version_id != "null":  # "null" is the version of a write made without versioning
        return version_id
    if etag:
        return "etag-" + etag.strip('"')
    raise ValueError("an object needs a version id or an ETag")


def safe_name(key: str) -> str:
    """A readable file name for a key: its path below the kind prefix, flattened, plus a short hash.

    The hash keeps two keys that flatten alike ("a/b.csv", "a_b.csv") apart.
    """
    kind = kind_for_key(key)
    relative = key[len(_prefix_of(kind)) :] if kind else key
    flat = _UNSAFE.sub("_", relative.replace("/", "__")).strip("_.") or "object"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return f"{flat[:MAX_NAME_CHARS]}-{digest}"


def curated_key(kind: Kind, ingest_date: date, key: str, version: str) -> str:
    """`curated/ingest/kind=<kind>/ingest_date=<YYYY-MM-DD>/<safe name>-<version>.parquet`."""
    tag = _UNSAFE.sub("_", version)
    return (
        f"{contracts.INGEST_CURATED_PREFIX}{contracts.INGEST_KIND_PARTITION}={kind.value}/"
        f"{contracts.INGEST_DATE_PARTITION}={ingest_date.isoformat()}/{safe_name(key)}-{tag}.parquet"
    )


def quarantine_key(key: str) -> str:
    """`quarantine/<original key>`: the header and the rejected records, or the whole file."""
    return contracts.QUARANTINE_PREFIX + key


def errors_key(key: str) -> str:
    """`quarantine/<original key>.errors.json`: the report of what was wrong."""
    return quarantine_key(key) + contracts.QUARANTINE_ERRORS_SUFFIX


def _prefix_of(kind: Kind | None) -> str:
    return next((p for p, k in _PREFIXES.items() if k is kind), "")


# Real-time events reach the ingest bucket through Firehose as headerless CSV records, one per line, in
# this column order (recsys/events writes them; process_object reads them with this header in front).
STREAM_COLUMNS = (USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_TYPE)
STREAM_HEADER = (",".join(STREAM_COLUMNS) + "\n").encode("ascii")


def is_event_stream(key: str) -> bool:
    """True for Firehose deliveries of real-time events (headerless transactions CSV)."""
    return key.startswith(contracts.EVENTS_STREAM_PREFIX)
