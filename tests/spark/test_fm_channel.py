"""The FM channel writer samples each split's negatives inside the user-partitioned pass: the channels hold
every interaction of their split, N negatives per positive that are never the user's own items (in either
split), categories per item, and the same bytes whatever partitioning the input came with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyspark.sql.functions as F

from glue.features import FeatureLayout
from glue.fm_channel import ChannelPlan, collect_item_categories, write_channels
from glue.sampling import collect_ranges, item_ranges
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


def test_channels_hold_the_split_and_its_negatives(spark, tmp_path) -> None:
    interactions = _interactions(spark).cache()
    rows = interactions.collect()
    touched = {(r.user_idx, r.item_idx) for r in rows}
    summaries = write_channels(interactions, _plan(spark, interactions, tmp_path / "a"), partitions=3)
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

    again = write_channels(
        interactions.repartition(5), _plan(spark, interactions, tmp_path / "b"), partitions=3
    )
    other = write_channels(interactions, _plan(spark, interactions, tmp_path / "c", seed=5), partitions=3)
    assert again == summaries
    for split in ("train", "test"):
        assert _read(tmp_path / "b" / split)[1] == _read(tmp_path / "a" / split)[1]  # the same bytes
    assert sorted(_read(tmp_path / "c" / "train")[0]) != sorted(_read(tmp_path / "a" / "train")[0])
    assert other["train"].positives == summaries["train"].positives
