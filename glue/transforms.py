"""Pure DataFrame → DataFrame steps of the preprocessing job: clean, catalog view, count.

Each function takes and returns DataFrames (no reads, no writes, no actions), so it runs the same on a
laptop's local SparkSession and on Glue workers, and a test can feed it a ten-row DataFrame.

Order in a run: `normalise_transactions` → `drop_incomplete` → ids (`glue.indexing`) → the per-user pass
(`glue.user_pass`: exact duplicates, one interaction per user–item pair with the latest rating and the
implicit label, the temporal split) → `popularity`; the catalog goes `normalise_catalog` →
`latest_catalog` → `items_with_placeholders`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType, NumericType, StringType, TimestampType

from glue.readers import ARRIVAL_ORDER, ATTRIBUTES, DATE_PARTITION, LINE, SOURCE_KEY
from recsys.csv_contract import CATEGORIES, EVENT_TYPE, ITEM_ID, RATING, TIMESTAMP, TITLE, USER_ID

# Epoch seconds kept: 1970-01-01 up to 2100-01-01, the range the CSV validator accepts.
MIN_EPOCH = 0
MAX_EPOCH = 4_102_444_800
PLACEHOLDER_TITLE = "(unknown item)"  # title of an item with interactions but no catalog row

USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
LABEL = "label"
EVENTS = "events"
SPLIT = "split"
TRAIN, TEST = "train", "test"
IN_CATALOG = "in_catalog"
REQUIRED = (USER_ID, ITEM_ID, TIMESTAMP)


def _clean_string(column: Column) -> Column:
    """Trimmed text; an empty or blank value is missing (null)."""
    trimmed = F.trim(column.cast(StringType()))
    return F.when(trimmed == "", None).otherwise(trimmed)


def _try_cast(name: str, sql_type: str) -> Column:
    """CAST that gives null for bad text even with ANSI mode on (Glue's Spark may enable it)."""
    return F.expr(f"try_cast(`{name}` AS {sql_type})")


def _epoch_seconds(df: DataFrame) -> Column:
    """Epoch seconds from a number, an epoch string or an ISO-8601 string (naive = session time, UTC)."""
    dtype = df.schema[TIMESTAMP].dataType
    if isinstance(dtype, IntegralType):  # the curated ingest Parquet: epoch seconds already
        seconds = F.col(TIMESTAMP)
    elif isinstance(dtype, NumericType):
        seconds = F.floor(F.col(TIMESTAMP).cast("double"))
    elif isinstance(dtype, TimestampType):
        seconds = F.col(TIMESTAMP).cast("long")
    else:
        text = F.trim(F.col(TIMESTAMP).cast(StringType()))
        epoch = F.floor(_try_cast(TIMESTAMP, "DOUBLE"))
        iso = F.try_to_timestamp(text).cast("long")
        seconds = F.when(text.rlike(r"^[+-]?\d+(\.\d+)?$"), epoch).otherwise(iso)
    seconds = seconds.cast("long")
    return F.when((seconds >= MIN_EPOCH) & (seconds < MAX_EPOCH), seconds)


def normalise_transactions(df: DataFrame) -> DataFrame:
    """Typed columns: ids trimmed (blank = null), epoch-second timestamps, float ratings (NaN = null),
    lower-case event types. Values that do not parse become null; `drop_incomplete` then drops the rows
    missing a required one."""
    if RATING not in df.columns:
        rating = F.lit(None).cast("double")
    elif isinstance(df.schema[RATING].dataType, NumericType):  # typed (curated Parquet): no text to parse
        rating = F.col(RATING).cast("double")
    else:
        rating = _try_cast(RATING, "DOUBLE")
    return df.select(
        _clean_string(F.col(USER_ID)).alias(USER_ID),
        _clean_string(F.col(ITEM_ID)).alias(ITEM_ID),
        _epoch_seconds(df).alias(TIMESTAMP),
        F.when(F.isnan(rating), None).otherwise(rating).alias(RATING),
        F.lower(_clean_string(F.col(EVENT_TYPE))).alias(EVENT_TYPE),
        F.col(DATE_PARTITION).cast("string").alias(DATE_PARTITION),
        F.col(SOURCE_KEY).cast("string").alias(SOURCE_KEY),
        F.col(LINE).cast("long").alias(LINE),
    )


def drop_incomplete(df: DataFrame) -> DataFrame:
    """Rows with a user, an item and a timestamp (a rating and an event type are optional)."""
    return df.dropna(how="any", subset=list(REQUIRED))


# The id census: one row per user id (kind USERS) and per item id (kind ITEMS) of the transactions, null
# ids included, with how many rows name it (CENSUS_COUNTS).
ID_KIND = "kind"
ID = "id"
USERS, ITEMS = 0, 1
CENSUS_COUNTS = ("rows", "complete", "missing_timestamp", "without_rating")


def id_census(df: DataFrame) -> DataFrame:
    """The census of normalised transactions: per (kind, id), its rows, complete rows, rows without a
    timestamp and rows without a rating. Every row is counted once under its user id and once under its
    item id, so the data-quality counts (from the user rows) and the distinct ids of complete rows (those
    with complete > 0) come from one scan of the input instead of three."""
    complete = F.col(USER_ID).isNotNull() & F.col(ITEM_ID).isNotNull() & F.col(TIMESTAMP).isNotNull()
    flags = (F.lit(1), complete, F.col(TIMESTAMP).isNull(), F.col(RATING).isNull())
    ids = F.array(
        F.struct(F.lit(USERS).alias(ID_KIND), F.col(USER_ID).alias(ID)),
        F.struct(F.lit(ITEMS).alias(ID_KIND), F.col(ITEM_ID).alias(ID)),
    )
    counted = df.select(
        F.explode(ids).alias("_id"),
        *(flag.cast("long").alias(name) for flag, name in zip(flags, CENSUS_COUNTS, strict=True)),
    )
    return counted.groupBy(f"_id.{ID_KIND}", f"_id.{ID}").agg(*(F.sum(c).alias(c) for c in CENSUS_COUNTS))


def census_ids(census: DataFrame, kind: int, name: str) -> DataFrame:
    """The distinct ids of one kind that complete rows name, as column `name`."""
    mine = (F.col(ID_KIND) == kind) & (F.col("complete") > 0)
    return census.where(mine).select(F.col(ID).alias(name))


# ------------------------------------------------------------------------------------------- catalog


def normalise_catalog(df: DataFrame) -> DataFrame:
    """Typed catalog columns; rows without an item id are dropped (nothing could refer to them)."""
    out = df.select(
        _clean_string(F.col(ITEM_ID)).alias(ITEM_ID),
        F.col(TITLE).cast("string").alias(TITLE),
        F.col(CATEGORIES).cast("string").alias(CATEGORIES),
        F.coalesce(F.col(ATTRIBUTES).cast("string"), F.lit("{}")).alias(ATTRIBUTES),
        F.col(DATE_PARTITION).cast("string").alias(DATE_PARTITION),
        F.col(SOURCE_KEY).cast("string").alias(SOURCE_KEY),
        F.col(LINE).cast("long").alias(LINE),
    )
    return out.where(F.col(ITEM_ID).isNotNull())


def latest_catalog(df: DataFrame) -> DataFrame:
    """One row per item: the one that arrived last (ingest date, then source key, then line)."""
    order = [F.col(c).desc_nulls_last() for c in ARRIVAL_ORDER]
    ranked = df.withColumn("_rank", F.row_number().over(Window.partitionBy(ITEM_ID).orderBy(*order)))
    return ranked.where(F.col("_rank") == 1).select(ITEM_ID, TITLE, CATEGORIES, ATTRIBUTES)


def empty_catalog(df: DataFrame) -> DataFrame:
    """A catalog with no rows, for runs given no catalog file (every item then gets a placeholder)."""
    return df.sparkSession.createDataFrame(
        [], f"{ITEM_ID} string, {TITLE} string, {CATEGORIES} string, {ATTRIBUTES} string"
    )


def items_with_placeholders(catalog: DataFrame, interactions: DataFrame) -> DataFrame:
    """Every catalog item plus every item with interactions; the latter without a catalog row are kept,
    flagged `in_catalog = false`, with the placeholder title and no categories."""
    seen = interactions.select(ITEM_ID).distinct().withColumn("_seen", F.lit(True))
    known = catalog.withColumn(IN_CATALOG, F.lit(True))
    joined = known.join(seen, on=ITEM_ID, how="full_outer")
    in_catalog = F.coalesce(F.col(IN_CATALOG), F.lit(False))
    return joined.select(
        ITEM_ID,
        F.when(in_catalog, F.coalesce(F.col(TITLE), F.lit("")))
        .otherwise(F.lit(PLACEHOLDER_TITLE))
        .alias(TITLE),
        F.coalesce(F.col(CATEGORIES), F.lit("")).alias(CATEGORIES),
        F.coalesce(F.col(ATTRIBUTES), F.lit("{}")).alias(ATTRIBUTES),
        in_catalog.alias(IN_CATALOG),
    )


# ------------------------------------------------------------------------------------- split, counts


def popularity(item_counts: DataFrame, items: DataFrame) -> DataFrame:
    """Per item (all of `items`, zeros included): interactions and positives, overall and in train, summed
    from `item_counts` (item_idx and partial counts of each: one row per item and partition of the
    per-user pass).

    `train_count` weighs negative sampling and is what a popularity model fitted on train would rank by;
    `count` (one per user, as pairs are unique) serves the cold-user fallback.
    """
    columns = ("count", "positives", "train_count", "train_positives")
    counts = item_counts.groupBy(ITEM_IDX).agg(*(F.sum(c).alias(c) for c in columns))
    joined = items.select(ITEM_IDX, ITEM_ID).join(counts, on=ITEM_IDX, how="left")
    return joined.select(
        ITEM_IDX, ITEM_ID, *(F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in columns)
    )
