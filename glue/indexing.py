"""Contiguous integer indices for users, items and categories that stay stable across runs.

The FM feature layout and the DSSTNE indexes number ids 0..n-1. A model trained on one run is served
while the next run is prepared, and the serving side folds in new events by index, so an id keeps its
index forever: each run starts from the previous run's map, keeps every entry (ids that no longer occur
included), and numbers only the ids it has not seen, after the old maximum.

New ids are numbered without a global sort on one executor: ids are spread over `BUCKETS` hash buckets,
numbered by a window per bucket (ordered by id), and each bucket is shifted by the sizes of the buckets
before it. Every step is a function of the set of new ids alone, so a recomputed or retried stage gives
the same numbers. A run with few new ids (up to `DRIVER_NUMBERING_MAX`, e.g. ML-20M's 138k users) gets
the same numbers on the driver instead (`numbering_order`): one collect, a sort, and no shuffles or
window, which on a small cluster cost more than the numbering itself. `glue.driver_maps` numbers the
small maps with the same function.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from glue import spark_hash as sh
from glue.spark_conf import session_conf

BUCKETS = 1024  # fixed: part of what makes the numbering reproducible
DRIVER_NUMBERING_MAX = 1_000_000  # new ids numbered on the driver at most (~200 MB of Python rows there)
IS_NEW = "is_new"
ARROW = {"spark.sql.execution.arrow.pyspark.enabled": "true"}  # pandas -> Spark through Arrow


class IndexMapError(ValueError):
    """A previous map that is not a bijection onto 0..n-1; the message says what is wrong."""


def check_map(previous: DataFrame, id_col: str, idx_col: str) -> int:
    """Validate a previous run's map (one action) and return its size.

    Refuses duplicate ids, duplicate or negative indices and gaps, which would make the appended numbering
    collide or leave feature columns without an id.
    """
    row = previous.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(id_col).alias("ids"),
        F.countDistinct(idx_col).alias("indices"),
        F.min(idx_col).alias("low"),
        F.max(idx_col).alias("high"),
        F.sum(F.col(id_col).isNull().cast("long") + F.col(idx_col).isNull().cast("long")).alias("nulls"),
    ).first()
    assert row is not None
    rows, ids, indices, low, high, nulls = (
        row[k] for k in ("rows", "ids", "indices", "low", "high", "nulls")
    )
    if rows == 0:
        return 0
    if nulls:
        raise IndexMapError(f"previous {id_col} map has {nulls} null ids or indices")
    if ids != rows or indices != rows:
        raise IndexMapError(
            f"previous {id_col} map repeats ids or indices ({rows} rows, {ids} ids, {indices} indices)"
        )
    if low != 0 or high != rows - 1:
        raise IndexMapError(f"previous {id_col} map is not contiguous: indices {low}..{high} for {rows} ids")
    return int(rows)


def _to_pandas(df: DataFrame) -> pd.DataFrame:
    """A small DataFrame on the driver, through Arrow."""
    with session_conf(df.sparkSession, ARROW), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark 3.5's pandas conversion warns about pandas' own API
        return df.toPandas()


def to_arrow(df: DataFrame, schema: pa.Schema) -> pa.Table:
    """A small DataFrame on the driver as an Arrow table of `schema` (its columns, by name)."""
    frame = _to_pandas(df.select(*schema.names))
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def numbering_order(ids: pa.Array) -> npt.NDArray[np.int64]:
    """Positions of `ids` (distinct, no nulls) in the order new ids are numbered: by hash bucket
    pmod(xxhash64(id), BUCKETS), then by id as UTF-8 bytes (Spark's string order), as the distributed
    path below numbers them."""
    buckets = sh.pmod(sh.hash_strings(ids), BUCKETS) if len(ids) else np.zeros(0, np.int64)
    table = pa.table({"bucket": buckets, "id": ids, "row": np.arange(len(ids), dtype=np.int64)})
    ordered = table.sort_by([("bucket", "ascending"), ("id", "ascending")])
    return np.asarray(ordered.column("row").to_numpy(), dtype=np.int64)


def _number_on_driver(
    new: DataFrame, old: DataFrame, id_col: str, idx_col: str, previous_empty: bool
) -> DataFrame:
    """The numbering of the distributed path below, for a few new ids collected to the driver, after the
    old maximum."""
    base = 0
    if not previous_empty:
        top = old.agg(F.max(idx_col).alias("_top")).first()
        base = int(top["_top"]) + 1 if top is not None and top["_top"] is not None else 0
    ids = to_arrow(new, pa.schema([(id_col, pa.string())])).column(id_col).combine_chunks()
    table = pd.DataFrame(
        {
            id_col: pd.Series(pc.take(ids, pa.array(numbering_order(ids))).to_pylist(), dtype=object),
            idx_col: np.arange(base, base + len(ids), dtype=np.int64),
        }
    )
    spark = old.sparkSession
    schema = f"`{id_col}` string, `{idx_col}` long"
    if table.empty:
        return spark.createDataFrame([], schema)
    with session_conf(spark, ARROW), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark 3.5's pandas conversion warns about pandas' own API
        return spark.createDataFrame(table, schema)


def stable_index(
    ids: DataFrame,
    previous: DataFrame | None,
    id_col: str,
    idx_col: str,
    driver_max: int = DRIVER_NUMBERING_MAX,
) -> DataFrame:
    """(`id_col`, `idx_col`, `is_new`) for every id of `previous` plus every id of `ids` not in it.

    `ids` needs only `id_col` (duplicates and nulls are ignored); `previous` is (`id_col`, `idx_col`), as
    written by the last run (`check_map` validates it). Old ids keep their index; new ids get
    max(previous) + 1, + 2, … in a reproducible order. Up to `driver_max` new ids are numbered on the
    driver (the same numbers, without the shuffles and window of the distributed path: a run's maps are
    usually far smaller than its interactions); more go the distributed way.
    """
    distinct = ids.select(id_col).where(F.col(id_col).isNotNull()).distinct()
    spark = ids.sparkSession
    previous_empty = previous is None
    if previous is None:
        previous = spark.createDataFrame([], f"`{id_col}` string, `{idx_col}` long")
    old = previous.select(F.col(id_col), F.col(idx_col).cast("long").alias(idx_col))
    new = distinct.join(old.select(id_col), on=id_col, how="left_anti")
    base = old.agg(F.coalesce(F.max(idx_col) + 1, F.lit(0)).alias("_base"))

    if driver_max > 0 and new.count() <= driver_max:
        numbered = _number_on_driver(new, old, id_col, idx_col, previous_empty)
        return old.withColumn(IS_NEW, F.lit(False)).unionByName(numbered.withColumn(IS_NEW, F.lit(True)))
    bucketed = new.withColumn("_bucket", F.pmod(F.xxhash64(F.col(id_col)), F.lit(BUCKETS)))
    within = bucketed.withColumn(
        "_rank", F.row_number().over(Window.partitionBy("_bucket").orderBy(F.col(id_col))) - 1
    )
    sizes = bucketed.groupBy("_bucket").agg(F.count(F.lit(1)).alias("_size"))
    # At most BUCKETS rows: an unpartitioned window over them is cheap.
    offsets = sizes.withColumn(
        "_offset",
        F.sum("_size").over(Window.orderBy("_bucket").rowsBetween(Window.unboundedPreceding, -1)),
    ).select("_bucket", F.coalesce(F.col("_offset"), F.lit(0)).alias("_offset"))
    numbered = (
        within.join(F.broadcast(offsets), on="_bucket")
        .crossJoin(F.broadcast(base))
        .select(id_col, (F.col("_base") + F.col("_offset") + F.col("_rank")).cast("long").alias(idx_col))
    )
    return old.withColumn(IS_NEW, F.lit(False)).unionByName(numbered.withColumn(IS_NEW, F.lit(True)))


def ids_by_index(ids: DataFrame, id_col: str, idx_col: str) -> pa.Array:
    """A map's ids as one array, the id of index k at position k (the indices are 0 … n-1, as
    `stable_index` numbers them), collected to the driver through Arrow."""
    table = to_arrow(ids, pa.schema([(id_col, pa.string()), (idx_col, pa.int64())]))
    return ids_in_index_order(table.sort_by(idx_col), id_col, idx_col)


def ids_in_index_order(table: pa.Table, id_col: str, idx_col: str) -> pa.Array:
    """The ids of a map held in index order (a map built on the driver, or one just sorted), checking that
    its indices are 0 … n-1."""
    indices = np.asarray(table.column(idx_col).to_numpy(), dtype=np.int64)
    if not np.array_equal(indices, np.arange(len(indices))):
        raise ValueError(f"the {id_col} map's indices are not 0 … {len(indices) - 1}")
    return table.column(id_col).combine_chunks().cast(pa.string())
