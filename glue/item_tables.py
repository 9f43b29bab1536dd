"""The run's item-side tables after the per-user pass: popularity (summed from the pass's per-partition
item counts), the category map and each item's categories (the FM's category block), and the map counts
for the manifest.

Two paths, as for the maps (`glue.maps`): when the maps were built on the driver (`RunMaps.tables`), so
is all of this, with numpy and pyarrow on tables bounded by the catalog (about 25 small Spark jobs fewer,
~4 s of a 2-core run); otherwise DataFrames (`glue.transforms.popularity`, `glue.features`). The tests
hold the two to the same files and numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue import driver_maps, outputs, storage
from glue.features import (
    CATEGORY,
    CATEGORY_IDX,
    NO_CATEGORY,
    category_map,
    item_category_indices,
    item_category_names,
)
from glue.fm_channel import ItemCategories, collect_item_categories
from glue.indexing import IS_NEW, to_arrow
from glue.maps import MAP_FILE, RunMaps, write_table
from glue.transforms import IN_CATALOG, ITEM_IDX, popularity
from glue.user_outputs import ITEM_COUNTS
from recsys import contracts
from recsys.csv_contract import CATEGORIES, CATEGORY_SEPARATOR, ITEM_ID, USER_ID

POPULARITY_SCHEMA = pa.schema(
    [(ITEM_IDX, pa.int64()), (ITEM_ID, pa.string()), *((name, pa.int64()) for name in ITEM_COUNTS)]
)
CATEGORY_MAP_SCHEMA = pa.schema([(CATEGORY_IDX, pa.int64()), (CATEGORY, pa.string()), (IS_NEW, pa.bool_())])


@dataclass(frozen=True)
class ItemTables:
    """Popularity (read back from its files), each item's category indices, the number of categories
    (0 without the category block) and the map counts (users, new_users, items, new_items, catalog_items,
    items_without_catalog_row, unknown_items_with_interactions)."""

    popularity: DataFrame
    categories: ItemCategories
    n_categories: int
    counts: dict[str, int]


def build_item_tables(
    maps: RunMaps,
    item_count_files: Sequence[str],
    item_count_folder: str,
    previous_categories: DataFrame | None,
    with_categories: bool,
    layout: outputs.RunLayout,
) -> ItemTables:
    """Write popularity/ (and category_map/ when `with_categories`) and return the item tables. The pass
    wrote its item counts as `item_count_files` under `item_count_folder`; `previous_categories` is the
    previous run's category map, which this run's extends."""
    if maps.tables is not None:
        return _on_driver(maps, item_count_files, previous_categories, with_categories, layout)
    return _distributed(maps, item_count_folder, previous_categories, with_categories, layout)


# ------------------------------------------------------------------------------------------- driver


def _on_driver(
    maps: RunMaps,
    item_count_files: Sequence[str],
    previous_categories: DataFrame | None,
    with_categories: bool,
    layout: outputs.RunLayout,
) -> ItemTables:
    assert maps.tables is not None
    items = maps.tables[ITEM_ID]
    pop = popularity_table(items, [storage.read_parquet(uri) for uri in item_count_files])
    spark_pop = write_table(maps.items.sparkSession, pop, layout.path(contracts.RUN_POPULARITY_DIR))
    categories = collect_item_categories(None, items.num_rows)
    n_categories = 0
    if with_categories:
        old = None
        if previous_categories is not None:
            old = to_arrow(
                previous_categories.select(CATEGORY, CATEGORY_IDX),
                pa.schema([(CATEGORY, pa.string()), (CATEGORY_IDX, pa.int64())]),
            )
        names = category_names(items)
        cmap = driver_maps.extend(old, names.column(CATEGORY), CATEGORY, CATEGORY_IDX)
        storage.write_parquet(
            cmap.cast(CATEGORY_MAP_SCHEMA), layout.path(contracts.RUN_CATEGORY_MAP_DIR), MAP_FILE
        )
        categories = category_indices(names, cmap, items.num_rows)
        n_categories = cmap.num_rows
    return ItemTables(spark_pop, categories, n_categories, map_counts(maps.tables, pop))


def popularity_table(items: pa.Table, partial: Sequence[pa.Table]) -> pa.Table:
    """Popularity (POPULARITY_SCHEMA, every item of the map by index, zeros included) from the pass's
    per-partition item counts (ITEM_IDX and ITEM_COUNTS; each item at most once per table)."""
    n = items.num_rows
    sums = {name: np.zeros(n, dtype=np.int64) for name in ITEM_COUNTS}
    for table in partial:
        index = np.asarray(table.column(ITEM_IDX).to_numpy(), dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise ValueError(f"item counts name an item index outside the item map's [0, {n})")
        for name, total in sums.items():
            np.add.at(total, index, np.asarray(table.column(name).to_numpy(), dtype=np.int64))
    columns = {ITEM_IDX: items.column(ITEM_IDX), ITEM_ID: items.column(ITEM_ID)}
    return pa.table({**columns, **sums}, schema=POPULARITY_SCHEMA)


def category_names(items: pa.Table) -> pa.Table:
    """(item_idx, category): each item's categories, split on "|", trimmed of spaces (as Spark's `trim`),
    blanks and NO_CATEGORY dropped, each pair once (`glue.features.item_category_names`)."""
    listed = pc.fill_null(items.column(CATEGORIES), "").combine_chunks()
    split = pc.split_pattern(listed, CATEGORY_SEPARATOR)
    names = pc.utf8_trim(pc.list_flatten(split), characters=" ")
    parent = pc.list_parent_indices(split)
    keep = pc.and_(pc.not_equal(names, ""), pc.invert(pc.is_in(names, pa.array(list(NO_CATEGORY)))))
    pairs = pa.table({ITEM_IDX: pc.take(items.column(ITEM_IDX), parent), CATEGORY: names}).filter(keep)
    return pairs.group_by([ITEM_IDX, CATEGORY], use_threads=False).aggregate([])


def category_indices(names: pa.Table, cmap: pa.Table, n_items: int) -> ItemCategories:
    """Each item's category indices (ascending) from `category_names` and the category map."""
    row = pc.index_in(names.column(CATEGORY), value_set=cmap.column(CATEGORY).combine_chunks())
    category = np.asarray(pc.take(cmap.column(CATEGORY_IDX), row).to_numpy(), dtype=np.int64)
    item = np.asarray(names.column(ITEM_IDX).to_numpy(), dtype=np.int64)
    order = np.lexsort((category, item))
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(item, minlength=n_items), out=indptr[1:])
    return ItemCategories(indptr=indptr, indices=category[order])


def map_counts(tables: dict[str, pa.Table], pop: pa.Table) -> dict[str, int]:
    """The manifest's map counts from the maps and the popularity (both by item index)."""
    users, items = tables[USER_ID], tables[ITEM_ID]
    in_catalog = items.column(IN_CATALOG).to_numpy(zero_copy_only=False).astype(bool)
    counted = np.asarray(pop.column("count").to_numpy(), dtype=np.int64) > 0
    return {
        "users": users.num_rows,
        "new_users": int(pc.sum(users.column(IS_NEW).cast(pa.int64())).as_py() or 0),
        "items": items.num_rows,
        "new_items": int(pc.sum(items.column(IS_NEW).cast(pa.int64())).as_py() or 0),
        "catalog_items": int(in_catalog.sum()),
        "items_without_catalog_row": int((~in_catalog).sum()),
        "unknown_items_with_interactions": int((~in_catalog & counted).sum()),
    }


# -------------------------------------------------------------------------------------- distributed


def _distributed(
    maps: RunMaps,
    item_count_folder: str,
    previous_categories: DataFrame | None,
    with_categories: bool,
    layout: outputs.RunLayout,
) -> ItemTables:
    spark = maps.items.sparkSession
    item_counts = spark.read.parquet(item_count_folder)
    pop = outputs.write_parquet(
        popularity(item_counts, maps.items), layout.path(contracts.RUN_POPULARITY_DIR)
    )
    item_categories = None
    n_categories = 0
    if with_categories:
        names = item_category_names(maps.items)
        old = previous_categories.select(CATEGORY, CATEGORY_IDX) if previous_categories is not None else None
        categories = outputs.write_parquet(
            category_map(names, old).select(CATEGORY_IDX, CATEGORY, IS_NEW).orderBy(CATEGORY_IDX),
            layout.path(contracts.RUN_CATEGORY_MAP_DIR),
        )
        n_categories = categories.count()
        item_categories = item_category_indices(names, categories)
    counts = _map_counts(maps.users, maps.items, pop)
    return ItemTables(pop, collect_item_categories(item_categories, counts["items"]), n_categories, counts)


def row_counts(row: Any) -> dict[str, int]:
    """An aggregate's row as counts (a sum over no rows, null, is 0)."""
    return {key: int(value or 0) for key, value in row.asDict().items()}


def _map_counts(user_map: DataFrame, item_map: DataFrame, pop: DataFrame) -> dict[str, int]:
    counts = row_counts(
        user_map.agg(
            F.count(F.lit(1)).alias("users"), F.sum(F.col(IS_NEW).cast("long")).alias("new_users")
        ).first()
    )
    not_in_catalog = ~F.col(IN_CATALOG)
    counts |= row_counts(
        item_map.join(pop.select(ITEM_IDX, "count"), on=ITEM_IDX)
        .agg(
            F.count(F.lit(1)).alias("items"),
            F.sum(F.col(IS_NEW).cast("long")).alias("new_items"),
            F.sum(F.col(IN_CATALOG).cast("long")).alias("catalog_items"),
            F.sum(not_in_catalog.cast("long")).alias("items_without_catalog_row"),
            F.sum((not_in_catalog & (F.col("count") > 0)).cast("long")).alias(
                "unknown_items_with_interactions"
            ),
        )
        .first()
    )
    return counts
