"""Readers for MovieLens 100k: `u.data` (ratings), `u.item` (movies) and `u.genre` (genre names).

These files have no header and no quoting, so they bypass the CSV validator; the checks it would make
(field count, integer fields) are done here, vectorised, and reported with the file's line number.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from recsys.loaders.assemble import RawCatalog, RawEvents
from recsys.loaders.errors import LoadError

U_DATA_FIELDS = ("user", "item", "rating", "timestamp")
U_ITEM_FIXED = ("item", "title", "release_date", "video_release_date", "imdb_url")
# The genre columns of u.item, in order, for a u.item that comes without its u.genre.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_INTEGER = r"^[0-9]{1,18}$"  # at most 18 digits: always fits int64
_FLAG = r"^[01]$"


def _read(path: Path, names: tuple[str, ...], delimiter: str, encoding: str) -> Any:
    """All fields as strings; row i of the table is line i + 1 of the file (blank lines kept as rows).

    The fast read runs on all cores; only when a row has the wrong field count is the file read again on
    one thread, because only then does Arrow report the row's line number.
    """
    parse = {"delimiter": delimiter, "quote_char": False, "ignore_empty_lines": False}
    read = pa_csv.ReadOptions(column_names=list(names), encoding=encoding)
    convert = pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False)
    try:
        return pa_csv.read_csv(
            path,
            read_options=read,
            parse_options=pa_csv.ParseOptions(**parse, invalid_row_handler=lambda _row: "error"),
            convert_options=convert,
        )
    except OSError as error:
        raise LoadError.wrap(path, error) from error
    except pa.ArrowInvalid as error:
        first: list[Any] = []

        def remember(row: Any) -> str:
            first.append(row)
            return "error"

        read.use_threads = False
        with contextlib.suppress(pa.ArrowInvalid):
            pa_csv.read_csv(
                path,
                read_options=read,
                parse_options=pa_csv.ParseOptions(**parse, invalid_row_handler=remember),
                convert_options=convert,
            )
        if first:
            row = first[0]
            found = "only whitespace" if not row.text.strip() else f"{row.actual_columns} field(s)"
            sep = "tab" if delimiter == "\t" else repr(delimiter)
            raise LoadError(
                path, f"expected {len(names)} {sep}-separated fields, found {found}", line=row.number
            ) from error
        raise LoadError(path, f"cannot be read: {error}") from error


def _check(path: Path, table: Any, patterns: dict[str, str], what: dict[str, str]) -> np.ndarray:
    """Raise on the first row whose fields do not match; return the mask of non-blank rows to keep."""
    blank = np.ones(table.num_rows, dtype=bool)
    for name in table.column_names:
        blank &= pc.equal(table[name], "").to_numpy(zero_copy_only=False)
    bad_at = np.full(table.num_rows, False)
    first_bad: tuple[int, str] | None = None
    for name, pattern in patterns.items():
        ok = pc.match_substring_regex(table[name], pattern).to_numpy(zero_copy_only=False)
        bad_at = ~ok & ~blank
        if bad_at.any():
            row = int(np.argmax(bad_at))
            if first_bad is None or row < first_bad[0]:
                first_bad = (row, name)
    if first_bad is not None:
        row, name = first_bad
        value = table[name][row].as_py()
        raise LoadError(path, f"{what[name]}, got {value!r}", line=row + 1, column=name)
    return ~blank


def read_u_data(path: Path) -> RawEvents:
    """`user<TAB>item<TAB>rating<TAB>timestamp`, all integers, one rating per line."""
    table = _read(path, U_DATA_FIELDS, "\t", "utf8")
    keep = _check(
        path,
        table,
        dict.fromkeys(U_DATA_FIELDS, _INTEGER),
        {
            "user": "expected an integer user id",
            "item": "expected an integer item id",
            "rating": "expected an integer rating",
            "timestamp": "expected integer epoch seconds",
        },
    )
    table = table.filter(pa.array(keep)) if not keep.all() else table
    return RawEvents(
        user=table["user"],
        item=table["item"],
        timestamp=pc.cast(table["timestamp"], pa.int64()).to_numpy(),
        rating=pc.cast(table["rating"], pa.int64()).to_numpy().astype(np.float32),
    )


def read_u_genre(path: Path) -> tuple[str, ...]:
    """Genre names ordered by their column number (`name|number` per line; tiny file)."""
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as error:
        raise LoadError.wrap(path, error) from error
    numbered: dict[int, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, number = line.strip().rpartition("|")
        if not sep or not name or not number.isdigit():
            raise LoadError(path, f"expected 'name|number', got {line!r}", line=line_no)
        numbered[int(number)] = name
    if sorted(numbered) != list(range(len(numbered))):
        raise LoadError(path, f"genre numbers must run 0..{len(numbered) - 1}, got {sorted(numbered)}")
    return tuple(numbered[i] for i in range(len(numbered)))


def read_u_item(path: Path) -> RawCatalog:
    """`id|title|release date|video release date|IMDb URL|flag...` in latin-1; flags name genres.

    Genre names come from a sibling `u.genre` when there is one, else the standard ml-100k list.
    """
    genre_file = path.parent / "u.genre"
    genres = read_u_genre(genre_file) if genre_file.is_file() else ML100K_GENRES
    flags = tuple(f"genre_{i}" for i in range(len(genres)))
    table = _read(path, U_ITEM_FIXED + flags, "|", "latin-1")
    what = {"item": "expected an integer item id"}
    what.update({f: f"expected 0 or 1 for genre {g!r}" for f, g in zip(flags, genres, strict=True)})
    keep = _check(path, table, {"item": _INTEGER, **dict.fromkeys(flags, _FLAG)}, what)
    table = table.filter(pa.array(keep)) if not keep.all() else table
    # Each flag contributes "Name|" or ""; joining with no separator then trimming the last "|" avoids
    # null_handling="skip", which drops all-null rows in pyarrow 26 (rows without any genre).
    named = [pc.if_else(pc.equal(table[f], "1"), f"{g}|", "") for f, g in zip(flags, genres, strict=True)]
    joined = pc.binary_join_element_wise(*named, "") if named else pa.array([""] * table.num_rows)
    categories = pc.utf8_rtrim(joined, characters="|")
    return RawCatalog(item_id=table["item"], title=table["title"], categories=categories)
