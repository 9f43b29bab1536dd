"""Negative sampling for the FM binary classifier: popularity^0.75 draws, never an item the user touched.

Why this shape: implicit data has only positives, and a classifier needs zeros. Items are drawn with
probability ∝ train_count ** exponent (word2vec's smoothing: popular items are likelier negatives, but
not overwhelmingly so). Nothing per user is collected into one list; the rows are partitioned by user
and each partition is sampled with numpy:

1. integer weights and their running sums give each item a range [lo, hi) of [0, total); the ranges (one
   row per item, bounded by the catalog) are broadcast to the executors as two sorted arrays;
2. every positive gets `draws` candidates u = pmod(xxhash64(seed, salt, user, item, j), total), Spark's
   own hash computed with numpy on the executor (`glue.spark_hash`; `draw_positions` is the same in Spark
   SQL, the reference the tests hold it to), so a draw is a pure function of its inputs: the same seed
   gives the same negatives on any cluster, with any partitioning;
3. a guide table over the running sums finds the item whose range holds u;
4. a bitmap of the partition's (user, item) pairs (sorted keys when a large catalog makes it too big)
   drops every item the user interacted with (train or test): rows are partitioned by user, so all of a
   user's pairs are in the same partition;
5. the first `per_positive` survivors of each positive (by draw number) are kept.

The result is the one the earlier explode-and-join formulation gave, row for row, at a fraction of the
cost (no 2·N+4 rows per positive, no range join, no anti-join, no window).

A positive whose candidates are nearly all the user's own items keeps fewer than `per_positive`
negatives; `stats.json` reports the shortfall.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from glue import spark_hash as sh
from glue.arrow_partition import partition_table
from glue.transforms import ITEM_IDX, USER_IDX

WEIGHT_SCALE = 1000.0  # weights are rounded to 1/1000 of a unit, so sums are exact integers
POSITIVE_ITEM = "positive_item_idx"
DRAW = "draw"
ROLE = "_role"  # sample_negatives: 1 = a positive to sample for, 0 = an interacted pair only
KEY_BITS = 32  # a (user, item) key is user << 32 | item
GUIDE_PER_RANGE = 4  # item lookup: guide-table buckets per item range
DENSE_LIMIT_BYTES = 64 * 2**20  # own-item check: the largest bitmap of local user × item

I64 = npt.NDArray[np.int64]


def draws_per_positive(per_positive: int) -> int:
    """Candidates drawn per positive: enough that a heavy user's rejections rarely leave a gap."""
    return 2 * per_positive + 4 if per_positive else 0


def item_ranges(popularity: DataFrame, exponent: float, count_col: str = "train_count") -> DataFrame:
    """(item_idx, lo, hi, total, width) for items with a positive weight; [lo, hi) tile [0, total)."""
    weights = popularity.select(
        ITEM_IDX,
        F.round(F.pow(F.col(count_col).cast("double"), F.lit(float(exponent))) * WEIGHT_SCALE)
        .cast("long")
        .alias("_w"),
    ).where((F.col(count_col) > 0) & (F.col("_w") > 0))
    running = Window.orderBy(ITEM_IDX).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ranges = weights.withColumn("hi", F.sum("_w").over(running)).withColumn("lo", F.col("hi") - F.col("_w"))
    totals = ranges.agg(F.max("hi").alias("total"), F.count(F.lit(1)).alias("_n"))
    totals = totals.withColumn("width", F.greatest(F.lit(1), F.expr("(total + _n - 1) div _n")))
    return ranges.crossJoin(F.broadcast(totals.select("total", "width"))).select(
        ITEM_IDX, "lo", "hi", "total", "width"
    )


@dataclass(frozen=True)
class Ranges:
    """The item ranges as arrays, in index order: item `items[k]` owns [hi[k-1], hi[k]) of [0, total).

    One entry per item with a positive weight: bounded by the catalog, not by the interactions, so the
    driver can hold it and Spark can broadcast it.
    """

    items: I64
    hi: I64

    @property
    def total(self) -> int:
        return int(self.hi[-1]) if self.hi.size else 0


def collect_ranges(ranges: DataFrame) -> Ranges:
    """The (item_idx, hi) columns of `item_ranges` on the driver (one row per weighted item)."""
    rows = ranges.select(ITEM_IDX, "hi").orderBy("hi").collect()
    items = np.fromiter((r[ITEM_IDX] for r in rows), dtype=np.int64, count=len(rows))
    hi = np.fromiter((r["hi"] for r in rows), dtype=np.int64, count=len(rows))
    return Ranges(items=items, hi=hi)


def draw_positions(seed: int, salt: Column, total: int, draws: int) -> Column:
    """The `draws` candidate positions of the positive (user_idx, item_idx) of this row, as an array:
    pmod(xxhash64(seed, salt, user_idx, item_idx, j), total) for j = 0 … draws - 1 (j an int). The
    definition in Spark SQL: the reference the tests hold `candidate_positions` (what runs) to."""
    return F.transform(
        F.sequence(F.lit(0), F.lit(draws - 1)),
        lambda j: F.pmod(F.xxhash64(F.lit(seed), salt, F.col(USER_IDX), F.col(ITEM_IDX), j), F.lit(total)),
    )


def candidate_positions(seed: int, salt: str, users: I64, items: I64, total: int, draws: int) -> I64:
    """The (positives × draws) candidate positions of the positives (users[k], items[k]): what
    `draw_positions` gives in Spark, computed with numpy on the executor, so no array column is computed
    in the JVM and shipped through Arrow. Spark chains the columns (each hashed with the previous hash as
    seed), so the constant prefix (seed, salt) is hashed once; `F.lit(seed)` is an int when it fits."""
    first = sh.hash_int([seed]) if -(2**31) <= seed < 2**31 else sh.hash_long([seed])
    prefix = sh.hash_strings(pa.array([salt], pa.string()), first)
    per_row = sh.hash_long(items, sh.hash_long(users, prefix))
    return sh.pmod(sh.hash_int(np.arange(draws, dtype=np.int32), per_row[:, None]), total)


def pair_keys(users: I64, items: I64) -> I64:
    """One int64 per (user, item): user << 32 | item (indices are contiguous from 0, so they fit)."""
    if items.size and (items.min() < 0 or items.max() >= 1 << KEY_BITS):
        raise ValueError(f"item index outside [0, 2**{KEY_BITS})")
    if users.size and (users.min() < 0 or users.max() >= 1 << (63 - KEY_BITS)):
        raise ValueError(f"user index outside [0, 2**{63 - KEY_BITS})")
    return (users << KEY_BITS) | items


def _guide(ranges: Ranges) -> tuple[int, npt.NDArray[np.int32]]:
    """(shift, starts): starts[p >> shift] is the first range that can hold position p. About
    GUIDE_PER_RANGE buckets per range, so most buckets hold no range end and need no step forward."""
    shift = max(0, (ranges.total // (GUIDE_PER_RANGE * ranges.hi.size)).bit_length() - 1)
    bucket_starts = np.arange((ranges.total >> shift) + 1, dtype=np.int64) << shift
    return shift, np.searchsorted(ranges.hi, bucket_starts, side="right").astype(np.int32)


def items_at(ranges: Ranges, positions: I64) -> I64:
    """The item whose range holds each position in [0, total): `searchsorted(hi, p, side="right")` by a
    guide table (one gather, then a step forward for the few positions past their bucket's first range),
    several times cheaper than a binary search per position."""
    shift, starts = _guide(ranges)
    flat = positions.ravel()
    at = starts[flat >> shift].astype(np.int64)
    behind = np.flatnonzero(ranges.hi[at] <= flat)
    while behind.size:
        at[behind] += 1
        behind = behind[ranges.hi[at[behind]] <= flat[behind]]
    drawn: I64 = ranges.items[at].reshape(positions.shape)
    return drawn


@dataclass(frozen=True)
class Interacted:
    """A partition's (user, item) pairs, for the own-item check. A bitmap of local user × item when it
    fits in `DENSE_LIMIT_BYTES` (a candidate costs one gather, ~6x cheaper than a binary search); otherwise
    (a large catalog) the sorted pair keys, searched per candidate."""

    users: I64  # the distinct users, sorted: a user's bitmap row is its index here
    width: int  # bits per bitmap row, above every item of the pairs and of the ranges
    bits: npt.NDArray[np.uint8] | None
    keys: I64  # the sorted pair keys when there is no bitmap (else empty)

    @classmethod
    def of(cls, users: I64, items: I64, ranges: Ranges, limit: int = DENSE_LIMIT_BYTES) -> Interacted:
        """The pairs (users[k], items[k]); candidates are drawn from `ranges`."""
        if users.min(initial=0) < 0 or items.min(initial=0) < 0:
            raise ValueError("negative user or item index")
        distinct = np.unique(users)
        width = int(max(items.max(initial=-1), ranges.items.max(initial=-1))) + 1
        if distinct.size * width > 8 * limit:
            return cls(distinct, width, None, np.sort(pair_keys(users, items)))
        at = np.searchsorted(distinct, users) * width + items
        bits = np.zeros((distinct.size * width + 7) // 8, dtype=np.uint8)
        np.bitwise_or.at(bits, at >> 3, np.left_shift(1, at & 7).astype(np.uint8))
        return cls(distinct, width, bits, np.zeros(0, np.int64))

    def holds(self, users: I64, items: I64) -> npt.NDArray[np.bool_]:
        """Whether (users[k], items[k, j]) is one of the pairs, for each k and j."""
        if not self.users.size:
            return np.zeros(items.shape, dtype=bool)
        if self.bits is None:
            keys = pair_keys(np.broadcast_to(users[:, None], items.shape), items)
            at = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
            found: npt.NDArray[np.bool_] = self.keys[at] == keys
            return found
        row = np.minimum(np.searchsorted(self.users, users), self.users.size - 1)
        known = (self.users[row] == users)[:, None]  # a user without pairs has no bitmap row
        at = row[:, None] * self.width + items
        held: npt.NDArray[np.bool_] = known & ((self.bits[at >> 3] >> (at & 7).astype(np.uint8)) & 1 == 1)
        return held


def pick_negatives(
    users: I64, positions: I64, interacted: Interacted, ranges: Ranges, per_positive: int
) -> tuple[I64, I64, I64, I64]:
    """(row, user, item, draw) of up to `per_positive` negatives per positive.

    `users` holds one entry per positive, `positions` its candidate positions (positives × draws),
    `interacted` every pair of those users; `row` is the positive's index.
    """
    n, draws = positions.shape
    empty = np.zeros(0, np.int64)
    if n == 0 or draws == 0 or ranges.hi.size == 0:
        return empty, empty, empty, empty
    drawn = items_at(ranges, positions)
    fresh = ~interacted.holds(users, drawn)
    kept = fresh & (np.cumsum(fresh, axis=1) <= per_positive)
    rows, draw = np.nonzero(kept)
    return rows.astype(np.int64), users[rows], drawn[rows, draw], draw.astype(np.int64)


def sample_negatives(
    positives: DataFrame,
    interacted: DataFrame,
    ranges: DataFrame,
    per_positive: int,
    seed: int,
    salt: str,
) -> DataFrame:
    """(user_idx, item_idx, positive_item_idx, draw): up to `per_positive` negatives for each positive.

    `positives` and `interacted` are (user_idx, item_idx) rows; negatives avoid every pair of
    `interacted`. `salt` separates streams (train and test draw differently from the same seed). The run
    itself samples inside the FM channel writer (`glue.fm_channel.write_channels`) with the same functions.
    """
    schema = f"{USER_IDX} long, {ITEM_IDX} long, {POSITIVE_ITEM} long, {DRAW} int"
    n_draws = draws_per_positive(per_positive)
    table = collect_ranges(ranges)
    spark = positives.sparkSession
    if n_draws == 0 or table.total == 0:
        return spark.createDataFrame([], schema)
    shared = spark.sparkContext.broadcast(table)
    both = positives.select(USER_IDX, ITEM_IDX, F.lit(1).alias(ROLE)).unionByName(
        interacted.select(USER_IDX, ITEM_IDX, F.lit(0).alias(ROLE))
    )
    partitions = max(1, positives.rdd.getNumPartitions())
    marked = both.repartition(partitions, USER_IDX)

    def body(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        data = partition_table(batches)
        if data is None:
            return
        users = data.column(USER_IDX).to_numpy().astype(np.int64)
        items = data.column(ITEM_IDX).to_numpy().astype(np.int64)
        role = data.column(ROLE).to_numpy() == 1
        ranges: Ranges = shared.value
        rows, user, item, draw = pick_negatives(
            users[role],
            candidate_positions(seed, salt, users[role], items[role], ranges.total, n_draws),
            Interacted.of(users[~role], items[~role], ranges),
            ranges,
            per_positive,
        )
        yield pa.RecordBatch.from_pydict(
            {
                USER_IDX: pa.array(user, pa.int64()),
                ITEM_IDX: pa.array(item, pa.int64()),
                POSITIVE_ITEM: pa.array(items[role][rows], pa.int64()),
                DRAW: pa.array(draw.astype(np.int32), pa.int32()),
            }
        )

    return marked.mapInArrow(body, schema)
