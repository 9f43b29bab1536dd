"""One preprocessing run, end to end: inputs → clean → ids → split → outputs. Shared by the Glue entry
script (`glue.job`) and the local runner (`recsys preprocess`), so both produce the same files.

Nothing is written until the inputs are known to hold at least one usable interaction: an empty or
all-invalid input fails with `EmptyInputError` and leaves no run folder behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue import outputs, storage
from glue.dsstne_arrow import SPARK_RATING
from glue.dsstne_text import spark_rating_text
from glue.features import (
    CATEGORY,
    CATEGORY_IDX,
    FeatureLayout,
    category_map,
    item_category_indices,
    item_category_names,
)
from glue.fm_channel import ChannelPlan, collect_item_categories, partitions_for, write_channels
from glue.indexing import IS_NEW, check_map, ids_by_index, stable_index
from glue.manifest import build_manifest
from glue.readers import ATTRIBUTES, InputError, Inputs
from glue.sampling import collect_ranges, item_ranges
from glue.settings import PreprocessSettings
from glue.transforms import (
    ID,
    ID_KIND,
    IN_CATALOG,
    ITEM_IDX,
    ITEMS,
    TEST,
    TRAIN,
    USER_IDX,
    USERS,
    census_ids,
    drop_incomplete,
    empty_catalog,
    id_census,
    items_with_placeholders,
    latest_catalog,
    normalise_catalog,
    normalise_transactions,
    popularity,
)
from glue.user_outputs import (
    PassSummary,
    UserOutputs,
    write_empty_split,
    write_user_outputs,
)
from glue.user_pass import PairRules
from recsys import contracts
from recsys.csv_contract import CATEGORIES, ITEM_ID, TIMESTAMP, TITLE, USER_ID

PREVIOUS_AUTO = "auto"
PREVIOUS_NONE = "none"


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
    """Seconds per stage, for stats.json."""

    started: float = field(default_factory=time.perf_counter)
    last: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def resolve_previous(out: str, previous: str) -> str | None:
    """The root of the run whose maps this run extends: "auto" = the latest complete run under `out`."""
    if previous == PREVIOUS_NONE:
        return None
    if previous == PREVIOUS_AUTO:
        run_id = outputs.latest_run(out)
        return outputs.RunLayout(out, run_id).root if run_id else None
    return previous


def _counts(row: Any) -> dict[str, int]:
    return {key: int(value or 0) for key, value in row.asDict().items()}


def _quality(census: DataFrame) -> dict[str, int]:
    """Rows, rows missing each required value, rows without a rating (from the id census:
    `glue.transforms.id_census`); refuses an input with no complete row (`EmptyInputError`) before anything
    is written."""
    users = F.col(ID_KIND) == USERS
    null_id = F.col(ID).isNull()
    quality = _counts(
        census.agg(
            F.sum(F.when(users, F.col("rows"))).alias("rows"),
            F.sum(F.when(users & null_id, F.col("rows"))).alias(f"missing_{USER_ID}"),
            F.sum(F.when((F.col(ID_KIND) == ITEMS) & null_id, F.col("rows"))).alias(f"missing_{ITEM_ID}"),
            F.sum(F.when(users, F.col("missing_timestamp"))).alias(f"missing_{TIMESTAMP}"),
            F.sum(F.when(users, F.col("rows") - F.col("complete"))).alias("incomplete"),
            F.sum(F.when(users, F.col("without_rating"))).alias("without_rating"),
        ).first()
    )
    if quality["rows"] == 0:
        raise EmptyInputError("the transactions are empty: no rows to preprocess, nothing was written")
    if quality["incomplete"] == quality["rows"]:
        raise EmptyInputError(
            f"no usable transactions: all {quality['rows']} rows lack a user id, an item id or a valid "
            f"timestamp (user {quality['missing_user_id']}, item {quality['missing_item_id']}, timestamp "
            f"{quality['missing_timestamp']}); nothing was written"
        )
    return quality


def _item_map(items: DataFrame, previous: DataFrame | None) -> DataFrame:
    """Stable item indices joined with this run's catalog view; items known only from the previous map keep
    its title, categories and flag."""
    ids = stable_index(
        items.select(ITEM_ID),
        previous.select(ITEM_ID, ITEM_IDX) if previous is not None else None,
        ITEM_ID,
        ITEM_IDX,
    )
    joined = ids.join(items, on=ITEM_ID, how="left")
    kept = (TITLE, CATEGORIES, ATTRIBUTES, IN_CATALOG)
    if previous is not None:
        old = previous.select(ITEM_ID, *(F.col(c).alias(f"_old_{c}") for c in kept))
        joined = joined.join(old, on=ITEM_ID, how="left").select(
            ITEM_ID, ITEM_IDX, IS_NEW, *(F.coalesce(F.col(c), F.col(f"_old_{c}")).alias(c) for c in kept)
        )
    return joined.select(ITEM_IDX, ITEM_ID, TITLE, CATEGORIES, ATTRIBUTES, IN_CATALOG, IS_NEW)


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
    maps = outputs.read_previous_maps(spark, previous_root) if previous_root else None
    previous_sizes = {}
    if maps is not None:
        previous_sizes = {
            "users": check_map(maps.users, USER_ID, USER_IDX),
            "items": check_map(maps.items, ITEM_ID, ITEM_IDX),
        }

    raw = normalise_transactions(inputs.transactions)
    census = id_census(raw).persist()
    quality = _quality(census)
    events = drop_incomplete(raw)
    clock.lap("clean")
    storage.delete_tree(layout.root)  # leftovers of a failed attempt of this run id
    user_map, item_map = _maps(census, inputs, maps, layout)
    census.unpersist()
    clock.lap("index")

    rows = quality["rows"] - quality["incomplete"]
    partitions = max(
        partitions_for(rows * (1 + settings.negatives_per_positive)), spark.sparkContext.defaultParallelism
    )
    map_sizes = {USER_ID: user_map.count(), ITEM_ID: item_map.count()}
    plan = _user_outputs(settings, layout, user_map, item_map, map_sizes)
    indexed = _indexed(events, user_map, item_map, map_sizes, settings)
    written = write_user_outputs(indexed, partitions, plan)
    sizes = written.totals
    quality["exact_duplicates"] = rows - sizes["events"]
    quality["events"] = sizes["events"]
    quality["pairs"] = sizes["pairs"]
    quality["repeat_events_collapsed"] = sizes["events"] - sizes["pairs"]
    item_counts = events.sparkSession.read.parquet(plan.item_counts)
    pop = outputs.write_parquet(popularity(item_counts, item_map), layout.path(contracts.RUN_POPULARITY_DIR))
    storage.delete_tree(layout.scratch)
    clock.lap("split")

    item_categories = None
    n_categories = 0
    if settings.categories:
        names = item_category_names(item_map)
        old = maps.categories.select(CATEGORY, CATEGORY_IDX) if maps and maps.categories is not None else None
        categories = outputs.write_parquet(
            category_map(names, old).select(CATEGORY_IDX, CATEGORY, IS_NEW).orderBy(CATEGORY_IDX),
            layout.path(contracts.RUN_CATEGORY_MAP_DIR),
        )
        n_categories = categories.count()
        item_categories = item_category_indices(names, categories)
    counts = _run_counts(written, user_map, item_map, pop)
    for name in (TRAIN, TEST):
        if counts[name] == 0:
            write_empty_split(plan.interactions[name])
    feature_layout = FeatureLayout(counts["users"], counts["items"], n_categories)
    counts["categories"] = n_categories
    clock.lap("features")

    channel_plan = ChannelPlan(
        uris={TRAIN: layout.path(contracts.RUN_FM_TRAIN_DIR), TEST: layout.path(contracts.RUN_FM_TEST_DIR)},
        layout=feature_layout,
        ranges=collect_ranges(item_ranges(pop, settings.negative_exponent)),
        categories=collect_item_categories(item_categories, counts["items"]),
        seed=settings.seed,
        per_positive=settings.negatives_per_positive,
        max_bytes=settings.max_file_bytes,
    )
    channels = write_channels(events.sparkSession, _interaction_files(written, plan), channel_plan)
    counts["fm_train_records"] = channels[TRAIN].records
    counts["fm_test_records"] = channels[TEST].records
    clock.lap("fm")

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


def _maps(
    census: DataFrame, inputs: Inputs, maps: outputs.PreviousMaps | None, layout: outputs.RunLayout
) -> tuple[DataFrame, DataFrame]:
    """Write the user and item maps (stable indices; items with their catalog view) and read them back.
    The ids are those of the complete events (the collapsed pairs have the same), from the cached id
    census (`glue.transforms.id_census`), so numbering them and writing the maps scans no events."""
    seen_users = census_ids(census, USERS, USER_ID)
    seen_items = census_ids(census, ITEMS, ITEM_ID)
    old_users = maps.users.select(USER_ID, USER_IDX) if maps else None
    user_map = outputs.write_parquet(
        stable_index(seen_users, old_users, USER_ID, USER_IDX)
        .select(USER_IDX, USER_ID, IS_NEW)
        .orderBy(USER_IDX),
        layout.path(contracts.RUN_USER_MAP_DIR),
    )
    catalog = latest_catalog(normalise_catalog(inputs.catalog)) if inputs.catalog is not None else None
    items = items_with_placeholders(catalog if catalog is not None else empty_catalog(census), seen_items)
    item_map = outputs.write_parquet(
        _item_map(items, maps.items if maps else None).orderBy(ITEM_IDX),
        layout.path(contracts.RUN_ITEM_MAP_DIR),
    )
    return user_map, item_map


def _by_id(ids: DataFrame, size: int) -> DataFrame:
    """An id map as the small side of a join: broadcast up to BROADCAST_IDS entries (no shuffle of the
    events), a plain join beyond."""
    return F.broadcast(ids) if size <= BROADCAST_IDS else ids


BROADCAST_IDS = 2_000_000  # id maps up to this size are broadcast (~100 MB of ids and indices)


def _indexed(
    events: DataFrame,
    user_map: DataFrame,
    item_map: DataFrame,
    sizes: dict[str, int],
    settings: PreprocessSettings,
) -> DataFrame:
    """The events with their user and item indices, and Spark's own text of the ratings the DSSTNE lines
    cannot format on the Arrow side (only when the lines keep values)."""
    users = user_map.select(USER_ID, USER_IDX)
    items = item_map.select(ITEM_ID, ITEM_IDX)
    indexed = events.join(_by_id(users, sizes[USER_ID]), on=USER_ID)
    indexed = indexed.join(_by_id(items, sizes[ITEM_ID]), on=ITEM_ID)
    if settings.dsstne_values:
        indexed = indexed.withColumn(SPARK_RATING, spark_rating_text())
    return indexed


def _user_outputs(
    settings: PreprocessSettings,
    layout: outputs.RunLayout,
    user_map: DataFrame,
    item_map: DataFrame,
    sizes: dict[str, int],
) -> UserOutputs:
    """Where the per-user pass writes, its rules, and the ids by index when both maps are small enough
    to broadcast (BROADCAST_IDS; larger ones travel with the events)."""
    ids = None
    if max(sizes.values()) <= BROADCAST_IDS:
        ids = {
            USER_ID: ids_by_index(user_map, USER_ID, USER_IDX),
            ITEM_ID: ids_by_index(item_map, ITEM_ID, ITEM_IDX),
        }
    return UserOutputs(
        rules=PairRules.of(settings),
        interactions={TRAIN: layout.path(contracts.RUN_TRAIN_DIR), TEST: layout.path(contracts.RUN_TEST_DIR)},
        dsstne_input=layout.path(contracts.RUN_DSSTNE_INPUT_DIR),
        dsstne_output=layout.path(contracts.RUN_DSSTNE_OUTPUT_DIR),
        dsstne_target=settings.dsstne_target,
        dsstne_values=settings.dsstne_values,
        item_counts=storage.join(layout.scratch, "item_counts/"),
        ids=ids,
    )


def _interaction_files(written: PassSummary, plan: UserOutputs) -> dict[int, dict[str, str]]:
    """Each partition's interaction files by split (the FM channels' input)."""
    return {
        partition: {split: plan.interaction_file(split, partition) for split in splits}
        for partition, splits in written.splits.items()
    }


def _run_counts(
    written: PassSummary, user_map: DataFrame, item_map: DataFrame, pop: DataFrame
) -> dict[str, int]:
    """Sizes for the manifest: split sizes, ids (new ones too), items without a catalog row."""
    totals = written.totals
    counts = {"interactions": totals["pairs"]}
    counts |= {name: totals[name] for name in (TRAIN, TEST, "test_users", "positives")}
    counts |= _counts(
        user_map.agg(
            F.count(F.lit(1)).alias("users"), F.sum(F.col(IS_NEW).cast("long")).alias("new_users")
        ).first()
    )
    not_in_catalog = ~F.col(IN_CATALOG)
    counts |= _counts(
        item_map.join(pop.select(ITEM_IDX, "count"), on=ITEM_IDX)
        .agg(
            F.count(F.lit(1)).alias("items"),
            F.sum(F.col(IS_NEW).cast("long")).alias("new_items"),
            F.sum(F.col(IN_CATALOG).cast("long")).alias("catalog_items"),
            F.sum(not_in_catalog.cast("long")).alias("items_without_catalog_row"),
            F.sum((not_in_catalog & (F.col("count") > 0)).cast("long")).alias(
                "unknown_items_with_interactions"
            ),
        )
        .first()
    )
    return counts
