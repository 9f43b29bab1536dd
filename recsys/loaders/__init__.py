"""Load interactions (and an optional item catalog) from MovieLens or canonical CSV files.

`load_interactions` is the one entry point: whatever the format, it returns the one in-memory
representation (`recsys.interactions.Interactions`) or raises `LoadError` naming the file and line.
Formats: "movielens" (ratings.csv + movies.csv of ml-latest-small, ml-20m, ml-25m), "canonical"
(transactions.csv + catalog.csv, DESIGN.md §4), "ml-100k" (u.data + u.item [+ u.genre]) and "auto".
"""

from __future__ import annotations

from pathlib import Path

from recsys.interactions import Interactions
from recsys.loaders.assemble import assemble
from recsys.loaders.detect import FORMATS, ML100K, Source, detect_file, resolve
from recsys.loaders.errors import LoadError
from recsys.loaders.ml100k import read_u_data, read_u_item
from recsys.loaders.tables import read_catalog_csv, read_events_csv

__all__ = ["FORMATS", "LoadError", "Source", "detect_file", "load_interactions", "resolve"]


def load_interactions(
    ratings: str | Path, items: str | Path | None = None, fmt: str = "auto"
) -> Interactions:
    """Read a ratings/transactions file or directory (and its items file) into `Interactions`.

    With a directory and no `items`, the format's sibling items file is used when present.
    """
    source = resolve(ratings, items, fmt)
    events = read_u_data(source.ratings) if source.fmt == ML100K else read_events_csv(source.ratings)
    if len(events.timestamp) == 0:
        raise LoadError(source.ratings, "no interactions in the file")
    catalog = None
    if source.items is not None:
        catalog = read_u_item(source.items) if source.items_ml100k else read_catalog_csv(source.items)
    return assemble(events, catalog)
