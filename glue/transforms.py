"""Pure DataFrame → DataFrame steps of the preprocessing job: clean, collapse, label, split, count.

Each function takes and returns DataFrames (no reads, no writes, no actions), so it runs the same on a
laptop's local SparkSession and on Glue workers, and a test can feed it a ten-row DataFrame.

Order in a run: `normalise_transactions` → `drop_incomplete` → `drop_exact_duplicates` →
`collapse_pairs` (one interaction per user–item pair, the latest rating, the implicit label; both steps
as `collapse_arrivals` when `arrival_plan` can number the arrival order in a long, which the curated ingest
layout always allows) → ids
(`glue.indexing`) → `temporal_split` → `popularity`; the catalog goes `normalise_catalog` →
`latest_catalog` → `items_with_placeholders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
CONTENT = (USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_TYPE)  # what makes two events the same event


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


def drop_exact_duplicates(df: DataFrame) -> DataFrame:
    """One row per distinct event: the same upload twice, or a line repeated, counts once."""
    return df.dropDuplicates(list(CONTENT))


def _arrival(*first: str) -> Column:
    """A sort key: the given columns, then arrival order (ingest date, source, line); nulls sort low."""
    return F.struct(*(F.col(c) for c in (*first, *ARRIVAL_ORDER)))


def collapse_pairs(df: DataFrame, positive_threshold: float, positive_events: Sequence[str]) -> DataFrame:
    """One interaction per user–item pair: the latest event time, the latest rating, the implicit label.

    Label rule: with a rating, positive iff the latest rating >= `positive_threshold`; without any, positive
    iff one of the pair's events has no type or a type in `positive_events` (a purchase, a view). A plain
    aggregate by pair: no per-user lists, so a user with a million events costs what a million users do.
    """
    positive_event = F.col(EVENT_TYPE).isNull() | F.col(EVENT_TYPE).isin(list(positive_events))
    latest_rated = F.when(F.col(RATING).isNotNull(), _arrival(TIMESTAMP))
    collapsed = df.groupBy(USER_ID, ITEM_ID).agg(
        F.max(TIMESTAMP).alias(TIMESTAMP),
        F.max_by(RATING, latest_rated).alias(RATING),
        F.max_by(EVENT_TYPE, _arrival(TIMESTAMP)).alias(EVENT_TYPE),
        F.count(F.lit(1)).alias(EVENTS),
        F.max(F.when(F.col(RATING).isNull(), positive_event.cast("int"))).alias("_event_positive"),
    )
    label = F.when(F.col(RATING).isNotNull(), (F.col(RATING) >= positive_threshold).cast("int")).otherwise(
        F.coalesce(F.col("_event_positive"), F.lit(0))
    )
    return collapsed.withColumn(LABEL, label).drop("_event_positive")


# --------------------------------------------------------- pair collapse on integer arrival keys
# `collapse_pairs` orders events by a struct (time, ingest date, source key, line) and carries the lineage
# strings through the shuffle; its max_by on a struct, and the exact-duplicate drop's first() on strings,
# need sort-based aggregation. When the arrival order fits in 31 bits (always for the curated ingest
# layout: a source's lines are dense), it becomes one long per row and the event type a small int code,
# so both steps are hash aggregations over fixed-width buffers and the shuffle carries two ints instead
# of three strings. Same result as `collapse_pairs` followed by `drop_exact_duplicates`; of the copies
# of an exact duplicate the first to arrive is kept (what the pandas baseline keeps).

ARRIVAL_BITS = 31  # time (< 2^32 s) * 2^31 + arrival < 2^63
MAX_EVENT_CODES = 256  # distinct event types beyond which the string path is kept
BLOCK_SHIFT = 33  # monotonically_increasing_id puts the partition above bit 33 (the CSV reader's lines)
BLOCK = "_block"
ARRIVAL = "_arrival"
EVENT_CODE = "_event"
FIRST_LINE, LAST_LINE, EVENT_TYPES = "_first_line", "_last_line", "_event_types"


def arrival_block() -> Column:
    """The run of lines a row belongs to: a source's lines (curated: < 2^33) or one CSV partition's."""
    return F.shiftright(F.col(LINE), BLOCK_SHIFT)


def block_summaries(df: DataFrame, extra: Sequence[Column] = ()) -> list[dict[str, Any]]:
    """Per arrival block (ingest date, source key, block): first and last line and the `extra` aggregates
    (counts), in one pass, plus the complete rows' event types (a second, narrow pass only when there are
    any: collecting them in the first would make it a slower object aggregation); collected (a block is
    a file or a file's partition, so there are few)."""
    complete = F.col(USER_ID).isNotNull() & F.col(ITEM_ID).isNotNull() & F.col(TIMESTAMP).isNotNull()
    typed = complete & F.col(EVENT_TYPE).isNotNull()
    rows = [
        row.asDict()
        for row in df.groupBy(F.col(DATE_PARTITION), F.col(SOURCE_KEY), arrival_block().alias(BLOCK))
        .agg(
            F.min(LINE).alias(FIRST_LINE),
            F.max(LINE).alias(LAST_LINE),
            F.max(typed.cast("int")).alias("_typed"),
            *extra,
        )
        .collect()
    ]
    events: list[str] = []
    if any(row["_typed"] for row in rows):
        found = df.where(typed).agg(F.collect_set(EVENT_TYPE).alias(EVENT_TYPES)).first()
        events = list(found[EVENT_TYPES]) if found is not None else []
    for row in rows:
        row[EVENT_TYPES] = events
    return rows


@dataclass(frozen=True)
class ArrivalPlan:
    """Where each block's lines start in one dense arrival numbering, and the event types' codes."""

    blocks: tuple[tuple[str | None, str | None, int | None, int, int], ...]  # date, key, block, first, base
    events: tuple[str, ...]


def _low_first(value: Any) -> tuple[bool, Any]:
    return (value is not None, value if value is not None else 0)


def arrival_plan(summaries: Sequence[dict[str, Any]]) -> ArrivalPlan | None:
    """The dense numbering of `block_summaries` rows: blocks in arrival order (nulls low, as the struct
    order of `collapse_pairs`), a null line first in its block; None when it does not fit in
    ARRIVAL_BITS or there are more than MAX_EVENT_CODES event types."""
    ordered = sorted(
        summaries,
        key=lambda r: (_low_first(r[DATE_PARTITION]), _low_first(r[SOURCE_KEY]), _low_first(r[BLOCK])),
    )
    blocks = []
    base = 0
    for row in ordered:
        first = row[FIRST_LINE] if row[FIRST_LINE] is not None else 0
        span = 1 if row[LAST_LINE] is None else row[LAST_LINE] - first + 2  # + 1 for a null line
        blocks.append((row[DATE_PARTITION], row[SOURCE_KEY], row[BLOCK], int(first), base))
        base += span
    events = sorted({e for row in summaries for e in row[EVENT_TYPES]})
    if base >= 2**ARRIVAL_BITS or len(events) > MAX_EVENT_CODES:
        return None
    return ArrivalPlan(blocks=tuple(blocks), events=tuple(events))


def with_arrival(df: DataFrame, plan: ArrivalPlan) -> DataFrame:
    """Add ARRIVAL (dense, 0 = a null line) and EVENT_CODE (index into `plan.events`, null = none)."""
    events = plan.events
    code = (
        F.call_function("array_position", F.array(*(F.lit(e) for e in events)), F.col(EVENT_TYPE)).cast("int")
        - 1
        if events
        else F.lit(None)
    )
    df = df.withColumn(EVENT_CODE, F.when(F.col(EVENT_TYPE).isNotNull(), code).cast("int"))
    offset = F.coalesce(F.col(LINE) - F.col(FIRST_LINE) + 1, F.lit(0))
    if len(plan.blocks) == 1:
        _, _, _, first, base = plan.blocks[0]
        return df.withColumn(ARRIVAL, F.coalesce(F.col(LINE) - F.lit(first) + 1, F.lit(0)) + F.lit(base))
    starts = df.sparkSession.createDataFrame(
        list(plan.blocks),
        f"{DATE_PARTITION} string, {SOURCE_KEY} string, {BLOCK} long, {FIRST_LINE} long, _base long",
    )
    keyed = df.withColumn(BLOCK, arrival_block())
    on = [keyed[c].eqNullSafe(starts[c]) for c in (DATE_PARTITION, SOURCE_KEY, BLOCK)]
    joined = keyed.join(F.broadcast(starts), on=on, how="inner")
    return joined.select(*(keyed[c] for c in df.columns), (offset + F.col("_base")).alias(ARRIVAL))


def collapse_arrivals(
    df: DataFrame, plan: ArrivalPlan, positive_threshold: float, positive_events: Sequence[str]
) -> DataFrame:
    """`drop_exact_duplicates` then `collapse_pairs` (same columns, same values) on complete rows, with the
    arrival order of `plan`: one shuffle by pair, two hash aggregations."""
    coded = with_arrival(df, plan).select(USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_CODE, ARRIVAL)
    events = (
        coded.repartition(USER_ID)  # by user: the split's window per user reuses this partitioning
        .groupBy(USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_CODE)
        .agg(F.min(ARRIVAL).alias(ARRIVAL))  # one row per distinct event: the first copy to arrive
    )
    latest = F.col(TIMESTAMP) * F.lit(2**ARRIVAL_BITS) + F.col(ARRIVAL)
    positive_codes = [i for i, e in enumerate(plan.events) if e in set(positive_events)]
    positive_event = F.col(EVENT_CODE).isNull() | F.col(EVENT_CODE).isin(positive_codes)
    collapsed = events.groupBy(USER_ID, ITEM_ID).agg(
        F.max(TIMESTAMP).alias(TIMESTAMP),
        F.max_by(RATING, F.when(F.col(RATING).isNotNull(), latest)).alias(RATING),
        F.max_by(EVENT_CODE, latest).alias(EVENT_CODE),
        F.count(F.lit(1)).alias(EVENTS),
        F.max(F.when(F.col(RATING).isNull(), positive_event.cast("int"))).alias("_event_positive"),
    )
    names = F.array(*(F.lit(e) for e in plan.events)) if plan.events else None
    event_type = (
        F.when(F.col(EVENT_CODE).isNotNull(), F.element_at(names, F.col(EVENT_CODE) + 1))
        if names is not None
        else F.lit(None).cast("string")
    )
    label = F.when(F.col(RATING).isNotNull(), (F.col(RATING) >= positive_threshold).cast("int")).otherwise(
        F.coalesce(F.col("_event_positive"), F.lit(0))
    )
    return collapsed.select(
        USER_ID, ITEM_ID, TIMESTAMP, RATING, event_type.alias(EVENT_TYPE), EVENTS, label.alias(LABEL)
    )


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


def temporal_split(df: DataFrame, test_ratio: float, min_history: int = 2, user: str = USER_IDX) -> DataFrame:
    """Add `split`: each user's newest interactions are "test", the rest "train".

    Same rule as `recsys.splits.temporal_split`, so local evaluation and the pipeline agree: a user with n
    interactions gives round-half-up(n * test_ratio) to test, ties on time broken by item index (larger =
    newer); a user stays wholly in train when that leaves no train or no test interaction, or when n <
    `min_history`. Needs `user_idx`, `item_idx`, `timestamp`; one row per pair bounds each window. `user`
    names the column that tells users apart: the index or the id (one-to-one), whichever the rows are
    already partitioned by (then the window needs no shuffle).
    """
    by_user = Window.partitionBy(user)
    ordered = by_user.orderBy(F.col(TIMESTAMP).asc(), F.col(ITEM_IDX).asc())
    n = F.count(F.lit(1)).over(by_user)
    n_test = F.floor(n.cast("double") * F.lit(float(test_ratio)) + F.lit(0.5)).cast("long")
    held = F.when((n_test < 1) | (n - n_test < 1) | (n < min_history), F.lit(0)).otherwise(n_test)
    rank = F.row_number().over(ordered)
    return df.withColumn(SPLIT, F.when(rank > n - held, F.lit(TEST)).otherwise(F.lit(TRAIN)))


def popularity(interactions: DataFrame, items: DataFrame) -> DataFrame:
    """Per item (all of `items`, zeros included): interactions and positives, overall and in train.

    `train_count` weighs negative sampling and is what a popularity model fitted on train would rank by;
    `count` (one per user, as pairs are unique) serves the cold-user fallback.
    """
    is_train = F.col(SPLIT) == TRAIN
    counts = interactions.groupBy(ITEM_IDX).agg(
        F.count(F.lit(1)).alias("count"),
        F.sum(LABEL).alias("positives"),
        F.sum(is_train.cast("long")).alias("train_count"),
        F.sum(F.when(is_train, F.col(LABEL)).otherwise(0)).alias("train_positives"),
    )
    columns = ("count", "positives", "train_count", "train_positives")
    joined = items.select(ITEM_IDX, ITEM_ID).join(counts, on=ITEM_IDX, how="left")
    return joined.select(
        ITEM_IDX, ITEM_ID, *(F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in columns)
    )
