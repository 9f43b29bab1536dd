"""FM channels as recordIO-protobuf, written by the executors, one set of shards per Spark partition.

Why on the executors: the channel can be far larger than the driver's memory, and the encoding (numpy,
batched, in `recsys.recordio`) is the expensive part. Each partition arrives as Arrow batches
(`mapInArrow`), becomes one CSR matrix, and is written by `recsys.recordio.write_sharded` as
`part-<partition>-<shard>.pbr` files of at most `max_bytes` each; the task returns one summary row (its
files, their sizes, its record and positive counts), which is all the driver collects.

Rows are spread over partitions by a hash of their content and sorted by it within each partition, so
the files hold no user- or time-ordered runs (FM trains in file order) and a retried task rewrites the
very same bytes under the same names.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue import storage
from glue.features import CATEGORY_IDXS, FeatureLayout
from glue.transforms import ITEM_IDX, LABEL, USER_IDX
from recsys.recordio import write_sharded
from recsys.recordio.writer import SHARD_SUFFIX

CONTENT_TYPE = "application/x-recordio-protobuf"
TARGET_PARTITION_BYTES = 64 * 2**20  # aim per Spark partition; files are still cut at max_bytes
RECORD_BYTES_ESTIMATE = 48  # a two-key record is 40-50 bytes framed; categories add ~5 bytes each
SUMMARY_SCHEMA = "partition int, files array<string>, sizes array<long>, records long, positives long"


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


def rows_to_csr(table: pa.Table, layout: FeatureLayout) -> tuple[sp.csr_matrix, np.ndarray]:
    """CSR rows (user, n_users + item, category offsets…; all 1.0) and float32 labels from Arrow columns."""
    users = table.column(USER_IDX).to_numpy().astype(np.int64)
    items = table.column(ITEM_IDX).to_numpy().astype(np.int64)
    labels = table.column(LABEL).to_numpy().astype(np.float32)
    categories = table.column(CATEGORY_IDXS).combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(categories), 0).to_numpy().astype(np.int64)
    values = categories.flatten().to_numpy().astype(np.int64)
    n = users.size
    for name, array, bound in (("user", users, layout.n_users), ("item", items, layout.n_items)):
        if array.size and (array.min() < 0 or array.max() >= bound):
            raise ValueError(f"{name} index outside [0, {bound})")
    if values.size and (values.min() < 0 or values.max() >= layout.n_categories):
        raise ValueError(f"category index outside [0, {layout.n_categories})")

    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(2 + lengths, out=indptr[1:])
    starts = indptr[:-1]
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    indices[starts] = users
    indices[starts + 1] = layout.item_offset + items
    if values.size:
        row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        first = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=first[1:])
        rank = np.arange(values.size, dtype=np.int64) - first[row_of]
        indices[starts[row_of] + 2 + rank] = layout.category_offset + values
    data = np.ones(indices.size, dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(n, layout.feature_dim))
    return matrix, labels


def _write_partition(
    batches: Iterable[pa.RecordBatch], uri: str, layout: FeatureLayout, max_bytes: int
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: encode this partition's rows, write its shards, yield one summary row."""
    table = pa.Table.from_batches(list(batches))
    if table.num_rows == 0:
        return
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    prefix = f"part-{partition:05d}"
    matrix, labels = rows_to_csr(table, layout)
    if storage.is_s3(uri):
        scratch = Path(tempfile.mkdtemp(prefix="fm-channel-"))
        try:
            paths = write_sharded(scratch, matrix, labels, layout.feature_dim, max_bytes, prefix)
            for path in paths:
                storage.put_file(path, storage.join(uri, path.name))
            sizes = [path.stat().st_size for path in paths]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    else:
        folder = storage.local_path(uri)
        for stale in folder.glob(f"{prefix}-*{SHARD_SUFFIX}"):  # a failed earlier attempt of this task
            stale.unlink()
        paths = write_sharded(folder, matrix, labels, layout.feature_dim, max_bytes, prefix)
        sizes = [path.stat().st_size for path in paths]
    yield pa.RecordBatch.from_pydict(
        {
            "partition": pa.array([partition], pa.int32()),
            "files": pa.array([[p.name for p in paths]], pa.list_(pa.string())),
            "sizes": pa.array([sizes], pa.list_(pa.int64())),
            "records": pa.array([table.num_rows], pa.int64()),
            "positives": pa.array([int((labels > 0).sum())], pa.int64()),
        }
    )


def write_channel(
    rows: DataFrame, uri: str, layout: FeatureLayout, seed: int, partitions: int, max_bytes: int
) -> ChannelSummary:
    """Write `rows` (user_idx, item_idx, label, category_idxs) as the FM channel folder `uri`.

    The folder is emptied first, so a channel never mixes shards of two attempts.
    """
    storage.delete_tree(uri)
    if not storage.is_s3(uri):
        storage.local_path(uri).mkdir(parents=True, exist_ok=True)
    order = F.xxhash64(F.lit(seed), F.col(USER_IDX), F.col(ITEM_IDX), F.col(LABEL), F.col(CATEGORY_IDXS))
    shuffled = (
        rows.select(USER_IDX, ITEM_IDX, LABEL, CATEGORY_IDXS)
        .withColumn("_order", order)
        .repartition(partitions, "_order")
        .sortWithinPartitions("_order", USER_IDX, ITEM_IDX)
        .drop("_order")
    )

    def body(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        return _write_partition(batches, uri, layout, max_bytes)

    summaries = sorted(shuffled.mapInArrow(body, SUMMARY_SCHEMA).collect(), key=lambda r: r["partition"])
    files = tuple(name for s in summaries for name in s["files"])
    sizes = tuple(int(size) for s in summaries for size in s["sizes"])
    return ChannelSummary(
        files=files,
        sizes=sizes,
        records=sum(int(s["records"]) for s in summaries),
        positives=sum(int(s["positives"]) for s in summaries),
    )
