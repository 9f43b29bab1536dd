"""Which format a path holds, and which files to read: the "auto" in `load_interactions(fmt="auto")`.

Detection looks at file names in a directory and at the first line of a file, never at the whole file,
so it costs nothing on a 20M-row input.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from recsys.csv_contract import ITEM_ID, USER_ID, canonical_name
from recsys.loaders.errors import LoadError

MOVIELENS = "movielens"
CANONICAL = "canonical"
ML100K = "ml-100k"
AUTO = "auto"
FORMATS = (AUTO, MOVIELENS, ML100K, CANONICAL)

# Directory layouts, in the order "auto" tries them: format -> (ratings file, items file).
LAYOUTS: dict[str, tuple[str, str]] = {
    MOVIELENS: ("ratings.csv", "movies.csv"),
    ML100K: ("u.data", "u.item"),
    CANONICAL: ("transactions.csv", "catalog.csv"),
}
_TRIED = "tried formats: " + ", ".join(LAYOUTS)
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class Source:
    """What to read: the ratings file in `fmt`, and an items file (u.item when `items_ml100k`) or none."""

    fmt: str
    ratings: Path
    items: Path | None
    items_ml100k: bool


def _first_line(path: Path, encoding: str = "utf-8") -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise LoadError.wrap(path, error) from error
    text = head.decode(encoding, errors="replace").removeprefix("\ufeff")
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _is_u_data_line(line: str) -> bool:
    fields = line.split("\t")
    return len(fields) == 4 and all(f.strip().isdigit() for f in fields)


def _is_u_item_line(line: str) -> bool:
    fields = line.split("|")
    return len(fields) >= 6 and fields[0].isdigit() and all(f in ("0", "1") for f in fields[5:])


def detect_file(path: Path) -> str:
    """The format of one ratings file, from its first non-blank line."""
    line = _first_line(path)
    if not line:
        raise LoadError(path, f"the file is empty, so its format cannot be detected ({_TRIED})")
    if _is_u_data_line(line):
        return ML100K
    cells = next(csv.reader([line]))
    if {c.strip().lower() for c in cells} & {"userid", "movieid"}:
        return MOVIELENS
    if {USER_ID, ITEM_ID} <= {canonical_name(c) for c in cells}:
        return CANONICAL
    raise LoadError(
        path,
        "cannot tell the format: the first line is neither 4 tab-separated integers (ml-100k u.data) "
        "nor a CSV header with user and item columns (movielens: userId,movieId,rating,timestamp; canonical: "
        f"user_id,item_id,timestamp[,rating][,event_type]); {_TRIED}",
    )


def _is_u_item(path: Path) -> bool:
    return _is_u_item_line(_first_line(path, "latin-1"))


def resolve(ratings: str | Path, items: str | Path | None = None, fmt: str = AUTO) -> Source:
    """Pick the files and the format; a directory holds the standard file names of a format."""
    path = Path(ratings)
    if fmt not in FORMATS:
        raise LoadError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not path.exists():
        raise LoadError(path, "file not found")
    items_path = None if items is None else Path(items)
    if path.is_dir():
        candidates = [fmt] if fmt != AUTO else list(LAYOUTS)
        found = [f for f in candidates if (path / LAYOUTS[f][0]).is_file()]
        if not found:
            expected = " or ".join(f"{LAYOUTS[f][0]} ({f})" for f in candidates)
            tried = f"; {_TRIED}" if fmt == AUTO else ""
            raise LoadError(path, f"no ratings file in this directory: expected {expected}{tried}")
        fmt = found[0]
        ratings_name, items_name = LAYOUTS[fmt]
        path = path / ratings_name
        if items_path is None and (path.parent / items_name).is_file():
            items_path = path.parent / items_name
    elif fmt == AUTO:
        fmt = detect_file(path)
    if items_path is not None and not items_path.is_file():
        raise LoadError(items_path, "file not found" if not items_path.exists() else "not a file")
    items_ml100k = items_path is not None and (
        (fmt == ML100K and items_path.name == "u.item") or _is_u_item(items_path)
    )
    return Source(fmt=fmt, ratings=path, items=items_path, items_ml100k=items_ml100k)
