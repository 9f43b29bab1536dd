"""Where a run's outputs go and how they are written (names from `recsys.contracts`).

    <out>/runs/<run_id>/
        user_map/ item_map/ category_map/ popularity/    Parquet: ids ↔ indices, titles, counts
        interactions/split=train/ …/split=test/           Parquet: one row per user–item pair
        fm/train/ fm/test/                                recordIO-protobuf shards (≤ 100 MB each)
        dsstne/input/ dsstne/output/                      DSSTNE text parts (`user<TAB>item:item:…`)
        _scratch/                                         the per-user pass's item counts, while it runs
        stats.json                                        what cleaning dropped, sizes, timings
        manifest.json                                     written last: the run is complete
    <out>/runs/latest.json                                {"run_id": …}: the next run extends its maps

A run whose manifest exists is never overwritten; a run folder without one is a failed attempt and is
cleared before the outputs are written again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from glue import storage
from recsys import contracts

SCRATCH_DIR = "_scratch/"


@dataclass(frozen=True)
class RunLayout:
    """The URIs of one run's outputs."""

    out: str  # the root holding runs/
    run_id: str

    @property
    def root(self) -> str:
        return storage.join(self.out, contracts.RUNS_PREFIX, self.run_id)

    def path(self, name: str) -> str:
        """A file or folder of the run, by its contracts name (folders keep their trailing slash)."""
        return storage.join(self.root, name)

    @property
    def scratch(self) -> str:
        """Intermediate files of the run, deleted once used (`_` keeps Spark and Glue crawlers away)."""
        return self.path(SCRATCH_DIR)

    @property
    def manifest(self) -> str:
        return self.path(contracts.RUN_MANIFEST_FILE)

    @property
    def latest_pointer(self) -> str:
        return latest_pointer(self.out)


def latest_pointer(out: str) -> str:
    return storage.join(out, contracts.RUNS_PREFIX, contracts.RUNS_LATEST_FILE)


def latest_run(out: str) -> str | None:
    """The run id that `runs/latest.json` names, or None before the first completed run."""
    text = storage.read_text(latest_pointer(out))
    if text is None:
        return None
    run_id = json.loads(text).get("run_id")
    return str(run_id) if run_id else None


def is_complete(run_root: str) -> bool:
    return storage.read_text(storage.join(run_root, contracts.RUN_MANIFEST_FILE)) is not None


def write_parquet(df: DataFrame, uri: str) -> DataFrame:
    """Write `df` and return the written table read back: later steps start from the stored rows, so
    nothing upstream is computed twice and every output agrees with what was stored. The schema is the
    one just written, so reading it back starts no job to infer it from the files."""
    df.write.mode("overwrite").parquet(uri)
    return df.sparkSession.read.schema(df.schema).parquet(uri)


def write_json(uri: str, payload: dict[str, Any]) -> None:
    storage.write_text(uri, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


@dataclass(frozen=True)
class PreviousMaps:
    """The id maps of an earlier complete run (the next run extends them)."""

    run_root: str
    users: DataFrame
    items: DataFrame
    categories: DataFrame | None


def read_previous_maps(spark: SparkSession, run_root: str) -> PreviousMaps:
    """Read a complete run's user, item and (when it had them) category maps."""
    if not is_complete(run_root):
        raise FileNotFoundError(
            f"{run_root}: not a complete preprocessing run (no {contracts.RUN_MANIFEST_FILE})"
        )
    manifest = json.loads(storage.read_text(storage.join(run_root, contracts.RUN_MANIFEST_FILE)) or "{}")
    categories = None
    if manifest.get("blocks", {}).get("categories", {}).get("size", 0) > 0:
        categories = spark.read.parquet(storage.join(run_root, contracts.RUN_CATEGORY_MAP_DIR))
    return PreviousMaps(
        run_root=run_root,
        users=spark.read.parquet(storage.join(run_root, contracts.RUN_USER_MAP_DIR)),
        items=spark.read.parquet(storage.join(run_root, contracts.RUN_ITEM_MAP_DIR)),
        categories=categories,
    )
