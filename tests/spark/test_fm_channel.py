"""The FM channel writer samples each split's negatives in one task per user partition: the channels hold
every interaction of their split, N negatives per positive that are never the user's own items (in either
split), categories per item, and the same bytes whatever order each partition's rows came in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark.sql.functions as F
import pytest

from glue import fm_channel
from glue.features import FeatureLayout
from glue.fm_channel import ChannelPlan, collect_item_categories, content_order, write_channels
from glue.sampling import Interacted, Ranges, collect_ranges, item_ranges, pick_negatives
from recsys.recordio import read_sparse_records

N_USERS, N_ITEMS, N_CATEGORIES = 30, 50, 3


def _interactions(spark):
    rng = np.random.default_rng(8)
    rows = set()
    for user in range(N_USERS):
        for item in rng.choice(N_ITEMS - 10, size=int(rng.integers(2, 12)), replace=False):
            rows.add((user, int(item), int(rng.integers(0, 2)), "test" if rng.random() < 0.25 else "train"))
    return spark.createDataFrame(sorted(rows), "user_idx long, item_idx long, label int, split string")


def _plan(spark, interactions, folder: Path, seed: int = 4) -> ChannelPlan:
    counts = (
        interactions.where("split = 'train'").groupBy("item_idx").agg(F.count(F.lit(1)).alias("train_count"))
    )
    categories = spark.createDataFrame(
        [(i, [i % N_CATEGORIES, (i + 1) % N_CATEGORIES] if i % 2 else []) for i in range(N_ITEMS)],
        "item_idx long, category_idxs array<int>",
    )
    return ChannelPlan(
        uris={"train": str(folder / "train"), "test": str(folder / "test")},
        layout=FeatureLayout(N_USERS, N_ITEMS, N_CATEGORIES),
        ranges=collect_ranges(item_ranges(counts, 0.75)),
        categories=collect_item_categories(categories, N_ITEMS),
        seed=seed,
        per_positive=2,
        max_bytes=1000,
    )


def _read(folder: Path) -> tuple[list[tuple[int, int, float, tuple[int, ...]]], dict[str, bytes]]:
    records, files = [], {}
    for path in sorted(folder.glob("*.pbr")):
        files[path.name] = path.read_bytes()
        with path.open("rb") as stream:
            rows, labels, _ = read_sparse_records(stream)
        for k in range(rows.shape[0]):
            keys = rows.indices[rows.indptr[k] : rows.indptr[k + 1]]
            extra = tuple(int(c) - N_USERS - N_ITEMS for c in keys[2:])
            records.append((int(keys[0]), int(keys[1]) - N_USERS, float(labels[k]), extra))
    return records, files


def _sources(rows, folder: Path, partitions: int, seed: int = 0) -> dict[int, dict[str, str]]:
    """The rows as the per-user pass writes them: users hashed into `partitions`, one Parquet file per
    split and partition (rows in an order drawn from `seed`)."""
    order = np.random.default_rng(seed).permutation(len(rows))
    sources: dict[int, dict[str, str]] = {}
    for partition in range(partitions):
        for split in ("train", "test"):
            mine = [
                rows[k]
                for k in order
                if rows[k].user_idx % partitions == partition and rows[k].split == split
            ]
            if not mine:
                continue
            path = folder / f"split={split}" / f"part-{partition:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table = {
                "user_idx": pa.array([r.user_idx for r in mine], pa.int64()),
                "item_idx": pa.array([r.item_idx for r in mine], pa.int64()),
                "label": pa.array([r.label for r in mine], pa.int32()),
            }
            pq.write_table(pa.table(table), path)
            sources.setdefault(partition, {})[split] = str(path)
    return sources


def test_channels_hold_the_split_and_its_negatives(spark, tmp_path) -> None:
    interactions = _interactions(spark).cache()
    rows = interactions.collect()
    touched = {(r.user_idx, r.item_idx) for r in rows}
    plan = _plan(spark, interactions, tmp_path / "a")
    summaries = write_channels(spark, _sources(rows, tmp_path / "in", 3), plan)
    for split in ("train", "test"):
        records, files = _read(tmp_path / "a" / split)
        summary = summaries[split]
        assert sorted(files) == sorted(summary.files)
        assert summary.records == len(records)
        own = {(r.user_idx, r.item_idx): float(r.label) for r in rows if r.split == split}
        positives = sum(1 for label in own.values() if label)
        assert summary.positives == positives
        kept = [(u, i) for u, i, label, _ in records if (u, i) in own]
        assert sorted(kept) == sorted(own)  # every interaction of the split, once
        negatives = [(u, i) for u, i, label, _ in records if (u, i) not in own]
        assert not set(negatives) & touched  # never an item of the user, train or test
        assert all(label == 0.0 for u, i, label, _ in records if (u, i) not in own)
        assert 0.9 * 2 * positives <= len(negatives) <= 2 * positives
        for _, item, _, extra in records:
            assert extra == (tuple(sorted({item % 3, (item + 1) % 3})) if item % 2 else ())

    other = write_channels(
        spark, _sources(rows, tmp_path / "in", 3), _plan(spark, interactions, tmp_path / "c", seed=5)
    )
    assert sorted(_read(tmp_path / "c" / "train")[0]) != sorted(_read(tmp_path / "a" / "train")[0])
    assert other["train"].positives == summaries["train"].positives


def test_bytes_depend_only_on_which_rows_each_partition_holds(spark, tmp_path) -> None:
    interactions = _interactions(spark).cache()
    rows = interactions.collect()
    first = write_channels(
        spark, _sources(rows, tmp_path / "in-a", 3), _plan(spark, interactions, tmp_path / "a")
    )
    reordered = _sources(rows, tmp_path / "in-b", 3, seed=1)  # the same partitions, rows in another order
    again = write_channels(spark, reordered, _plan(spark, interactions, tmp_path / "b"))
    fewer = write_channels(
        spark, _sources(rows, tmp_path / "in-c", 2), _plan(spark, interactions, tmp_path / "c")
    )
    assert again == first
    for split in ("train", "test"):
        assert _read(tmp_path / "b" / split)[1] == _read(tmp_path / "a" / split)[1]  # the same bytes
        assert sorted(_read(tmp_path / "c" / split)[0]) == sorted(_read(tmp_path / "a" / split)[0])
        assert fewer[split].records == first[split].records
        assert {name.split("-")[1] for name in fewer[split].files} == {"00000", "00001"}


def test_a_partition_with_one_split_and_no_partitions_at_all(spark, tmp_path) -> None:
    interactions = _interactions(spark).cache()
    rows = [r for r in interactions.collect() if r.split == "train"]
    summaries = write_channels(
        spark, _sources(rows, tmp_path / "in", 2), _plan(spark, interactions, tmp_path / "a")
    )
    assert summaries["test"].records == 0
    assert not summaries["test"].files
    assert summaries["train"].records == len(_read(tmp_path / "a" / "train")[0]) > len(rows)
    assert (tmp_path / "a" / "test").is_dir()
    nothing = write_channels(spark, {}, _plan(spark, interactions, tmp_path / "b"))
    assert nothing["train"].records == nothing["test"].records == 0


@pytest.mark.parametrize("limit", [0, 2**20])  # sorted keys; the bitmap
def test_pick_negatives_skips_own_items_and_keeps_the_first_survivors(limit) -> None:
    rng = np.random.default_rng(2)
    ranges = Ranges(items=np.array([0, 2, 3, 5, 8, 9]), hi=np.cumsum([5, 1, 9, 2, 30, 4]))
    users = rng.integers(3, 40, size=300)
    items = rng.integers(0, 12, size=300)
    positives = np.unique(users)[::2]  # some users sample, one has no pair at all
    positives = np.append(positives, 99)
    positions = rng.integers(0, ranges.total, size=(positives.size, 10))
    interacted = Interacted.of(users, items, ranges, limit=limit)
    assert (interacted.bits is None) == (limit == 0)
    rows, user, item, draw = pick_negatives(positives, positions, interacted, ranges, 3)
    own = set(zip(users.tolist(), items.tolist(), strict=True))
    expected = []
    for k, u in enumerate(positives.tolist()):
        drawn = ranges.items[np.searchsorted(ranges.hi, positions[k], side="right")]
        fresh = [(j, int(i)) for j, i in enumerate(drawn) if (u, int(i)) not in own]
        expected += [(k, u, i, j) for j, i in fresh[:3]]
    got = list(zip(rows.tolist(), user.tolist(), item.tolist(), draw.tolist(), strict=True))
    assert got == expected


def test_content_order_is_the_lexsort_order_of_the_rows(monkeypatch) -> None:
    rng = np.random.default_rng(4)
    users = rng.integers(0, 20, size=500)
    items = rng.integers(0, 30, size=500)  # duplicates: equal rows share a hash
    labels = rng.integers(0, 2, size=500).astype(np.float32)

    def rows(order: np.ndarray) -> list[tuple[int, int, float]]:
        return list(zip(users[order].tolist(), items[order].tolist(), labels[order].tolist(), strict=True))

    def lexsorted() -> list[tuple[int, int, float]]:
        key = fm_channel._mix(np.full(users.size, 9, dtype=np.uint64) ^ users.astype(np.uint64))
        key = fm_channel._mix(key ^ items.astype(np.uint64))
        key = fm_channel._mix(key ^ labels.astype(np.uint64))
        return rows(np.lexsort((items, users, key)))

    assert rows(content_order(9, users, items, labels)) == lexsorted()
    monkeypatch.setattr(fm_channel, "_mix", lambda x: x & np.uint64(3))  # different rows share hashes
    assert rows(content_order(9, users, items, labels)) == lexsorted()
