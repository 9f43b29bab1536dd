"""FM channels as recordIO-protobuf, written by the executors, one set of shards per Spark partition.

Why on the executors: the channels can be far larger than the driver's memory, and the encoding (numpy,
batched, in `recsys.recordio`) is the expensive part. The interactions come partitioned by user, as the
per-user pass (`glue.user_outputs`) wrote them: one Parquet file per split and partition. One Spark task
per partition reads its files and, for each split, draws its negatives (candidates hashed with numpy,
`glue.sampling.candidate_positions`, then `pick_negatives`: all of a user's pairs are in the partition,
so the own-item check is local), builds one CSR matrix (item categories from a broadcast table bounded
by the catalog), and writes it with `recsys.recordio.write_sharded` as `part-<partition>-<shard>.pbr`
files of at most `max_bytes` each. Each task returns one summary per split (its files, their sizes, its
record and positive counts), which is all the driver collects; the negatives never become Spark rows.

Within a partition, rows are ordered by a seeded hash of their content, so the files hold no user- or
time-ordered runs (FM trains in file order), and a retried task rewrites the very same bytes under the
same names (the order does not depend on the order in which the shuffle delivered the rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession

from glue import storage
from glue.features import CATEGORY_IDXS, FeatureLayout
from glue.sampling import I64, Interacted, Ranges, candidate_positions, draws_per_positive, pick_negatives
from glue.transforms import ITEM_IDX, LABEL, SPLIT, USER_IDX
from recsys.recordio import write_sharded
from recsys.recordio.writer import SHARD_SUFFIX

CONTENT_TYPE = "application/x-recordio-protobuf"
TARGET_PARTITION_BYTES = 256 * 2**20  # aim per Spark partition; files are still cut at max_bytes
RECORD_BYTES_ESTIMATE = 48  # a two-key record is 40-50 bytes framed; categories add ~5 bytes each


@dataclass(frozen=True)
class ChannelSummary:
    """What one channel holds: file names (relative to the channel folder), sizes, counts."""

    files: tuple[str, ...]
    sizes: tuple[int, ...]
    records: int
    positives: int

    @property
    def bytes(self) -> int:
        return sum(self.sizes)


def partitions_for(rows: int, mean_categories: float = 0.0) -> int:
    """Spark partitions for a channel of `rows` records: about TARGET_PARTITION_BYTES of output each."""
    estimate = rows * (RECORD_BYTES_ESTIMATE + 5 * mean_categories)
    return max(1, math.ceil(estimate / TARGET_PARTITION_BYTES))


@dataclass(frozen=True)
class ItemCategories:
    """Each item's category indices as CSR arrays (item k: indices[indptr[k]:indptr[k + 1]]), bounded by
    the catalog: broadcast to the executors instead of joined with the channel rows."""

    indptr: I64
    indices: I64


def collect_item_categories(item_categories: DataFrame | None, n_items: int) -> ItemCategories:
    """(item_idx, category_idxs) rows as `ItemCategories` for items 0 … n_items - 1 (none: no categories)."""
    lengths = np.zeros(n_items, dtype=np.int64)
    per_item: dict[int, list[int]] = {}
    if item_categories is not None:
        for row in item_categories.select(ITEM_IDX, CATEGORY_IDXS).collect():
            per_item[int(row[ITEM_IDX])] = [int(c) for c in row[CATEGORY_IDXS] or []]
    for item, values in per_item.items():
        if not 0 <= item < n_items:
            raise ValueError(f"item index {item} outside [0, {n_items}) in the item categories")
        lengths[item] = len(values)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.zeros(int(indptr[-1]), dtype=np.int64)
    for item, values in per_item.items():
        indices[indptr[item] : indptr[item + 1]] = sorted(values)
    return ItemCategories(indptr=indptr, indices=indices)


def fm_matrix(users: I64, items: I64, categories: ItemCategories, layout: FeatureLayout) -> sp.csr_matrix:
    """CSR rows: the user one-hot, item_offset + item, then category_offset + each of the item's
    categories (ascending); every value 1.0."""
    for name, array, bound in (("user", users, layout.n_users), ("item", items, layout.n_items)):
        if array.size and (array.min() < 0 or array.max() >= bound):
            raise ValueError(f"{name} index outside [0, {bound})")
    if categories.indices.size and (
        categories.indices.min() < 0 or categories.indices.max() >= layout.n_categories
    ):
        raise ValueError(f"category index outside [0, {layout.n_categories})")
    extra = np.diff(categories.indptr)[items]
    indptr = np.zeros(users.size + 1, dtype=np.int64)
    np.cumsum(2 + extra, out=indptr[1:])
    starts = indptr[:-1]
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    indices[starts] = users
    indices[starts + 1] = layout.item_offset + items
    total = int(extra.sum())
    if total:
        row = np.repeat(np.arange(users.size, dtype=np.int64), extra)
        rank = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(extra) - extra, extra)
        source = categories.indptr[items][row] + rank
        indices[starts[row] + 2 + rank] = layout.category_offset + categories.indices[source]
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(users.size, layout.feature_dim))


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash (wrapping arithmetic on uint64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def content_order(seed: int, users: I64, items: I64, labels: npt.NDArray[np.float32]) -> I64:
    """Row order by a seeded hash of (user, item, label), ties by user then item: no user-ordered runs, and
    the same rows give the same order whatever order they came in.

    Sorting the hash alone is ~3x cheaper than the three-key lexsort and gives the same rows in the same
    order unless two different rows share a hash (equal rows are interchangeable): only then the lexsort.
    """
    key = _mix(np.full(users.size, seed & (2**64 - 1), dtype=np.uint64) ^ users.astype(np.uint64))
    key = _mix(key ^ items.astype(np.uint64))
    key = _mix(key ^ labels.astype(np.uint64))
    order = np.argsort(key)
    tied = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    first, second = order[tied], order[tied + 1]
    if (
        (users[first] != users[second]).any()
        or (items[first] != items[second]).any()
        or (labels[first] != labels[second]).any()
    ):
        return np.lexsort((items, users, key)).astype(np.int64)
    return order.astype(np.int64, copy=False)


def _write_files(uri: str, prefix: str, matrix: sp.csr_matrix, labels: npt.NDArray[np.float32],
                 feature_dim: int, max_bytes: int) -> tuple[list[str], list[int]]:  # fmt: skip
    """Write one partition's shards of one channel; (file names, sizes)."""
    with storage.files_for(uri) as folder:
        for stale in folder.glob(f"{prefix}-*{SHARD_SUFFIX}"):  # a failed earlier attempt of this task
            stale.unlink()
        paths = write_sharded(folder, matrix, labels, feature_dim, max_bytes, prefix)
        sizes = [path.stat().st_size for path in paths]
    return [p.name for p in paths], sizes


@dataclass(frozen=True)
class ChannelPlan:
    """What every task needs to sample and encode its partition (broadcast once)."""

    uris: dict[str, str]  # split name → channel folder
    layout: FeatureLayout
    ranges: Ranges
    categories: ItemCategories
    seed: int
    per_positive: int
    max_bytes: int


def partition_channels(table: pa.Table, partition: int, plan: ChannelPlan) -> list[dict[str, Any]]:
    """One partition's rows (USER_IDX, ITEM_IDX, LABEL, SPLIT; every row of each of its users) of each
    split plus their negatives, encoded and written; one summary per split with rows here."""
    prefix = f"part-{partition:05d}"
    users = table.column(USER_IDX).to_numpy().astype(np.int64, copy=False)
    items = table.column(ITEM_IDX).to_numpy().astype(np.int64, copy=False)
    labels = table.column(LABEL).to_numpy().astype(np.int64, copy=False)
    draws = draws_per_positive(plan.per_positive) if plan.ranges.total else 0
    # every split's pairs: a negative is never an own item
    interacted = Interacted.of(users, items, plan.ranges) if draws and (labels == 1).any() else None
    summaries = []
    for name, uri in plan.uris.items():
        mine = pc.fill_null(pc.equal(table.column(SPLIT), name), False)
        mask = mine.to_numpy(zero_copy_only=False)
        if not mask.any():
            continue
        positive = mask & (labels == 1)
        new_users = new_items = np.zeros(0, np.int64)
        if interacted is not None and positive.any():
            pos_users = users[positive]
            positions = candidate_positions(
                plan.seed, name, pos_users, items[positive], plan.ranges.total, draws
            )
            _, new_users, new_items, _ = pick_negatives(
                pos_users, positions, interacted, plan.ranges, plan.per_positive
            )
        rows_u = np.concatenate([users[mask], new_users])
        rows_i = np.concatenate([items[mask], new_items])
        rows_l = np.concatenate([labels[mask].astype(np.float32), np.zeros(new_users.size, np.float32)])
        order = content_order(plan.seed, rows_u, rows_i, rows_l)
        matrix = fm_matrix(rows_u[order], rows_i[order], plan.categories, plan.layout)
        names, sizes = _write_files(
            uri, prefix, matrix, rows_l[order], plan.layout.feature_dim, plan.max_bytes
        )
        summaries.append(
            {
                "channel": name,
                "partition": partition,
                "files": names,
                "sizes": sizes,
                "records": int(rows_u.size),
                "positives": int((rows_l > 0).sum()),
            }
        )
    return summaries


def read_pairs(files: Mapping[str, str]) -> pa.Table:
    """The (USER_IDX, ITEM_IDX, LABEL, SPLIT) rows of one partition's interaction files (split → file)."""
    tables = []
    for split, uri in files.items():
        table = storage.read_parquet(uri, columns=[USER_IDX, ITEM_IDX, LABEL])
        tables.append(table.append_column(SPLIT, pa.repeat(pa.scalar(split, pa.string()), table.num_rows)))
    return pa.concat_tables(tables)


def write_channels(
    spark: SparkSession, sources: Mapping[int, Mapping[str, str]], plan: ChannelPlan
) -> dict[str, ChannelSummary]:
    """Write one FM channel per split: each split's rows plus up to `per_positive` sampled negatives for
    each of its positives (salt = the split name), one Spark task per partition of `sources`
    (partition → its interaction files, split → Parquet file; each partition must hold every row of each
    of its users, as `glue.user_outputs` writes them: the own-item check is local). Files are named after
    the partitions and their bytes depend only on which rows each partition holds.

    The channel folders are emptied first, so a channel never mixes shards of two attempts.
    """
    for uri in plan.uris.values():
        storage.delete_tree(uri)
        if not storage.is_s3(uri):
            storage.local_path(uri).mkdir(parents=True, exist_ok=True)
    shared = spark.sparkContext.broadcast(plan)

    def body(tasks: Iterable[tuple[int, Mapping[str, str]]]) -> Iterator[dict[str, Any]]:
        for partition, files in tasks:
            yield from partition_channels(read_pairs(files), partition, shared.value)

    work = sorted(sources.items())
    summaries: list[dict[str, Any]] = []
    if work:
        tasks = spark.sparkContext.parallelize(work, len(work))
        summaries = sorted(tasks.mapPartitions(body).collect(), key=lambda s: (s["channel"], s["partition"]))
    shared.unpersist()
    out = {}
    for name in plan.uris:
        mine = [s for s in summaries if s["channel"] == name]
        out[name] = ChannelSummary(
            files=tuple(f for s in mine for f in s["files"]),
            sizes=tuple(int(size) for s in mine for size in s["sizes"]),
            records=sum(int(s["records"]) for s in mine),
            positives=sum(int(s["positives"]) for s in mine),
        )
    return out
