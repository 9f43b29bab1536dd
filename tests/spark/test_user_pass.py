"""The per-user pass (`glue.user_pass`): exact duplicates, the pair collapse and the temporal split, checked
by hand on small inputs and against a plain-Python statement of the rules on random ones."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Row
from pyspark.sql import functions as F

from glue.dsstne_arrow import SPARK_RATING
from glue.settings import DsstneTarget
from glue.transforms import drop_incomplete, normalise_transactions
from glue.user_outputs import PassSummary, UserOutputs, write_user_outputs
from glue.user_pass import EVENT_COLUMNS, OUTPUT_SCHEMA, PairRules, collapse_and_split
from recsys.interactions import Interactions
from recsys.splits import temporal_split as numpy_temporal_split
from tests.spark.helpers import TX_SCHEMA, tx

RULES = PairRules(4.0, ("purchase", "view"), 0.2, 2)


def _indexed(df: Any) -> Any:
    """Complete, normalised events with user and item indices (ids numbered in sorted order: any
    one-to-one numbering will do here); the ids by index."""
    events = drop_incomplete(normalise_transactions(df))
    users = sorted({r.user_id for r in events.select("user_id").distinct().collect()})
    items = sorted({r.item_id for r in events.select("item_id").distinct().collect()})
    spark = df.sparkSession
    user_map = spark.createDataFrame(list(enumerate(users)), "user_idx long, user_id string")
    item_map = spark.createDataFrame(list(enumerate(items)), "item_idx long, item_id string")
    return events.join(user_map, "user_id").join(item_map, "item_id"), users, items


def written(events: Any, partitions: int, rules: PairRules, folder: Path) -> tuple[list[Row], PassSummary]:
    """Run the per-user pass into `folder`; the interactions it wrote (with their split), its summary."""
    plan = UserOutputs(
        rules=rules,
        interactions={split: str(folder / f"split={split}") for split in ("train", "test")},
        dsstne_input=str(folder / "dsstne_in"),
        dsstne_output=str(folder / "dsstne_out"),
        dsstne_target=DsstneTarget.ALL,
        dsstne_values=False,
        item_counts=str(folder / "counts"),
    )
    summary = write_user_outputs(events, partitions, plan)
    rows = [
        Row(**record, split=split)
        for split in ("train", "test")
        for path in sorted((folder / f"split={split}").glob("*.parquet"))
        for record in pq.read_table(path).to_pylist()
    ]
    return rows, summary


def _pairs(
    df: Any, folder: Path, rules: PairRules = RULES, partitions: int = 3
) -> dict[tuple[str, str], Any]:
    indexed, users, items = _indexed(df)
    rows, _ = written(indexed, partitions, rules, folder)
    assert all((users[r.user_idx], items[r.item_idx]) == (r.user_id, r.item_id) for r in rows)
    return {(r.user_id, r.item_id): r for r in rows}


def test_exact_duplicates_go_whatever_file_they_came_from(spark, tmp_path) -> None:
    rows = [("u", "i", 10, 4.0), ("u", "i", 10, 4.0), ("u", "i", 10, 5.0), ("u", "i", 11, 4.0)]
    df = tx(spark, rows).withColumn("source_key", F.monotonically_increasing_id().cast("string"))
    assert _pairs(df, tmp_path)["u", "i"].events == 3


def test_collapse_keeps_the_latest_rating_and_labels_each_pair(spark, tmp_path) -> None:
    rows = [
        ("u", "a", 10, 5.0),  # rated 5, later 2: the later rating wins
        ("u", "a", 20, 2.0),
        ("u", "b", 10, 4.0),  # rated, then viewed without a rating: the rating stays
        ("u", "b", 30, None, "view"),
        ("u", "c", 10, None, "purchase"),
        ("u", "d", 10, None, "click"),  # an event outside the positive list, no rating
        ("u", "e", 10, None),  # no type, no rating: an implicit positive
        ("u", "f", 10, 3.0),
        ("u", "f", 10, 4.0),  # same second: the row that arrived later wins
    ]
    got = _pairs(tx(spark, rows), tmp_path)
    assert (got["u", "a"].rating, got["u", "a"].timestamp, got["u", "a"].label, got["u", "a"].events) == (
        2.0,
        20,
        0,
        2,
    )
    assert (got["u", "b"].rating, got["u", "b"].timestamp, got["u", "b"].event_type, got["u", "b"].label) == (
        4.0,
        30,
        "view",
        1,
    )
    assert (got["u", "c"].label, got["u", "d"].label, got["u", "e"].label) == (1, 0, 1)
    assert (got["u", "f"].rating, got["u", "f"].label) == (4.0, 1)


def test_arrival_is_ingest_date_then_source_then_line(spark, tmp_path) -> None:
    rows = [
        # user, item, time, rating, event type, ingest date, source key, line
        ("u", "a", 10, 5.0, None, "2024-01-01", "t/1.csv", 2),
        ("u", "a", 20, 2.0, None, "2024-01-01", "t/1.csv", 3),
        ("u", "f", 10, 3.0, None, "2024-01-01", "t/1.csv", 4),
        ("u", "f", 10, 4.0, None, "2024-01-01", "t/1.csv", 5),
        ("u", "f", 10, 3.0, None, "2024-01-01", "t/0.csv", 9),  # an exact duplicate from another file
        ("u", "k", 10, 3.0, None, "2024-01-01", "t/1.csv", 8),
        ("u", "k", 10, 4.0, None, "2024-01-01", "t/1.csv", 9),
        ("u", "k", 10, 3.0, None, "2024-01-01", "t/2.csv", 9),  # a copy arriving last: the first counts
        ("u", "g", 10, None, "View", "2024-01-02", "t/0.csv", 2),  # a later date beats a larger key
        ("u", "g", 10, None, "click", "2024-01-01", "t/2.csv", 7),
        ("u", "h", 10, 1.0, None, "2024-01-01", "t/2.csv", None),  # a null line arrives first
        ("u", "h", 10, 5.0, None, "2024-01-01", "t/2.csv", 3),
        ("v", "a", 5, None, None, "2024-01-01", "t/1.csv", 6),
        ("v", "a", 5, None, None, "2024-01-01", "t/1.csv", 7),
        ("v", "b", 7, None, "purchase", "2024-01-02", "t/0.csv", 3),
        (None, "b", 7, 4.0, None, "2024-01-02", "t/0.csv", 4),
    ]
    got = _pairs(spark.createDataFrame(rows, TX_SCHEMA), tmp_path)
    assert set(got) == {("u", "a"), ("u", "f"), ("u", "k"), ("u", "g"), ("u", "h"), ("v", "a"), ("v", "b")}
    assert (got["u", "k"].rating, got["u", "k"].events) == (4.0, 2)
    assert (got["u", "f"].rating, got["u", "f"].events) == (4.0, 2)
    assert (got["u", "g"].event_type, got["u", "g"].label) == ("view", 1)
    assert got["u", "h"].rating == 5.0
    assert (got["v", "a"].events, got["v", "a"].event_type, got["v", "a"].label) == (1, None, 1)
    assert (got["v", "b"].event_type, got["v", "b"].label) == ("purchase", 1)


def _event_table(users: list[int], items: list[int], times: list[int]) -> pa.Table:
    """Events without rating or type, one source, in line order."""
    n = len(users)
    return pa.table(
        {
            "user_idx": pa.array(users, pa.int64()),
            "item_idx": pa.array(items, pa.int64()),
            "timestamp": pa.array(times, pa.int64()),
            "rating": pa.nulls(n, pa.float64()),
            "event_type": pa.nulls(n, pa.string()),
            "ingest_date": pa.array(["2024-01-01"] * n, pa.string()),
            "source_key": pa.array(["t.csv"] * n, pa.string()),
            "line": pa.array(range(n), pa.int64()),
        }
    )


def _events(counts: dict[int, int]) -> pa.Table:
    """One event per pair: user u has items 0 … n-1 at times 1000 + item."""
    rows = [(u, i, 1000 + i) for u, n in counts.items() for i in range(n)]
    return _event_table([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _test_pairs(table: pa.Table) -> set[tuple[int, int]]:
    return {(r["user_idx"], r["item_idx"]) for r in table.to_pylist() if r["split"] == "test"}


def test_split_holds_out_the_newest_fifth_and_keeps_short_histories_in_train() -> None:
    split = collapse_and_split(_events({0: 10, 1: 1, 2: 2, 3: 3, 4: 5}), RULES)
    assert _test_pairs(split) == {(0, 8), (0, 9), (3, 2), (4, 4)}  # newest of each; users 1, 2 stay in train
    stricter = PairRules(4.0, (), 0.2, min_history=4)
    assert {u for u, _ in _test_pairs(collapse_and_split(_events({0: 10, 3: 3}), stricter))} == {0}
    assert split.schema == OUTPUT_SCHEMA
    assert collapse_and_split(_events({}), RULES).schema == OUTPUT_SCHEMA


def test_split_agrees_with_recsys_temporal_split() -> None:
    rng = np.random.default_rng(7)
    users, items = rng.integers(0, 60, 3000), rng.integers(0, 400, 3000)
    keys = np.unique(np.stack([users, items], axis=1), axis=0)  # one event per pair
    times = rng.integers(0, 50, len(keys))  # many ties: the item index breaks them
    data = Interactions(
        user=keys[:, 0].astype(np.int32),
        item=keys[:, 1].astype(np.int32),
        timestamp=times.astype(np.int64),
        rating=np.full(len(keys), np.nan, dtype=np.float32),
        user_ids=np.array([str(u) for u in range(60)], dtype=object),
        item_ids=np.array([str(i) for i in range(400)], dtype=object),
    )
    _, expected = numpy_temporal_split(data, 0.2)
    table = _event_table(keys[:, 0].tolist(), keys[:, 1].tolist(), times.tolist())
    got = _test_pairs(collapse_and_split(table, RULES))
    assert got == set(zip(expected.user.tolist(), expected.item.tolist(), strict=True))


def _arrival(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((value is not None, value if value is not None else "") for value in row[5:])


def _reference(rows: list[tuple[Any, ...]], rules: PairRules) -> dict[tuple[int, int], tuple[Any, ...]]:
    """The module docstring's rules, one row at a time."""
    first: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        content = row[:5]
        if content not in first or _arrival(row) < _arrival(first[content]):
            first[content] = row
    by_pair: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
    for row in first.values():
        by_pair.setdefault((row[0], row[1]), []).append(row)
    pairs = {}
    for key, events in by_pair.items():
        latest = max(events, key=lambda r: (r[2], _arrival(r)))
        rated = [r for r in events if r[3] is not None]
        rating = max(rated, key=lambda r: (r[2], _arrival(r)))[3] if rated else None
        if rating is not None:
            label = int(rating >= rules.positive_threshold)
        else:
            label = int(any(r[4] is None or r[4] in rules.positive_events for r in events if r[3] is None))
        pairs[key] = (latest[2], rating, latest[4], len(events), label)
    out = {}
    for user in {u for u, _ in pairs}:
        mine = sorted((k for k in pairs if k[0] == user), key=lambda k: (pairs[k][0], k[1]))
        n = len(mine)
        n_test = math.floor(n * rules.test_ratio + 0.5)
        held = 0 if n_test < 1 or n - n_test < 1 or n < rules.min_history else n_test
        for rank, key in enumerate(mine, start=1):
            out[key] = (*pairs[key], "test" if rank > n - held else "train")
    return out


def test_random_events_follow_the_rules_on_any_partitioning(spark, tmp_path) -> None:
    rng = random.Random(3)
    rows: list[tuple[Any, ...]] = []
    for k in range(3000):
        rows.append(
            (
                rng.randrange(40),
                rng.randrange(30),
                rng.choice([10, 11, 12, 20]),
                rng.choice([None, 1.0, 3.5, 4.0, 5.0, 0.0]),
                rng.choice([None, "view", "click", "purchase"]),
                rng.choice([None, "2024-01-01", "2024-01-02"]),
                rng.choice([None, "a.csv", "b.csv", "é.csv"]),
                k + 2,
            )
        )
        if rng.random() < 0.2:  # the same event again, from a later line or file
            copy = rows[rng.randrange(len(rows))]
            rows.append((*copy[:6], rng.choice(["a.csv", "c.csv"]), 10_000 + k))
    expected = _reference(rows, RULES)
    schema = (
        "user_idx long, item_idx long, timestamp long, rating double, event_type string, "
        "ingest_date string, source_key string, line long"
    )
    events = spark.createDataFrame(rows, schema).select(
        *EVENT_COLUMNS,
        F.concat(F.lit("u"), F.col("user_idx")).alias("user_id"),
        F.concat(F.lit("i"), F.col("item_idx")).alias("item_id"),
    )
    for partitions in (1, 4):
        got_rows, summary = written(events, partitions, RULES, tmp_path / str(partitions))
        got = {
            (r.user_idx, r.item_idx): (r.timestamp, r.rating, r.event_type, r.events, r.label, r.split)
            for r in got_rows
        }
        assert got == expected
        assert all((r.user_id, r.item_id) == (f"u{r.user_idx}", f"i{r.item_idx}") for r in got_rows)
        assert summary.totals["pairs"] == len(expected)
        assert summary.totals["events"] == sum(events for _, _, _, events, _, _ in expected.values())


def test_ids_and_spark_rating_text_come_along_with_their_pair() -> None:
    table = _event_table([0, 0, 0, 0, 1], [5, 5, 5, 6, 5], [10, 20, 30, 10, 10])
    table = table.set_column(3, "rating", pa.array([1e300, 2e-320, None, None, None], pa.float64()))
    table = table.append_column("user_id", pa.array(["u0", "u0", "u0", "u0", "u1"]))
    table = table.append_column("item_id", pa.array(["i5", "i5", "i5", "i6", "i5"]))
    table = table.append_column(SPARK_RATING, pa.array(["1.0E300", "2.0E-320", None, None, None]))
    pairs = {(r["user_id"], r["item_id"]): r for r in collapse_and_split(table, RULES).to_pylist()}
    assert set(pairs) == {("u0", "i5"), ("u0", "i6"), ("u1", "i5")}
    latest_rated = pairs["u0", "i5"]  # rated at 10 and 20, viewed unrated at 30
    assert (latest_rated["rating"], latest_rated[SPARK_RATING], latest_rated["timestamp"]) == (
        2e-320,
        "2.0E-320",
        30,
    )
    assert pairs["u0", "i6"][SPARK_RATING] is None
    assert (pairs["u1", "i5"]["user_idx"], pairs["u1", "i5"]["item_idx"]) == (1, 5)
