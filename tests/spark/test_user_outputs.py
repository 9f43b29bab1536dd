"""The per-user pass's files (`glue.user_outputs`): each partition writes its users' interactions, DSSTNE
lines and item counts, and the files agree with each other and with the summary the driver collects."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from glue import storage
from glue.fm_channel import read_pairs
from glue.indexing import ids_by_index
from glue.settings import DsstneTarget
from glue.user_outputs import (
    INTERACTIONS_SCHEMA,
    UserOutputs,
    write_empty_split,
    write_partition,
    write_user_outputs,
)
from glue.user_pass import PairRules
from tests.spark.helpers import mock_s3

RULES = PairRules(4.0, ("purchase", "view"), 0.2, 2)
EVENT_SCHEMA = (
    "user_idx long, item_idx long, timestamp long, rating double, event_type string, ingest_date string, "
    "source_key string, line long, user_id string, item_id string"
)


def _rows(n: int = 2000, seed: int = 5) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        user, item = rng.randrange(50), rng.randrange(40)
        rating = rng.choice([None, 1.0, 3.5, 4.0, 5.0])
        event = rng.choice([None, "view", "click"])
        rows.append(
            (
                user,
                item,
                rng.randrange(100),
                rating,
                event,
                "2024-01-01",
                "t.csv",
                k,
                f"u,{user}",
                f"i:{item}",
            )
        )
    return rows


def _plan(root: str, target: DsstneTarget = DsstneTarget.ALL, values: bool = False) -> UserOutputs:
    return UserOutputs(
        rules=RULES,
        interactions={split: storage.join(root, f"split={split}/") for split in ("train", "test")},
        dsstne_input=storage.join(root, "dsstne_in/"),
        dsstne_output=storage.join(root, "dsstne_out/"),
        dsstne_target=target,
        dsstne_values=values,
        item_counts=storage.join(root, "counts/"),
    )


def _read(folder: Path) -> dict[str, pa.Table]:
    return {path.name: pq.read_table(path) for path in sorted(folder.glob("*.parquet"))}


def test_each_partition_writes_its_users_files(spark, tmp_path) -> None:
    events = spark.createDataFrame(_rows(), EVENT_SCHEMA)
    plan = _plan(str(tmp_path))
    summary = write_user_outputs(events, 3, plan)

    train, test = _read(tmp_path / "split=train"), _read(tmp_path / "split=test")
    assert set(train) == {f"part-{p:05d}.parquet" for p in summary.splits}
    assert all(table.schema.equals(INTERACTIONS_SCHEMA) for table in (*train.values(), *test.values()))
    users_by_file = {
        name: set(table.column("user_idx").to_pylist()) for name, table in (train | test).items()
    }
    for name, users in users_by_file.items():  # a user's rows in one partition, in both splits
        others = {u for other, found in users_by_file.items() if other != name for u in found}
        same_partition = name in train and name in test and users_by_file[name] >= users
        assert same_partition or not users & others
    rows = [r for table in (*train.values(), *test.values()) for r in table.to_pylist()]
    assert all(r["user_id"] == f"u,{r['user_idx']}" and r["item_id"] == f"i:{r['item_idx']}" for r in rows)
    totals = summary.totals
    assert totals["pairs"] == len(rows) == len({(r["user_idx"], r["item_idx"]) for r in rows})
    assert totals["train"] == sum(t.num_rows for t in train.values())
    assert totals["test"] == sum(t.num_rows for t in test.values())
    assert totals["test_users"] == len({u for t in test.values() for u in t.column("user_idx").to_pylist()})
    assert totals["positives"] == sum(r["label"] for r in rows)
    assert totals["events"] == sum(r["events"] for r in rows) <= 2000

    counts = pa.concat_tables(_read(tmp_path / "counts").values()).to_pylist()
    summed: Counter[tuple[int, str]] = Counter()
    for row in counts:
        for name in ("count", "positives", "train_count", "train_positives"):
            summed[row["item_idx"], name] += row[name]
    train_rows = [r for t in train.values() for r in t.to_pylist()]
    for item in range(40):
        assert summed[item, "count"] == sum(1 for r in rows if r["item_idx"] == item)
        assert summed[item, "positives"] == sum(r["label"] for r in rows if r["item_idx"] == item)
        assert summed[item, "train_count"] == sum(1 for r in train_rows if r["item_idx"] == item)
        assert summed[item, "train_positives"] == sum(r["label"] for r in train_rows if r["item_idx"] == item)

    for partition in summary.splits:
        name = f"part-{partition:05d}"
        lines = (tmp_path / "dsstne_in" / f"{name}.txt").read_text().splitlines()
        assert (tmp_path / "dsstne_out" / f"{name}.txt").read_bytes() == (
            tmp_path / "dsstne_in" / f"{name}.txt"
        ).read_bytes()  # target "all": the output dataset is the input's lines
        mine = train[f"{name}.parquet"].to_pylist()
        users = sorted({r["user_idx"] for r in mine})
        assert [line.split("\t")[0] for line in lines] == [f"u%2C{u}" for u in users]  # by user index
        for user, line in zip(users, lines, strict=True):
            items = sorted((r["timestamp"], r["item_idx"]) for r in mine if r["user_idx"] == user)
            assert line.split("\t")[1] == ":".join(f"i%3A{item}" for _, item in items)  # oldest first


def test_positive_target_with_values(spark, tmp_path) -> None:
    events = spark.createDataFrame(_rows(300), EVENT_SCHEMA).withColumn(
        "_rating_text", F.lit(None).cast("string")
    )
    summary = write_user_outputs(events, 2, _plan(str(tmp_path), DsstneTarget.POSITIVE, values=True))
    train = [r for t in _read(tmp_path / "split=train").values() for r in t.to_pylist()]
    lines_in = [
        line for p in sorted((tmp_path / "dsstne_in").glob("*.txt")) for line in p.read_text().splitlines()
    ]
    lines_out = [
        line for p in sorted((tmp_path / "dsstne_out").glob("*.txt")) for line in p.read_text().splitlines()
    ]
    assert [line.split("\t")[0] for line in lines_in] == [line.split("\t")[0] for line in lines_out]
    assert len(lines_in) == len({r["user_idx"] for r in train})
    elements_out = sum(len(line.split("\t")[1].split(":")) for line in lines_out if line.split("\t")[1])
    assert elements_out == sum(r["label"] for r in train) < len(train)
    rated = next(r for r in train if r["rating"] is not None)
    line = {text.split("\t")[0]: text for text in lines_in}[f"u%2C{rated['user_idx']}"]
    assert f"i%3A{rated['item_idx']},{rated['rating']}" in line
    assert summary.totals["train"] == len(train)


def test_a_partition_writes_to_s3(monkeypatch) -> None:
    columns = [c.split()[0] for c in EVENT_SCHEMA.split(", ")]
    rows = _rows(200)
    events = pa.table({name: [r[k] for r in rows] for k, name in enumerate(columns)})
    with mock_s3(monkeypatch, "curated"):
        plan = _plan("s3://curated/runs/r1/")
        summary = write_partition(events, 7, plan)
        pairs = read_pairs({split: plan.interaction_file(split, 7) for split in ("train", "test")})
        lines = storage.read_text(storage.join(plan.dsstne_input, "part-00007.txt"))
        counts = storage.read_bytes(storage.join(plan.item_counts, "part-00007.parquet"))
    assert pairs.num_rows == summary["pairs"]
    assert pairs.column("split").to_pylist().count("test") == summary["test"]
    train_users = {r["user_idx"] for r in pairs.to_pylist() if r["split"] == "train"}
    assert lines is not None
    assert len(lines.splitlines()) == len(train_users)
    assert counts is not None


def test_an_empty_split_still_has_a_readable_file(tmp_path) -> None:
    write_empty_split(str(tmp_path / "split=test"))
    table = pq.read_table(tmp_path / "split=test")
    assert table.num_rows == 0
    assert table.schema.equals(INTERACTIONS_SCHEMA)


def test_ids_by_index_give_the_same_files_as_ids_carried_by_the_events(spark, tmp_path) -> None:
    events = spark.createDataFrame(_rows(500), EVENT_SCHEMA)
    users = spark.createDataFrame(
        [(f"u,{k}", k) for k in reversed(range(50))], "user_id string, user_idx long"
    )
    items = spark.createDataFrame([(f"i:{k}", k) for k in range(40)], "item_id string, item_idx long")
    ids = {
        "user_id": ids_by_index(users, "user_id", "user_idx"),
        "item_id": ids_by_index(items, "item_id", "item_idx"),
    }
    assert ids["user_id"].to_pylist()[:3] == ["u,0", "u,1", "u,2"]
    carried = _plan(str(tmp_path / "carried"))
    looked_up = dataclasses.replace(_plan(str(tmp_path / "looked_up")), ids=ids)
    write_user_outputs(events, 3, carried)
    write_user_outputs(events.drop("user_id", "item_id"), 3, looked_up)
    for folder in ("split=train", "split=test", "dsstne_in", "dsstne_out", "counts"):
        mine = sorted(p.name for p in (tmp_path / "carried" / folder).iterdir())
        assert mine == sorted(p.name for p in (tmp_path / "looked_up" / folder).iterdir())
        for name in mine:
            assert (tmp_path / "carried" / folder / name).read_bytes() == (
                tmp_path / "looked_up" / folder / name
            ).read_bytes()


def test_ids_by_index_refuses_a_map_with_gaps(spark) -> None:
    gappy = spark.createDataFrame([("a", 0), ("b", 2)], "user_id string, user_idx long")
    with pytest.raises(ValueError, match="not 0 … 1"):
        ids_by_index(gappy, "user_id", "user_idx")


def test_the_glue_catalog_table_declares_the_written_columns() -> None:
    from stacks.preprocessing import TABLES

    arrow_to_glue = {pa.int64(): "bigint", pa.int32(): "int", pa.string(): "string", pa.float64(): "double"}
    _, columns = TABLES["interactions"]
    declared = {name: column.input_string for name, column in columns.items()}
    assert declared == {field.name: arrow_to_glue[field.type] for field in INTERACTIONS_SCHEMA}
