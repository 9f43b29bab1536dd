"""A run's user and item maps: stable indices for the ids its complete events name, items with their
catalog view. Written under the run (`user_map/`, `item_map/`) and returned as DataFrames read back from
the files, for the per-user pass's joins and the counts.

Two paths, one result (the same rows and schema; the tests hold them to it):

- small maps (each at most `DRIVER_MAPS_MAX` entries, the catalog too): the id census's ids, the latest
  catalog rows and the previous maps are collected through Arrow (a few jobs) and merged on the driver
  (`glue.driver_maps`); each map is written as one Parquet file, and stays on the driver as an Arrow table
  (the pass broadcasts its ids by index);
- larger maps: DataFrames throughout (`glue.indexing.stable_index`, `glue.transforms`), written by Spark.

The ids are those of the complete events (the collapsed pairs have the same), from the cached id census
(`glue.transforms.id_census`), so neither path scans the events.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue import driver_maps, outputs, storage
from glue.indexing import (
    DRIVER_NUMBERING_MAX,
    IS_NEW,
    ids_by_index,
    ids_in_index_order,
    stable_index,
    to_arrow,
)
from glue.readers import ATTRIBUTES, Inputs
from glue.transforms import (
    ID,
    ID_KIND,
    IN_CATALOG,
    ITEM_IDX,
    ITEMS,
    USER_IDX,
    USERS,
    census_ids,
    empty_catalog,
    items_with_placeholders,
    latest_catalog,
    normalise_catalog,
)
from recsys import contracts
from recsys.csv_contract import CATEGORIES, ITEM_ID, TITLE, USER_ID

DRIVER_MAPS_MAX = 2_000_000  # entries per map (and catalog rows) built on the driver at most (1.2 GB peak)
BROADCAST_IDS = 2_000_000  # ids by index broadcast to the pass up to this size per map (~100 MB)
MAP_FILE = "part-00000.parquet"
_SPARK_TYPES = {pa.int64(): "bigint", pa.string(): "string", pa.bool_(): "boolean"}


@dataclass(frozen=True)
class RunMaps:
    """The maps as DataFrames (read back from the written files) and their sizes (USER_ID, ITEM_ID →
    entries); `tables` holds them on the driver when they were built there."""

    users: DataFrame
    items: DataFrame
    sizes: dict[str, int]
    tables: dict[str, pa.Table] | None = None

    def ids(self) -> dict[str, pa.Array] | None:
        """Both maps' ids by index (USER_ID, ITEM_ID → array), when each map is at most BROADCAST_IDS."""
        if max(self.sizes.values()) > BROADCAST_IDS:
            return None
        if self.tables is not None:
            return {
                USER_ID: ids_in_index_order(self.tables[USER_ID], USER_ID, USER_IDX),
                ITEM_ID: ids_in_index_order(self.tables[ITEM_ID], ITEM_ID, ITEM_IDX),
            }
        return {
            USER_ID: ids_by_index(self.users, USER_ID, USER_IDX),
            ITEM_ID: ids_by_index(self.items, ITEM_ID, ITEM_IDX),
        }


def build_maps(
    census: DataFrame,
    seen: dict[str, int],
    inputs: Inputs,
    previous: outputs.PreviousMaps | None,
    previous_sizes: dict[str, int],
    layout: outputs.RunLayout,
    driver_max: int | None = None,
) -> RunMaps:
    """Write the run's user and item maps and return them (module docstring). `seen` is the number of
    distinct ids of each kind (USER_ID, ITEM_ID) that the census holds, `previous_sizes` the previous
    maps' sizes ("users", "items"; `glue.indexing.check_map`); maps and catalog up to `driver_max` entries
    (default `DRIVER_MAPS_MAX`) are built on the driver."""
    driver_max = DRIVER_MAPS_MAX if driver_max is None else driver_max
    fits = (
        seen[USER_ID] + previous_sizes.get("users", 0) <= driver_max
        and seen[ITEM_ID] + previous_sizes.get("items", 0) <= driver_max
    )
    catalog = latest_catalog(normalise_catalog(inputs.catalog)) if inputs.catalog is not None else None
    # The catalog's rows bound its latest rows: counting them (a scan) costs less than collecting a catalog
    # too large for the driver to find out.
    if fits and (inputs.catalog is None or inputs.catalog.count() <= driver_max):
        rows = to_arrow(catalog, driver_maps.CATALOG_SCHEMA) if catalog is not None else None
        return _on_driver(census, rows, previous, layout)
    return _distributed(census, catalog, previous, layout, min(driver_max, DRIVER_NUMBERING_MAX))


def _on_driver(
    census: DataFrame,
    catalog: pa.Table | None,
    previous: outputs.PreviousMaps | None,
    layout: outputs.RunLayout,
) -> RunMaps:
    ids = to_arrow(
        census.where(F.col("complete") > 0).select(ID_KIND, ID),
        pa.schema([(ID_KIND, pa.int64()), (ID, pa.string())]),
    )
    kinds = ids.column(ID_KIND)
    users_seen = ids.filter(pc.equal(kinds, USERS)).column(ID)
    items_seen = ids.filter(pc.equal(kinds, ITEMS)).column(ID)
    old_users = old_items = None
    if previous is not None:
        old_users = to_arrow(
            previous.users.select(USER_ID, USER_IDX),
            pa.schema([(USER_ID, pa.string()), (USER_IDX, pa.int64())]),
        )
        old_items = to_arrow(
            previous.items.select(ITEM_ID, ITEM_IDX, TITLE, CATEGORIES, ATTRIBUTES, IN_CATALOG),
            pa.schema(
                [(ITEM_ID, pa.string()), (ITEM_IDX, pa.int64()), *list(driver_maps.ITEM_VIEW_SCHEMA)[1:]]
            ),
        )
    tables = {
        USER_ID: driver_maps.user_map(users_seen, old_users),
        ITEM_ID: driver_maps.item_map(driver_maps.item_view(catalog, items_seen), old_items),
    }
    spark = census.sparkSession
    users = write_table(spark, tables[USER_ID], layout.path(contracts.RUN_USER_MAP_DIR))
    items = write_table(spark, tables[ITEM_ID], layout.path(contracts.RUN_ITEM_MAP_DIR))
    sizes = {name: table.num_rows for name, table in tables.items()}
    return RunMaps(users=users, items=items, sizes=sizes, tables=tables)


def write_table(spark: SparkSession, table: pa.Table, folder: str) -> DataFrame:
    """Write a small table (a map, the popularity) as one Parquet file and read it back with its schema
    (no job to infer it)."""
    storage.write_parquet(table, folder, MAP_FILE)
    ddl = ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in table.schema)
    return spark.read.schema(ddl).parquet(folder)


def _distributed(
    census: DataFrame,
    catalog: DataFrame | None,
    previous: outputs.PreviousMaps | None,
    layout: outputs.RunLayout,
    numbering_max: int,
) -> RunMaps:
    seen_users = census_ids(census, USERS, USER_ID)
    seen_items = census_ids(census, ITEMS, ITEM_ID)
    old_users = previous.users.select(USER_ID, USER_IDX) if previous else None
    users = outputs.write_parquet(
        stable_index(seen_users, old_users, USER_ID, USER_IDX, numbering_max)
        .select(USER_IDX, USER_ID, IS_NEW)
        .orderBy(USER_IDX),
        layout.path(contracts.RUN_USER_MAP_DIR),
    )
    view = items_with_placeholders(catalog if catalog is not None else empty_catalog(census), seen_items)
    items = outputs.write_parquet(
        _item_map(view, previous.items if previous else None, numbering_max).orderBy(ITEM_IDX),
        layout.path(contracts.RUN_ITEM_MAP_DIR),
    )
    return RunMaps(users=users, items=items, sizes={USER_ID: users.count(), ITEM_ID: items.count()})


def _item_map(items: DataFrame, previous: DataFrame | None, numbering_max: int) -> DataFrame:
    """Stable item indices joined with this run's catalog view; items known only from the previous map keep
    its title, categories and flag."""
    ids = stable_index(
        items.select(ITEM_ID),
        previous.select(ITEM_ID, ITEM_IDX) if previous is not None else None,
        ITEM_ID,
        ITEM_IDX,
        numbering_max,
    )
    joined = ids.join(items, on=ITEM_ID, how="left")
    kept = (TITLE, CATEGORIES, ATTRIBUTES, IN_CATALOG)
    if previous is not None:
        old = previous.select(ITEM_ID, *(F.col(c).alias(f"_old_{c}") for c in kept))
        joined = joined.join(old, on=ITEM_ID, how="left").select(
            ITEM_ID, ITEM_IDX, IS_NEW, *(F.coalesce(F.col(c), F.col(f"_old_{c}")).alias(c) for c in kept)
        )
    return joined.select(ITEM_IDX, ITEM_ID, TITLE, CATEGORIES, ATTRIBUTES, IN_CATALOG, IS_NEW)
