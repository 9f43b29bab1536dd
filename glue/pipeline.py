"""One preprocessing run, end to end: inputs → clean → ids → split → outputs. Shared by the Glue entry
script (`glue.job`) and the local runner (`recsys preprocess`), so both produce the same files.

Nothing is written until the inputs are known to hold at least one usable interaction: an empty or
all-invalid input fails with `EmptyInputError` and leaves no run folder behind.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue import outputs, storage
from glue.dsstne_arrow import SPARK_RATING
from glue.dsstne_text import spark_rating_text
from glue.features import FeatureLayout
from glue.fm_channel import ChannelPlan, partitions_for, write_channels
from glue.indexing import check_map
from glue.item_tables import build_item_tables, row_counts
from glue.manifest import build_manifest
from glue.maps import BROADCAST_IDS, RunMaps, build_maps
from glue.readers import InputError, Inputs
from glue.sampling import collect_ranges, item_ranges
from glue.settings import PreprocessSettings
from glue.transforms import (
    ID,
    ID_KIND,
    ITEM_IDX,
    ITEMS,
    TEST,
    TRAIN,
    USER_IDX,
    USERS,
    drop_incomplete,
    id_census,
    normalise_transactions,
)
from glue.user_outputs import (
    PassSummary,
    UserOutputs,
    write_empty_split,
    write_user_outputs,
)
from glue.user_pass import PairRules
from recsys import contracts
from recsys.csv_contract import ITEM_ID, TIMESTAMP, USER_ID

PREVIOUS_AUTO = "auto"
PREVIOUS_NONE = "none"
LOG = logging.getLogger(__name__)


class EmptyInputError(InputError):
    """No usable interaction in the inputs: the run stops before writing anything."""


class RunExistsError(ValueError):
    """The run id names a completed run; runs are never overwritten."""


@dataclass
class RunResult:
    """What a run wrote (its folder) and its two JSON documents."""

    layout: outputs.RunLayout
    manifest: dict[str, Any]
    stats: dict[str, Any]


@dataclass
class _Clock:
    """Seconds per stage, for stats.json; each stage's end is logged with what it did (progress)."""

    started: float = field(default_factory=time.perf_counter)
    last: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)

    def lap(self, name: str, done: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.last, 3)
        self.last = now
        LOG.info("%-8s %6.1f s  %s", name, self.stages[name], done)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


class _ToStderr(logging.Handler):
    """Writes to the current `sys.stderr` (looked up per record, so a redirected stderr gets the lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr, flush=True)


def show_progress() -> None:
    """Print each stage's end on stderr (`recsys preprocess`, the Glue job's log); idempotent."""
    if not any(isinstance(h, _ToStderr) for h in LOG.handlers):
        handler = _ToStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s preprocess %(message)s", "%H:%M:%S"))
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)


def resolve_previous(out: str, previous: str) -> str | None:
    """The root of the run whose maps this run extends: "auto" = the latest complete run under `out`."""
    if previous == PREVIOUS_NONE:
        return None
    if previous == PREVIOUS_AUTO:
        run_id = outputs.latest_run(out)
        return outputs.RunLayout(out, run_id).root if run_id else None
    return previous


def _quality(census: DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Rows, rows missing each required value, rows without a rating, and the distinct user and item ids of
    complete rows (USER_ID, ITEM_ID → how many), from the id census (`glue.transforms.id_census`) in one
    job; refuses an input with no complete row (`EmptyInputError`) before anything is written."""
    users = F.col(ID_KIND) == USERS
    items = F.col(ID_KIND) == ITEMS
    null_id = F.col(ID).isNull()
    seen = F.col("complete") > 0
    quality = row_counts(
        census.agg(
            F.sum(F.when(users, F.col("rows"))).alias("rows"),
            F.sum(F.when(users & null_id, F.col("rows"))).alias(f"missing_{USER_ID}"),
            F.sum(F.when(items & null_id, F.col("rows"))).alias(f"missing_{ITEM_ID}"),
            F.sum(F.when(users, F.col("missing_timestamp"))).alias(f"missing_{TIMESTAMP}"),
            F.sum(F.when(users, F.col("rows") - F.col("complete"))).alias("incomplete"),
            F.sum(F.when(users, F.col("without_rating"))).alias("without_rating"),
            F.count(F.when(users & seen, True)).alias(USER_ID),
            F.count(F.when(items & seen, True)).alias(ITEM_ID),
        ).first()
    )
    distinct = {name: quality.pop(name) for name in (USER_ID, ITEM_ID)}
    if quality["rows"] == 0:
        raise EmptyInputError("the transactions are empty: no rows to preprocess, nothing was written")
    if quality["incomplete"] == quality["rows"]:
        raise EmptyInputError(
            f"no usable transactions: all {quality['rows']} rows lack a user id, an item id or a valid "
            f"timestamp (user {quality['missing_user_id']}, item {quality['missing_item_id']}, timestamp "
            f"{quality['missing_timestamp']}); nothing was written"
        )
    return quality, distinct


def run_preprocess(
    spark: SparkSession,
    inputs: Inputs,
    out: str,
    run_id: str,
    settings: PreprocessSettings | None = None,
    previous: str = PREVIOUS_AUTO,
) -> RunResult:
    """Run the whole job and write `<out>/runs/<run_id>/` (layout in `glue.outputs`).

    `previous` is "auto", "none" or the root of an earlier run whose id maps are extended. Raises
    `EmptyInputError` (nothing written) when no usable interaction remains, `RunExistsError` when the run
    is already complete.
    """
    settings = settings or PreprocessSettings()
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # naive ISO times mean UTC, as in the validator
    layout = outputs.RunLayout(out, run_id)
    if outputs.is_complete(layout.root):
        raise RunExistsError(f"run {run_id!r} is already complete at {layout.root}; choose another run id")
    clock = _Clock()
    previous_root = resolve_previous(out, previous)
    previous_maps = outputs.read_previous_maps(spark, previous_root) if previous_root else None
    previous_sizes = {}
    if previous_maps is not None:
        previous_sizes = {
            "users": check_map(previous_maps.users, USER_ID, USER_IDX),
            "items": check_map(previous_maps.items, ITEM_ID, ITEM_IDX),
        }

    raw = normalise_transactions(inputs.transactions)
    census = id_census(raw).persist()
    quality, seen = _quality(census)
    events = drop_incomplete(raw)
    clock.lap("clean", f"{quality['rows']:,} rows read, {quality['incomplete']:,} incomplete")
    storage.delete_tree(layout.root)  # leftovers of a failed attempt of this run id
    run_maps = build_maps(census, seen, inputs, previous_maps, previous_sizes, layout)
    census.unpersist()
    where = "on the driver" if run_maps.tables is not None else "as DataFrames"
    clock.lap("index", f"{run_maps.sizes[USER_ID]:,} users, {run_maps.sizes[ITEM_ID]:,} items (maps {where})")

    rows = quality["rows"] - quality["incomplete"]
    partitions = max(
        partitions_for(rows * (1 + settings.negatives_per_positive)), spark.sparkContext.defaultParallelism
    )
    plan = _user_outputs(settings, layout, run_maps)
    indexed = _indexed(events, run_maps, settings)
    written = write_user_outputs(indexed, partitions, plan)
    sizes = written.totals
    quality["exact_duplicates"] = rows - sizes["events"]
    quality["events"] = sizes["events"]
    quality["pairs"] = sizes["pairs"]
    quality["repeat_events_collapsed"] = sizes["events"] - sizes["pairs"]
    clock.lap(
        "split",
        f"{sizes['pairs']:,} interactions ({sizes[TRAIN]:,} train, {sizes[TEST]:,} test) in {partitions} "
        "partitions; DSSTNE text written",
    )

    item_side = build_item_tables(
        run_maps,
        [plan.item_count_file(partition) for partition in sorted(written.splits)],
        plan.item_counts,
        previous_maps.categories if previous_maps is not None else None,
        settings.categories,
        layout,
    )
    storage.delete_tree(layout.scratch)
    counts = {"interactions": sizes["pairs"]}
    counts |= {name: sizes[name] for name in (TRAIN, TEST, "test_users", "positives")}
    counts |= item_side.counts
    for name in (TRAIN, TEST):
        if counts[name] == 0:
            write_empty_split(plan.interactions[name])
    feature_layout = FeatureLayout(counts["users"], counts["items"], item_side.n_categories)
    counts["categories"] = item_side.n_categories
    clock.lap(
        "features",
        f"popularity, {item_side.n_categories} categories; feature_dim {feature_layout.feature_dim:,}",
    )

    channel_plan = ChannelPlan(
        uris={TRAIN: layout.path(contracts.RUN_FM_TRAIN_DIR), TEST: layout.path(contracts.RUN_FM_TEST_DIR)},
        layout=feature_layout,
        ranges=collect_ranges(item_ranges(item_side.popularity, settings.negative_exponent)),
        categories=item_side.categories,
        seed=settings.seed,
        per_positive=settings.negatives_per_positive,
        max_bytes=settings.max_file_bytes,
    )
    channels = write_channels(events.sparkSession, _interaction_files(written, plan), channel_plan)
    counts["fm_train_records"] = channels[TRAIN].records
    counts["fm_test_records"] = channels[TEST].records
    clock.lap("fm", f"{channels[TRAIN].records:,} train and {channels[TEST].records:,} test records")

    negatives = {}
    for name, channel in channels.items():
        wanted = channel.positives * settings.negatives_per_positive
        sampled = channel.records - counts[name]
        negatives[name] = {
            "positives": channel.positives,
            "wanted": wanted,
            "sampled": sampled,
            "shortfall": wanted - sampled,
        }
    stats = {
        "run_id": run_id,
        "transactions": quality,
        "previous_run": {"root": previous_root, **previous_sizes},
        "counts": counts,
        "negatives": negatives,
        "fm_bytes": {name: channel.bytes for name, channel in channels.items()},
        "seconds": {**clock.stages, "total": clock.total()},
    }
    manifest = build_manifest(layout, settings, feature_layout, counts, channels, inputs, previous_root)
    outputs.write_json(layout.path(contracts.RUN_STATS_FILE), stats)
    outputs.write_json(layout.manifest, manifest)  # last: its presence marks the run complete
    outputs.write_json(layout.latest_pointer, {"run_id": run_id, "root": layout.root})
    return RunResult(layout=layout, manifest=manifest, stats=stats)


def _by_id(ids: DataFrame, size: int) -> DataFrame:
    """An id map as the small side of a join: broadcast up to BROADCAST_IDS entries (no shuffle of the
    events), a plain join beyond."""
    return F.broadcast(ids) if size <= BROADCAST_IDS else ids


def _indexed(events: DataFrame, maps: RunMaps, settings: PreprocessSettings) -> DataFrame:
    """The events with their user and item indices, and Spark's own text of the ratings the DSSTNE lines
    cannot format on the Arrow side (only when the lines keep values)."""
    users = maps.users.select(USER_ID, USER_IDX)
    items = maps.items.select(ITEM_ID, ITEM_IDX)
    indexed = events.join(_by_id(users, maps.sizes[USER_ID]), on=USER_ID)
    indexed = indexed.join(_by_id(items, maps.sizes[ITEM_ID]), on=ITEM_ID)
    if settings.dsstne_values:
        indexed = indexed.withColumn(SPARK_RATING, spark_rating_text())
    return indexed


def _user_outputs(settings: PreprocessSettings, layout: outputs.RunLayout, maps: RunMaps) -> UserOutputs:
    """Where the per-user pass writes, its rules, and the ids by index when both maps are small enough
    to broadcast (`glue.maps.BROADCAST_IDS`; larger ones travel with the events)."""
    return UserOutputs(
        rules=PairRules.of(settings),
        interactions={TRAIN: layout.path(contracts.RUN_TRAIN_DIR), TEST: layout.path(contracts.RUN_TEST_DIR)},
        dsstne_input=layout.path(contracts.RUN_DSSTNE_INPUT_DIR),
        dsstne_output=layout.path(contracts.RUN_DSSTNE_OUTPUT_DIR),
        dsstne_target=settings.dsstne_target,
        dsstne_values=settings.dsstne_values,
        item_counts=storage.join(layout.scratch, "item_counts/"),
        ids=maps.ids(),
    )


def _interaction_files(written: PassSummary, plan: UserOutputs) -> dict[int, dict[str, str]]:
    """Each partition's interaction files by split (the FM channels' input)."""
    return {
        partition: {split: plan.interaction_file(split, partition) for split in splits}
        for partition, splits in written.splits.items()
    }
