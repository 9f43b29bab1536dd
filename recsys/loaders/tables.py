"""Readers for CSV files with a header (MovieLens `ratings.csv`/`movies.csv` and the canonical contract).

They all go through the project's one validator, so a file the pipeline accepts locally is accepted by
the ingest Lambda too, and the other way round; this module only converts its string columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from recsys.csv_contract import CATEGORIES, ITEM_ID, RATING, TIMESTAMP, TITLE, USER_ID, Kind
from recsys.loaders.assemble import RawCatalog, RawEvents
from recsys.loaders.errors import LoadError


def _table(path: Path, kind: Kind) -> Any:
    from recsys.validation import InvalidFileError, read_valid_table

    try:
        return read_valid_table(path, kind)
    except (InvalidFileError, OSError) as error:
        raise LoadError.wrap(path, error) from error


def read_events_csv(path: Path) -> RawEvents:
    """A transactions file (or MovieLens ratings.csv); events without a rating get NaN."""
    from recsys.validation import epoch_seconds, parse_ratings

    table = _table(path, Kind.TRANSACTIONS)
    if table.num_rows == 0:  # the validator returns a table without columns for a header-only file
        raise LoadError(path, "no interactions in the file (only a header)")
    names = set(table.column_names)
    rating = (
        np.asarray(parse_ratings(table[RATING]), dtype=np.float32)
        if RATING in names
        else np.full(table.num_rows, np.nan, dtype=np.float32)
    )
    return RawEvents(
        user=table[USER_ID],
        item=table[ITEM_ID],
        timestamp=np.asarray(epoch_seconds(table[TIMESTAMP]), dtype=np.int64),
        rating=rating,
    )


def read_catalog_csv(path: Path) -> RawCatalog:
    """A catalog file (or MovieLens movies.csv); missing title or categories columns read as ""."""
    table = _table(path, Kind.CATALOG)
    names = set(table.column_names)
    empty = pa.array([""] * table.num_rows, type=pa.string())
    return RawCatalog(
        item_id=table[ITEM_ID] if ITEM_ID in names else empty,
        title=table[TITLE] if TITLE in names else empty,
        categories=table[CATEGORIES] if CATEGORIES in names else empty,
    )
