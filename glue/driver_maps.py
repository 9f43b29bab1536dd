"""The user and item maps built on the driver with pyarrow, when they are small enough to hold there.

Why: a run's maps are small next to its events (ML-20M: 138k users and 27k items against 20M events), yet
building them as Spark DataFrames (distinct ids, anti-join with the previous map, numbering, the catalog's
full outer join with the ids seen, the previous map's columns, writes, read-backs, counts) took about 35
small jobs: 12 s of a 2-core run in which the work itself is a fraction of a second. Here the same rules
run on Arrow tables the driver collected in a few jobs (`glue.maps`), and the maps are written as one
Parquet file each. The distributed path (`glue.maps`, `glue.indexing.stable_index`) stays for maps beyond
`glue.maps.DRIVER_MAPS_MAX`; the tests hold the two to the same rows.

The rules, as the distributed path has them:

- an id keeps the index the previous map gave it (every previous entry is kept, seen now or not);
- new ids are numbered after the previous maximum in the order of (pmod(xxhash64(id), BUCKETS), id), ids
  compared as UTF-8 bytes (Spark's string order), so the numbers depend on the set of new ids alone;
- the item view is every catalog item plus every item with interactions; an item without a catalog row
  gets the placeholder title, no categories, no attributes and `in_catalog = false`;
- an item of the previous map that is not in this run's view keeps the previous map's columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from glue.indexing import IS_NEW, numbering_order
from glue.readers import ATTRIBUTES
from glue.transforms import IN_CATALOG, ITEM_IDX, PLACEHOLDER_TITLE, USER_IDX
from recsys.csv_contract import CATEGORIES, ITEM_ID, TITLE, USER_ID

CATALOG_SCHEMA = pa.schema(  # the latest catalog row per item (`glue.transforms.latest_catalog`)
    [(ITEM_ID, pa.string()), (TITLE, pa.string()), (CATEGORIES, pa.string()), (ATTRIBUTES, pa.string())]
)
USER_MAP_SCHEMA = pa.schema([(USER_IDX, pa.int64()), (USER_ID, pa.string()), (IS_NEW, pa.bool_())])
ITEM_VIEW_SCHEMA = pa.schema([*CATALOG_SCHEMA, (IN_CATALOG, pa.bool_())])
ITEM_MAP_SCHEMA = pa.schema(
    [(ITEM_IDX, pa.int64()), (ITEM_ID, pa.string()), *list(ITEM_VIEW_SCHEMA)[1:], (IS_NEW, pa.bool_())]
)


def _distinct(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    array = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    return pc.unique(pc.drop_null(array.cast(pa.string())))


def extend(previous: pa.Table | None, ids: pa.Array | pa.ChunkedArray, id_col: str, idx_col: str) -> pa.Table:
    """(`idx_col`, `id_col`, is_new) by index: every entry of `previous` (`id_col`, `idx_col`; validated by
    `glue.indexing.check_map`), then the ids of `ids` it lacks (nulls and repeats ignored), numbered from
    its maximum + 1 (`numbering_order`)."""
    schema = pa.schema([(idx_col, pa.int64()), (id_col, pa.string()), (IS_NEW, pa.bool_())])
    if previous is None:
        previous = pa.table({id_col: pa.array([], pa.string()), idx_col: pa.array([], pa.int64())})
    old_ids = previous.column(id_col).combine_chunks().cast(pa.string())
    old_idx = np.asarray(previous.column(idx_col).to_numpy(), dtype=np.int64)
    seen = _distinct(ids)
    new = pc.filter(seen, pc.invert(pc.is_in(seen, value_set=old_ids)))
    new = pc.take(new, pa.array(numbering_order(new)))
    base = int(old_idx.max()) + 1 if old_idx.size else 0
    indices = np.concatenate([old_idx, np.arange(base, base + len(new), dtype=np.int64)])
    order = np.argsort(indices, kind="stable")
    return pa.table(
        {
            idx_col: pa.array(indices[order], pa.int64()),
            id_col: pc.take(pa.concat_arrays([old_ids, new]), pa.array(order)),
            IS_NEW: pa.array(order >= len(old_ids), pa.bool_()),
        },
        schema=schema,
    )


def user_map(seen: pa.Array | pa.ChunkedArray, previous: pa.Table | None) -> pa.Table:
    """The user map (USER_MAP_SCHEMA, by index): the previous map extended with the users seen."""
    return extend(previous, seen, USER_ID, USER_IDX).select(USER_MAP_SCHEMA.names).cast(USER_MAP_SCHEMA)


def item_view(catalog: pa.Table | None, seen: pa.Array | pa.ChunkedArray) -> pa.Table:
    """This run's items (ITEM_VIEW_SCHEMA): each catalog item (`catalog`: one row per item, CATALOG_SCHEMA)
    and each item seen in the transactions without a catalog row, with the placeholder title."""
    if catalog is None:
        catalog = CATALOG_SCHEMA.empty_table()
    catalog = catalog.select(CATALOG_SCHEMA.names).cast(CATALOG_SCHEMA)
    listed = catalog.column(ITEM_ID).combine_chunks()
    seen = _distinct(seen)
    unlisted = pc.filter(seen, pc.invert(pc.is_in(seen, value_set=listed)))
    n, m = catalog.num_rows, len(unlisted)
    return pa.table(
        {
            ITEM_ID: pa.concat_arrays([listed, unlisted]),
            TITLE: pa.concat_arrays(
                [pc.fill_null(catalog.column(TITLE), "").combine_chunks(), _repeat(PLACEHOLDER_TITLE, m)]
            ),
            CATEGORIES: pa.concat_arrays(
                [pc.fill_null(catalog.column(CATEGORIES), "").combine_chunks(), _repeat("", m)]
            ),
            ATTRIBUTES: pa.concat_arrays(
                [pc.fill_null(catalog.column(ATTRIBUTES), "{}").combine_chunks(), _repeat("{}", m)]
            ),
            IN_CATALOG: pa.array(np.r_[np.ones(n, bool), np.zeros(m, bool)], pa.bool_()),
        },
        schema=ITEM_VIEW_SCHEMA,
    )


def _repeat(value: str, n: int) -> pa.Array:
    return pa.array([value] * n, pa.string())


def item_map(view: pa.Table, previous: pa.Table | None) -> pa.Table:
    """The item map (ITEM_MAP_SCHEMA, by index): the previous map extended with the items of `view`
    (`item_view`), each with its view columns, or the previous map's where this run does not list it."""
    ids = extend(
        previous.select([ITEM_ID, ITEM_IDX]) if previous is not None else None,
        view.column(ITEM_ID),
        ITEM_ID,
        ITEM_IDX,
    )
    columns = ITEM_VIEW_SCHEMA.names[1:]
    row = pc.index_in(ids.column(ITEM_ID), value_set=view.column(ITEM_ID).combine_chunks())
    taken = {name: pc.take(view.column(name), row) for name in columns}
    if previous is not None:
        old_row = pc.index_in(ids.column(ITEM_ID), value_set=previous.column(ITEM_ID).combine_chunks())
        for name in columns:
            old = pc.take(previous.column(name).cast(ITEM_VIEW_SCHEMA.field(name).type), old_row)
            taken[name] = pc.coalesce(taken[name], old)
    table = pa.table(
        {ITEM_IDX: ids.column(ITEM_IDX), ITEM_ID: ids.column(ITEM_ID), **taken, IS_NEW: ids.column(IS_NEW)}
    )
    return table.cast(ITEM_MAP_SCHEMA)
