"""The serving table's layout: keys, and how lists, version records and the live pointer are stored.

Publish writes with these functions and the API reads with them, so the two cannot drift apart. Items
are in DynamoDB's wire format (what the low-level client sends and returns): the API decodes only the
few attributes it needs, which keeps a request's CPU time well under a millisecond.

A list is two attributes, `item_ids` (L of S) and `scores` (L of N, 6 significant digits): 100 ids of
256 characters make an item of about 27 KB, far below DynamoDB's 400 KB limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recsys import contracts

PK = contracts.SERVING_PARTITION_KEY
TTL = contracts.SERVING_TTL_ATTRIBUTE
LIVE_KEY = contracts.SERVING_LIVE_KEY
VERSIONS_KEY = contracts.SERVING_VERSIONS_KEY
IDS = "item_ids"
SCORES = "scores"
SCORE_DIGITS = 6

# Version ids become key prefixes: no "#", nothing a reader could confuse with another key.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

# Version record states. A version is served only once complete and pointed to by the live pointer.
LOADING = "loading"
COMPLETE = "complete"
RETIRED = "retired"

Item = dict[str, Any]  # one item in DynamoDB's wire format


class VersionError(ValueError):
    """A version id that cannot be used as a key prefix."""


RESERVED_VERSIONS = frozenset({"version", LIVE_KEY, VERSIONS_KEY})  # would collide with other keys


def check_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version) or version in RESERVED_VERSIONS:
        raise VersionError(
            f"model version {version!r} is not usable: 1-100 characters from A-Z a-z 0-9 . _ : -, "
            "starting with a letter or digit, and not one of " + ", ".join(sorted(RESERVED_VERSIONS))
        )
    return version


def user_key(version: str, user_id: str) -> str:
    return f"{version}#u#{user_id}"


def item_key(version: str, item_id: str) -> str:
    return f"{version}#i#{item_id}"


def popular_key(version: str) -> str:
    return f"{version}#popular"


def version_key(version: str) -> str:
    return f"version#{version}"


def key(pk: str) -> Item:
    return {PK: {"S": pk}}


def number(value: float) -> str:
    """A finite float as a DynamoDB number: 6 significant digits, plain notation (no exponent)."""
    text = f"{value:.{SCORE_DIGITS}g}"
    if "e" in text or "n" in text:  # an exponent, or inf / nan (rare: the slow path only for them)
        if not math.isfinite(value):
            raise ValueError(f"score {value!r} is not a finite number")
        return format(Decimal(text), "f")
    return text


@dataclass(frozen=True)
class ScoredList:
    """Item ids, best first, with their scores."""

    item_ids: tuple[str, ...]
    scores: tuple[float, ...]


def encode_list(pk: str, item_ids: list[str], scores: list[float]) -> Item:
    texts = [f"{s:.{SCORE_DIGITS}g}" for s in scores]
    if any("e" in t or "n" in t for t in texts):  # exponents, inf, nan: the careful path
        texts = [number(s) for s in scores]
    return {
        PK: {"S": pk},
        IDS: {"L": [{"S": i} for i in item_ids]},
        SCORES: {"L": [{"N": t} for t in texts]},
    }


def decode_list(item: Item) -> ScoredList:
    return ScoredList(
        tuple(v["S"] for v in item[IDS]["L"]),
        tuple(float(v["N"]) for v in item[SCORES]["L"]),
    )


@dataclass(frozen=True)
class LivePointer:
    """What the API follows. `model_created_ms`: events newer than this are unknown to the model."""

    version: str
    previous_version: str | None
    model_created_ms: int
    item_vectors_uri: str | None
    published_at: str


def encode_live(live: LivePointer) -> Item:
    item: Item = {
        PK: {"S": LIVE_KEY},
        "version": {"S": live.version},
        "model_created_ms": {"N": str(live.model_created_ms)},
        "published_at": {"S": live.published_at},
    }
    if live.previous_version:
        item["previous_version"] = {"S": live.previous_version}
    if live.item_vectors_uri:
        item["item_vectors_uri"] = {"S": live.item_vectors_uri}
    return item


def decode_live(item: Item) -> LivePointer:
    return LivePointer(
        version=item["version"]["S"],
        previous_version=item.get("previous_version", {}).get("S"),
        model_created_ms=int(item["model_created_ms"]["N"]),
        item_vectors_uri=item.get("item_vectors_uri", {}).get("S"),
        published_at=item["published_at"]["S"],
    )


@dataclass(frozen=True)
class VersionRecord:
    """One model version's record: its state, where it came from, what was loaded."""

    version: str
    status: str
    model_kind: str
    created_at: str
    model_created_ms: int
    source: str
    item_vectors_uri: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    updated_at: str = ""
    expires_at: int | None = None  # epoch seconds, once retired


def encode_version(record: VersionRecord) -> Item:
    item: Item = {
        PK: {"S": version_key(record.version)},
        "version": {"S": record.version},
        "status": {"S": record.status},
        "model_kind": {"S": record.model_kind},
        "created_at": {"S": record.created_at},
        "model_created_ms": {"N": str(record.model_created_ms)},
        "source": {"S": record.source},
        "counts": {"M": {k: {"N": str(v)} for k, v in sorted(record.counts.items())}},
        "updated_at": {"S": record.updated_at},
    }
    if record.item_vectors_uri:
        item["item_vectors_uri"] = {"S": record.item_vectors_uri}
    if record.expires_at is not None:
        item[TTL] = {"N": str(record.expires_at)}
    return item


def decode_version(item: Item) -> VersionRecord:
    return VersionRecord(
        version=item["version"]["S"],
        status=item["status"]["S"],
        model_kind=item.get("model_kind", {}).get("S", ""),
        created_at=item.get("created_at", {}).get("S", ""),
        model_created_ms=int(item["model_created_ms"]["N"]),
        source=item.get("source", {}).get("S", ""),
        item_vectors_uri=item.get("item_vectors_uri", {}).get("S"),
        counts={k: int(v["N"]) for k, v in item.get("counts", {}).get("M", {}).items()},
        updated_at=item.get("updated_at", {}).get("S", ""),
        expires_at=int(item[TTL]["N"]) if TTL in item else None,
    )
