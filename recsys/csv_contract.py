"""The CSV contract (DESIGN.md §4): which columns each kind of file has, and how headers map to them.

Header names are matched case-insensitively after trimming spaces; MovieLens names are accepted as
aliases, so `ratings.csv` and `movies.csv` work as they come.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CATALOG = "catalog"
    TRANSACTIONS = "transactions"


# Canonical column names.
USER_ID = "user_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
RATING = "rating"
EVENT_TYPE = "event_type"
TITLE = "title"
CATEGORIES = "categories"

CATEGORY_SEPARATOR = "|"
MAX_ID_LENGTH = 256
MAX_EVENT_TYPE_LENGTH = 64

REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.TRANSACTIONS: (USER_ID, ITEM_ID, TIMESTAMP),
    Kind.CATALOG: (ITEM_ID,),
}
OPTIONAL: dict[Kind, tuple[str, ...]] = {
    Kind.TRANSACTIONS: (RATING, EVENT_TYPE),
    Kind.CATALOG: (TITLE, CATEGORIES),
}

# Lower-cased alias -> canonical name. Canonical names map to themselves.
_ALIASES: dict[str, str] = {
    "userid": USER_ID,
    "movieid": ITEM_ID,
    "itemid": ITEM_ID,
    "genres": CATEGORIES,
}


def canonical_name(header_name: str) -> str:
    """The canonical name for a header cell: trimmed, lower-cased, aliases resolved."""
    name = header_name.strip().lower()
    return _ALIASES.get(name, name)


@dataclass(frozen=True)
class HeaderMapping:
    """Where each canonical column sits in a file's records."""

    kind: Kind
    names: tuple[str, ...]  # canonical name per position, as in the file
    original: tuple[str, ...]  # the header cells as written

    def index(self, canonical: str) -> int | None:
        try:
            return self.names.index(canonical)
        except ValueError:
            return None

    @property
    def known(self) -> tuple[str, ...]:
        return REQUIRED[self.kind] + OPTIONAL[self.kind]

    @property
    def extra(self) -> tuple[str, ...]:
        """Columns outside the contract: kept for catalogs, ignored for transactions."""
        return tuple(n for n in self.names if n not in self.known)


class HeaderError(ValueError):
    """The header cannot be mapped to the contract (the whole file is unusable)."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


def map_header(cells: list[str], kind: Kind) -> HeaderMapping:
    """Map header cells to canonical names, or raise HeaderError naming the problem."""
    names = tuple(canonical_name(c) for c in cells)
    for position, (cell, name) in enumerate(zip(cells, names, strict=True), start=1):
        if not name:
            raise HeaderError(f"header cell {position} is empty")
        first = names.index(name) + 1
        if first != position:
            same = f"{cell!r}" if cells[first - 1] == cell else f"{cells[first - 1]!r} and {cell!r}"
            raise HeaderError(
                f"duplicate column: {same} at positions {first} and {position} (both mean {name!r})",
                column=cell,
            )
    missing = [c for c in REQUIRED[kind] if c not in names]
    if missing:
        raise HeaderError(
            f"missing required column(s) for {kind.value}: {', '.join(missing)} "
            f"(header is: {','.join(cells)})",
            column=missing[0],
        )
    return HeaderMapping(kind=kind, names=names, original=tuple(cells))
