"""Negative sampling for the FM binary classifier: popularity^0.75 draws, never an item the user touched.

Why this shape: implicit data has only positives, and a classifier needs zeros. Items are drawn with
probability ∝ train_count ** exponent (word2vec's smoothing: popular items are likelier negatives, but
not overwhelmingly so). Everything stays in DataFrames, with no per-user list and nothing collected:

1. integer weights and their running sums give each item a range [lo, hi) of [0, total);
2. every positive gets `draws` candidates u = hash(seed, salt, user, item, j) mod total, so a draw is a
   pure function of its inputs: the same seed gives the same negatives on any cluster, in any order;
3. a bucketed equi-join (bucket = u div width) finds the item whose range holds u, without a range join;
4. an anti-join on (user, item) drops every item the user interacted with (train or test);
5. the first `per_positive` survivors of each positive (by draw number) are kept.

A positive whose candidates are nearly all the user's own items keeps fewer than `per_positive`
negatives; `stats.json` reports the shortfall.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from glue.transforms import ITEM_IDX, USER_IDX

WEIGHT_SCALE = 1000.0  # weights are rounded to 1/1000 of a unit, so sums are exact integers
POSITIVE_ITEM = "positive_item_idx"
DRAW = "draw"


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
    `interacted`. `salt` separates streams (train and test draw differently from the same seed).
    """
    n_draws = draws_per_positive(per_positive)
    if n_draws == 0:
        return positives.sparkSession.createDataFrame(
            [], f"{USER_IDX} long, {ITEM_IDX} long, {POSITIVE_ITEM} long, {DRAW} int"
        )
    scale = ranges.select("total", "width").limit(1)
    buckets = ranges.select(
        ITEM_IDX,
        "lo",
        "hi",
        F.explode(F.sequence(F.expr("lo div width"), F.expr("(hi - 1) div width"))).alias("_bucket"),
    )
    draws = (
        positives.select(F.col(USER_IDX), F.col(ITEM_IDX).alias(POSITIVE_ITEM))
        .crossJoin(F.broadcast(scale))
        .select(
            USER_IDX,
            POSITIVE_ITEM,
            F.explode(F.sequence(F.lit(0), F.lit(n_draws - 1))).alias(DRAW),
            "total",
            "width",
        )
        .withColumn(
            "_u",
            F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), USER_IDX, POSITIVE_ITEM, DRAW), F.col("total")),
        )
        .withColumn("_bucket", F.expr("_u div width"))
    )
    hits = (
        draws.join(buckets, on="_bucket")
        .where((F.col("lo") <= F.col("_u")) & (F.col("_u") < F.col("hi")))
        .select(USER_IDX, ITEM_IDX, POSITIVE_ITEM, DRAW)
    )
    fresh = hits.join(interacted.select(USER_IDX, ITEM_IDX), on=[USER_IDX, ITEM_IDX], how="left_anti")
    first = Window.partitionBy(USER_IDX, POSITIVE_ITEM).orderBy(DRAW)
    return (
        fresh.withColumn("_keep", F.row_number().over(first))
        .where(F.col("_keep") <= per_positive)
        .drop("_keep")
    )
