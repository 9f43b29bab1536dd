"""The pure DataFrame steps on DataFrames small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from glue.features import (
    CATEGORY,
    CATEGORY_IDX,
    CATEGORY_IDXS,
    category_map,
    fm_rows,
    item_category_indices,
    item_category_names,
)
from glue.indexing import IndexMapError, check_map, stable_index
from glue.sampling import item_ranges, sample_negatives
from glue.transforms import (
    ITEMS,
    PLACEHOLDER_TITLE,
    USERS,
    census_ids,
    drop_incomplete,
    id_census,
    items_with_placeholders,
    latest_catalog,
    normalise_catalog,
    normalise_transactions,
    popularity,
)
from tests.spark.helpers import CAT_SCHEMA, TX_SCHEMA, catalog, tx


def test_normalise_types_and_drop_rows_missing_a_required_value(spark) -> None:
    raw = spark.createDataFrame(
        [
            (" u1 ", "i1", "1537799250", "4.5", " VIEW ", None, "a.csv", 1),
            ("u2", "i2", "2018-09-24T14:27:30Z", "", "", None, "a.csv", 2),
            ("u3", "i3", "2018-09-24 14:27:30", "NaN", None, None, "a.csv", 3),
            ("u4", "i4", "1537799250.9", "x", None, None, "a.csv", 4),
            ("", "i5", "1", "1", None, None, "a.csv", 5),  # blank user
            ("u6", None, "1", "1", None, None, "a.csv", 6),  # no item
            ("u7", "i7", "yesterday", "1", None, None, "a.csv", 7),  # not a timestamp
            ("u8", "i8", "99999999999", "1", None, None, "a.csv", 8),  # beyond 2100
            ("u9", "i9", None, "1", None, None, "a.csv", 9),
        ],
        "user_id string, item_id string, timestamp string, rating string, event_type string, "
        "ingest_date string, source_key string, line long",
    )
    clean = normalise_transactions(raw)
    rows = {r.line: r for r in clean.collect()}
    assert rows[1].user_id == "u1"
    assert rows[1].timestamp == 1537799250
    assert rows[1].rating == 4.5
    assert rows[1].event_type == "view"
    assert rows[2].timestamp == 1537799250
    assert rows[2].rating is None
    assert rows[2].event_type is None
    assert rows[3].timestamp == 1537799250  # naive ISO-8601 means UTC
    assert rows[3].rating is None  # NaN is no rating
    assert rows[4].timestamp == 1537799250  # a fractional epoch is floored
    assert rows[4].rating is None
    assert rows[5].user_id is None
    assert rows[6].item_id is None
    assert rows[7].timestamp is None
    assert rows[8].timestamp is None
    assert rows[9].timestamp is None
    assert sorted(r.line for r in drop_incomplete(clean).collect()) == [1, 2, 3, 4]


def test_one_census_gives_the_quality_counts_and_the_ids_of_complete_rows(spark) -> None:
    from glue.pipeline import _quality

    rows = [
        ("u1", "i1", "1", "4.5", 1),
        ("u1", "i2", "2", None, 2),
        ("u2", "i1", "3", "1", 3),
        ("u3", "i3", None, "1", 4),  # no timestamp: neither u3 nor i3 is an id of a complete row
        (None, "i4", "4", None, 5),
        ("u4", None, "5", "2", 6),
        (None, None, None, None, 7),
    ]
    raw = spark.createDataFrame(
        [(u, i, t, r, None, None, "a.csv", line) for u, i, t, r, line in rows],
        "user_id string, item_id string, timestamp string, rating string, event_type string, "
        "ingest_date string, source_key string, line long",
    )
    census = id_census(normalise_transactions(raw))
    assert {r.user_id for r in census_ids(census, USERS, "user_id").collect()} == {"u1", "u2"}
    assert {r.item_id for r in census_ids(census, ITEMS, "item_id").collect()} == {"i1", "i2"}
    assert _quality(census) == (
        {
            "rows": 7,
            "missing_user_id": 2,
            "missing_item_id": 2,
            "missing_timestamp": 2,
            "incomplete": 4,
            "without_rating": 3,
        },
        {"user_id": 2, "item_id": 2},  # distinct ids of complete rows
    )


def test_numeric_parquet_columns_are_kept(spark) -> None:
    clean = normalise_transactions(tx(spark, [("u", "i", 1_000_000, 3.0, "Purchase")])).first()
    assert (clean.timestamp, clean.rating, clean.event_type) == (1_000_000, 3.0, "purchase")


def test_latest_catalog_row_wins_and_unknown_items_get_a_placeholder(spark) -> None:
    rows = [
        ("i1", "Old", "A", "{}", "2024-01-01", "catalog/a.csv", 2),
        ("i1", "New", "A|B", "{}", "2024-02-01", "catalog/a.csv", 2),
        ("i2", None, None, None, "2024-01-01", "catalog/a.csv", 3),
        (None, "no id", "A", "{}", "2024-01-01", "catalog/a.csv", 4),
    ]
    cat = latest_catalog(normalise_catalog(spark.createDataFrame(rows, CAT_SCHEMA)))
    events = normalise_transactions(tx(spark, [("u", "i1", 1, 5.0), ("u", "zz", 2, 5.0)]))
    items = {r.item_id: r for r in items_with_placeholders(cat, events).collect()}
    assert set(items) == {"i1", "i2", "zz"}
    assert (items["i1"].title, items["i1"].categories, items["i1"].in_catalog) == ("New", "A|B", True)
    assert (items["i2"].title, items["i2"].in_catalog) == ("", True)  # in the catalog, without a title
    assert (items["zz"].title, items["zz"].categories, items["zz"].in_catalog) == (
        PLACEHOLDER_TITLE,
        "",
        False,
    )


# ------------------------------------------------------------------------------------------- indices


def _map(df) -> dict[str, int]:
    return {r[0]: r[1] for r in df.collect()}


def test_indices_are_contiguous_and_reproducible(spark) -> None:
    ids = spark.createDataFrame([(f"user{n % 37}",) for n in range(100)] + [(None,)], "id string")
    first = stable_index(ids, None, "id", "idx")
    mapping = _map(first.select("id", "idx"))
    assert sorted(mapping.values()) == list(range(37))
    again = stable_index(ids.repartition(5), None, "id", "idx")  # other partitioning, same numbers
    assert _map(again.select("id", "idx")) == mapping
    assert all(r.is_new for r in first.collect())


def test_a_second_run_appends_new_ids_and_keeps_old_ones(spark) -> None:
    previous = spark.createDataFrame([("a", 0), ("b", 1), ("gone", 2)], "id string, idx long")
    ids = spark.createDataFrame([("b",), ("a",), ("new2",), ("new1",), ("new3",)], "id string")
    result = {r.id: (r.idx, r.is_new) for r in stable_index(ids, previous, "id", "idx").collect()}
    assert result["a"] == (0, False)
    assert result["b"] == (1, False)
    assert result["gone"] == (2, False)
    assert sorted(result[k][0] for k in ("new1", "new2", "new3")) == [3, 4, 5]
    assert all(result[k][1] for k in ("new1", "new2", "new3"))


def test_ids_numbered_on_the_driver_get_the_distributed_numbers(spark) -> None:
    """Few new ids are numbered on the driver; the numbers are those of the distributed path (buckets by
    xxhash64, then ids in Spark's string order: non-ASCII, case and digits included)."""
    names = [f"u{n}" for n in range(300)] + ["Émile", "émile", "Zoë", "z", "10", "9", "日本", "a b", "ü"]
    ids = spark.createDataFrame([(n,) for n in names], "id string")
    previous = spark.createDataFrame([("u1", 0), ("old", 1)], "id string, idx long")
    for prev in (None, previous):
        driver = _map(stable_index(ids, prev, "id", "idx").select("id", "idx"))
        spread = _map(stable_index(ids, prev, "id", "idx", driver_max=0).select("id", "idx"))
        assert driver == spread
    few = _map(stable_index(ids, previous, "id", "idx", driver_max=5).select("id", "idx"))  # > 5 new
    assert few == spread


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a", 0), ("b", 2)], "not contiguous"),
        ([("a", 0), ("a", 1)], "repeats"),
        ([("a", 0), ("b", 0)], "repeats"),
        ([("a", 1)], "not contiguous"),
    ],
)
def test_a_broken_previous_map_is_refused(spark, rows, message) -> None:
    with pytest.raises(IndexMapError, match=message):
        check_map(spark.createDataFrame(rows, "id string, idx long"), "id", "idx")


# ---------------------------------------------------------------------------------------- popularity


def test_popularity_sums_the_partitions_counts_for_every_item(spark) -> None:
    partial = spark.createDataFrame(  # item a in two partitions, b in one, c in none
        [(0, 2, 1, 2, 1), (0, 1, 1, 0, 0), (1, 1, 1, 0, 0)],
        "item_idx long, count long, positives long, train_count long, train_positives long",
    )
    items = spark.createDataFrame([(0, "a"), (1, "b"), (2, "c")], "item_idx long, item_id string")
    got = {r.item_id: r for r in popularity(partial, items).collect()}
    assert (got["a"]["count"], got["a"].positives, got["a"].train_count, got["a"].train_positives) == (
        3,
        2,
        2,
        1,
    )
    assert (got["b"]["count"], got["b"].train_count) == (1, 0)
    assert (got["c"]["count"], got["c"].positives) == (0, 0)


# ----------------------------------------------------------------------------------------- negatives


def _sampling_inputs(spark):
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 60
    pairs = {
        (int(u), int(i))
        for u, i in zip(rng.integers(0, n_users, 900), rng.zipf(1.6, 900) % n_items, strict=True)
    }
    interacted = spark.createDataFrame(sorted(pairs), "user_idx long, item_idx long")
    counts = interacted.groupBy("item_idx").agg(F.count(F.lit(1)).alias("train_count"))
    catalog = spark.range(n_items + 5).withColumnRenamed("id", "item_idx")  # 5+ items nobody touched
    pop = catalog.join(counts, "item_idx", "left").fillna(0, ["train_count"])
    return interacted, pop, pairs


def test_negatives_are_never_a_users_own_item_and_are_seeded(spark) -> None:
    interacted, pop, pairs = _sampling_inputs(spark)
    ranges = item_ranges(pop, 0.75).cache()
    negatives = sample_negatives(interacted, interacted, ranges, 4, seed=11, salt="train").cache()
    rows = [(r.user_idx, r.item_idx, r.positive_item_idx) for r in negatives.collect()]
    assert rows, "some negatives are drawn"
    assert not {(u, i) for u, i, _ in rows} & pairs  # never an item the user touched
    popular = {r.item_idx for r in pop.where("train_count > 0").collect()}
    assert {i for _, i, _ in rows} <= popular  # weight 0: never drawn
    per_positive = negatives.groupBy("user_idx", "positive_item_idx").count().collect()
    assert max(r["count"] for r in per_positive) <= 4
    assert len(rows) >= 0.9 * 4 * len(pairs)  # the oversampling covers nearly every positive

    again = sample_negatives(interacted.repartition(3), interacted, ranges, 4, seed=11, salt="train")
    assert sorted(rows) == sorted((r.user_idx, r.item_idx, r.positive_item_idx) for r in again.collect())
    other = sample_negatives(interacted, interacted, ranges, 4, seed=12, salt="train")
    assert sorted(rows) != sorted((r.user_idx, r.item_idx, r.positive_item_idx) for r in other.collect())


def test_negatives_follow_smoothed_popularity(spark) -> None:
    positives = spark.createDataFrame([(u, 10_000 + u) for u in range(3000)], "user_idx long, item_idx long")
    pop = spark.createDataFrame([(0, 1), (1, 16), (2, 81)], "item_idx long, train_count long")
    negatives = sample_negatives(positives, positives, item_ranges(pop, 0.75), 1, seed=5, salt="s")
    drawn = dict(negatives.groupBy("item_idx").count().collect())
    weights = np.array([1.0, 16**0.75, 81**0.75])
    expected = weights / weights.sum() * 3000
    for item, want in enumerate(expected):
        assert abs(drawn[item] - want) < 5 * math.sqrt(want)


def test_a_user_with_a_million_pairs_is_sampled_without_own_items(spark) -> None:
    # One user touched 1,000,000 items; the weighted items are 2,000, half of them the user's own: every
    # draw must be checked against the whole million, in one partition, without a per-user list.
    heavy = spark.range(1_000_000).select(
        F.lit(0).cast("long").alias("user_idx"), F.col("id").alias("item_idx")
    )
    positives = heavy.where("item_idx < 500")
    pop = spark.range(999_000, 1_001_000).select(
        F.col("id").alias("item_idx"), F.lit(1).cast("long").alias("train_count")
    )
    negatives = sample_negatives(positives, heavy, item_ranges(pop, 0.75), 4, seed=3, salt="train").cache()
    items = [r.item_idx for r in negatives.select("item_idx").collect()]
    assert items
    assert min(items) >= 1_000_000  # never one of the user's own million items
    per_positive = [r["count"] for r in negatives.groupBy("positive_item_idx").count().collect()]
    assert max(per_positive) <= 4
    assert len(items) >= 0.9 * 4 * 500  # half the candidates are rejected; 12 draws still cover most


def test_no_negatives_requested_gives_none(spark) -> None:
    interacted, pop, _ = _sampling_inputs(spark)
    assert sample_negatives(interacted, interacted, item_ranges(pop, 0.75), 0, 1, "x").count() == 0


# -------------------------------------------------------------------------------------------- features


def test_categories_are_split_trimmed_and_indexed(spark) -> None:
    items = spark.createDataFrame(
        [(0, "Drama| Comedy"), (1, "(no genres listed)"), (2, ""), (3, None), (4, "Comedy|Comedy")],
        "item_idx long, categories string",
    )
    names = item_category_names(items)
    assert sorted((r.item_idx, r.category) for r in names.collect()) == [
        (0, "Comedy"),
        (0, "Drama"),
        (4, "Comedy"),
    ]
    cmap = category_map(names, None).cache()
    index = {r.category: r.category_idx for r in cmap.collect()}
    assert sorted(index.values()) == [0, 1]
    indices = item_category_indices(names, cmap).cache()
    per_item = {r.item_idx: r.category_idxs for r in indices.collect()}
    assert per_item == {0: sorted(index.values()), 4: [index["Comedy"]]}

    previous = cmap.select(CATEGORY, CATEGORY_IDX)
    more = spark.createDataFrame([(5, "Horror")], "item_idx long, category string")
    extended = {r.category: r.category_idx for r in category_map(names.unionByName(more), previous).collect()}
    assert extended == {**index, "Horror": 2}

    rows = spark.createDataFrame([(7, 0, 1), (7, 2, 0)], "user_idx long, item_idx long, label int")
    got = {r.item_idx: (r.label, r[CATEGORY_IDXS]) for r in fm_rows(rows, indices).collect()}
    assert got == {0: (1.0, sorted(index.values())), 2: (0.0, [])}


def test_tx_schema_is_what_the_readers_deliver() -> None:
    from glue.readers import CATALOG_COLUMNS, TRANSACTION_COLUMNS

    assert [c.split()[0] for c in TX_SCHEMA.split(", ")] == list(TRANSACTION_COLUMNS)
    assert [c.split()[0] for c in CAT_SCHEMA.split(", ")] == list(CATALOG_COLUMNS)


def test_catalog_helper(spark) -> None:
    assert catalog(spark, [("i", "t", "c")]).count() == 1


def test_dsstne_lines_escape_ids_and_can_keep_values() -> None:
    from glue.dsstne_arrow import SPARK_RATING, user_lines
    from glue.dsstne_text import decode_name

    train = pa.table(
        {
            "user_id": ["a,b:c\td", "a,b:c\td", "solo"],
            "item_id": ["x y", "p%q+", "x y"],
            "user_idx": [1, 1, 3],
            "item_idx": [1, 2, 1],
            "timestamp": [1, 2, 1],
            "rating": pa.array([4.5, None, 2.0], pa.float64()),
            "label": pa.array([1, 0, 0], pa.int32()),
            SPARK_RATING: pa.nulls(3, pa.string()),
        }
    )
    assert user_lines(train, True, False).to_pylist() == ["a%2Cb%3Ac%09d\tx+y,4.5:p%25q%2B", "solo\tx+y,2.0"]
    assert user_lines(train, True, True).to_pylist() == ["a%2Cb%3Ac%09d\tx+y,4.5", "solo\t"]
    assert decode_name("a%2Cb%3Ac%09d") == "a,b:c\td"
    assert decode_name("p%25q%2B") == "p%q+"
    assert decode_name("x+y") == "x y"
