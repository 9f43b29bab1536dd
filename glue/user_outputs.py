"""The per-user outputs in one pass: events hashed by user once, and each partition collapses and splits
its users (`glue.user_pass`) and writes their interactions (Parquet, one file per split), their DSSTNE
lines (text) and its per-item counts (Parquet, for the popularity that the FM sampling needs), all with
pyarrow on the executor.

Why write from the pass: the rows then cross from the JVM into Python once. Handing the interactions
back to Spark to cache, write and hand to Python again for the FM channels and the DSSTNE lines moved
each of 20M rows across that boundary three more times, which cost more than the numpy work itself
(2 cores). The FM channels are a second pass (`glue.fm_channel.write_channels`) over the Parquet files
written here, since their negatives need every partition's item counts first.

Files are named after the partition (`part-00003.parquet`, `part-00003.txt`), so a retried task rewrites
the same files with the same bytes; a partition without rows of a kind writes no file of that kind. The
driver collects one summary row per partition, nothing else.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import TaskContext
from pyspark.sql import DataFrame

from glue import storage
from glue.arrow_partition import partition_table
from glue.dsstne_arrow import SPARK_RATING, user_lines
from glue.settings import DsstneTarget
from glue.spark_conf import session_conf
from glue.transforms import EVENTS, ITEM_IDX, LABEL, SPLIT, TEST, TRAIN, USER_IDX
from glue.user_pass import EVENT_COLUMNS, PAIR_IDS, PairRules, collapse_and_split
from recsys.csv_contract import EVENT_TYPE, ITEM_ID, RATING, TIMESTAMP, USER_ID

INTERACTIONS_SCHEMA = pa.schema(  # interactions/split=*/ (the split is the folder)
    [
        (USER_IDX, pa.int64()),
        (ITEM_IDX, pa.int64()),
        (USER_ID, pa.string()),
        (ITEM_ID, pa.string()),
        (TIMESTAMP, pa.int64()),
        (RATING, pa.float64()),
        (EVENT_TYPE, pa.string()),
        (EVENTS, pa.int64()),
        (LABEL, pa.int32()),
    ]
)
ITEM_COUNTS = ("count", "positives", "train_count", "train_positives")
SUMMARY_COLUMNS = ("events", "pairs", TRAIN, TEST, "test_users", "positives")
SUMMARY_SCHEMA = "partition int, " + ", ".join(f"{c} long" for c in SUMMARY_COLUMNS)

BY_USER_PASS = {
    # fewer, larger Arrow batches: a third less time handing 20M events to Python
    "spark.sql.execution.arrow.maxRecordsPerBatch": "200000",
}


def part_name(partition: int, suffix: str) -> str:
    return f"part-{partition:05d}{suffix}"


@dataclass(frozen=True)
class UserOutputs:
    """Where the pass writes (folders) and what decides the rows and the lines (broadcast once)."""

    rules: PairRules
    interactions: dict[str, str]  # split name → folder
    dsstne_input: str
    dsstne_output: str
    dsstne_target: DsstneTarget
    dsstne_values: bool
    item_counts: str  # scratch folder: per-item counts of each partition
    # The ids by index (broadcast with the plan), or None: the events carry the ids (`PAIR_IDS`) through
    # the shuffle instead, which costs more than the lookup (20M events: ~4 s of 2 cores) but has no bound.
    ids: dict[str, pa.Array] | None = None

    def interaction_file(self, split: str, partition: int) -> str:
        return storage.join(self.interactions[split], part_name(partition, ".parquet"))

    def item_count_file(self, partition: int) -> str:
        return storage.join(self.item_counts, part_name(partition, ".parquet"))


@dataclass(frozen=True)
class PassSummary:
    """What the pass wrote: its counts summed over partitions, and the splits each partition wrote."""

    totals: dict[str, int]
    splits: dict[int, tuple[str, ...]]  # partition → the splits it wrote an interactions file for


def _write_lines(lines: pa.Array, folder: str, name: str) -> None:
    text = io.StringIO()
    for line in lines.to_pylist():
        text.write(line)
        text.write("\n")
    with storage.files_for(folder) as local:
        (local / name).write_text(text.getvalue(), encoding="utf-8", newline="\n")


def write_empty_split(folder: str) -> None:
    """A split without rows still gets a (row-less) file, so readers of its folder get an empty table."""
    storage.write_parquet(INTERACTIONS_SCHEMA.empty_table(), folder, part_name(0, ".parquet"))


def item_counts(pairs: pa.Table) -> pa.Table:
    """Per item of `pairs`: pairs, positives, train pairs, train positives (ITEM_COUNTS)."""
    items = pairs.column(ITEM_IDX).to_numpy()
    label = pairs.column(LABEL).to_numpy().astype(np.int64)
    train = pc.equal(pairs.column(SPLIT), TRAIN).to_numpy(zero_copy_only=False).astype(np.int64)
    size = int(items.max()) + 1 if items.size else 0
    counts = [
        np.bincount(items, weights=weights, minlength=size).astype(np.int64)
        for weights in (None, label, train, train * label)
    ]
    present = np.flatnonzero(counts[0])
    columns = {name: count[present] for name, count in zip(ITEM_COUNTS, counts, strict=True)}
    return pa.table({ITEM_IDX: pa.array(present, pa.int64()), **columns})


def write_partition(events: pa.Table, partition: int, plan: UserOutputs) -> dict[str, int]:
    """Collapse and split one partition's events (all events of each of its users) and write its files;
    its summary (SUMMARY_COLUMNS)."""
    pairs = collapse_and_split(events, plan.rules)
    if plan.ids is not None:
        for name, index in ((USER_ID, USER_IDX), (ITEM_ID, ITEM_IDX)):
            pairs = pairs.append_column(name, pc.take(plan.ids[name], pairs.column(index)))
    is_test = pc.equal(pairs.column(SPLIT), TEST).to_numpy(zero_copy_only=False)
    splits = {TRAIN: pairs.filter(pa.array(~is_test)), TEST: pairs.filter(pa.array(is_test))}
    for name, rows in splits.items():
        if rows.num_rows:
            table = rows.select(INTERACTIONS_SCHEMA.names).cast(INTERACTIONS_SCHEMA)
            storage.write_parquet(table, plan.interactions[name], part_name(partition, ".parquet"))
    train = splits[TRAIN]
    if train.num_rows:
        lines_in = user_lines(train, plan.dsstne_values, positives_only=False)
        lines_out = lines_in  # target "all": the output dataset is the input's lines
        if plan.dsstne_target is not DsstneTarget.ALL:
            lines_out = user_lines(train, plan.dsstne_values, positives_only=True)
        _write_lines(lines_in, plan.dsstne_input, part_name(partition, ".txt"))
        _write_lines(lines_out, plan.dsstne_output, part_name(partition, ".txt"))
    if pairs.num_rows:
        storage.write_parquet(item_counts(pairs), plan.item_counts, part_name(partition, ".parquet"))
    users = pairs.column(USER_IDX).to_numpy()
    return {
        "events": int(pc.sum(pairs.column(EVENTS)).as_py() or 0),
        "pairs": pairs.num_rows,
        TRAIN: train.num_rows,
        TEST: int(is_test.sum()),
        "test_users": int(np.unique(users[is_test]).size),
        "positives": int(pc.sum(pairs.column(LABEL)).as_py() or 0),
    }


def _partition(batches: Iterable[pa.RecordBatch], plan: UserOutputs) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: one partition's events in, its summary row out."""
    events = partition_table(batches)
    if events is None:
        return
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    summary = write_partition(events, partition, plan)
    yield pa.RecordBatch.from_pydict(
        {"partition": pa.array([partition], pa.int32())}
        | {name: pa.array([value], pa.int64()) for name, value in summary.items()}
    )


def write_user_outputs(events: DataFrame, partitions: int, plan: UserOutputs) -> PassSummary:
    """Hash complete, indexed `events` (EVENT_COLUMNS, the ids unless the plan has them by index, and
    SPARK_RATING when DSSTNE values are kept) by user index into `partitions` and write each partition's
    outputs (module docstring). The folders are emptied first, so they never mix files of two attempts."""
    for folder in (*plan.interactions.values(), plan.dsstne_input, plan.dsstne_output, plan.item_counts):
        storage.delete_tree(folder)
    columns = [*EVENT_COLUMNS, *(PAIR_IDS if plan.ids is None else ())]
    columns += [SPARK_RATING] if plan.dsstne_values else []
    by_user = events.select(*columns).repartition(partitions, USER_IDX)
    spark = events.sparkSession
    shared = spark.sparkContext.broadcast(plan)

    def body(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _partition(batches, shared.value)

    with session_conf(spark, BY_USER_PASS):
        rows = by_user.mapInArrow(body, SUMMARY_SCHEMA).collect()
    shared.unpersist()
    totals = {name: sum(int(r[name]) for r in rows) for name in SUMMARY_COLUMNS}
    splits = {
        int(r["partition"]): tuple(name for name in (TRAIN, TEST) if r[name] > 0)
        for r in sorted(rows, key=lambda r: int(r["partition"]))
    }
    return PassSummary(totals=totals, splits=splits)
