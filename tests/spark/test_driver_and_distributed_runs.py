"""Whole runs with the small tables built on the driver (maps, popularity, categories: `glue.maps`,
`glue.item_tables`) and with every table a DataFrame (`DRIVER_MAPS_MAX = 0`): the same outputs, file by
file. Run B extends run A's maps and category map, so the previous-run paths are compared too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue import maps as maps_module
from glue.item_tables import popularity_table
from glue.pipeline import run_preprocess
from glue.settings import PreprocessSettings
from glue.user_outputs import ITEM_COUNTS
from recsys import contracts
from tests.spark.helpers import inputs
from tests.spark.test_outputs import CATALOG, _rows_a, _rows_b

TABLES = (
    contracts.RUN_USER_MAP_DIR,
    contracts.RUN_ITEM_MAP_DIR,
    contracts.RUN_CATEGORY_MAP_DIR,
    contracts.RUN_POPULARITY_DIR,
    contracts.RUN_TRAIN_DIR,
    contracts.RUN_TEST_DIR,
)
FILES = (
    contracts.RUN_FM_TRAIN_DIR,
    contracts.RUN_FM_TEST_DIR,
    contracts.RUN_DSSTNE_INPUT_DIR,
    contracts.RUN_DSSTNE_OUTPUT_DIR,
)
# "never" dropped; a new category among spaces, a blank and a repeat
CATALOG_B = [*CATALOG[:-1], ("fresh", "Fresh", " Sci-Fi | Drama ||Drama|(no genres listed)")]


def _runs(spark: Any, out: Path) -> dict[str, Any]:
    settings = PreprocessSettings(max_file_bytes=4096, negatives_per_positive=2)
    a = run_preprocess(spark, inputs(spark, _rows_a(), CATALOG), str(out), "A", settings)
    b = run_preprocess(spark, inputs(spark, _rows_b(), CATALOG_B), str(out), "B", settings)
    return {"A": a, "B": b}


def _table(root: Path, folder: str) -> list[tuple[Any, ...]]:
    table = pq.read_table(root / folder)
    return sorted(tuple(row.values()) for row in table.to_pylist())


def _files(root: Path, folder: str) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in sorted((root / folder).iterdir()) if not p.name.startswith(("_", "."))
    }


def _documents(root: Path) -> dict[str, Any]:
    stats = json.loads((root / contracts.RUN_STATS_FILE).read_text())
    manifest = json.loads((root / contracts.RUN_MANIFEST_FILE).read_text())
    return {"counts": stats["counts"], "transactions": stats["transactions"], "blocks": manifest["blocks"]}


def test_small_tables_on_the_driver_give_the_distributed_outputs(spark, tmp_path, monkeypatch) -> None:
    driver = _runs(spark, tmp_path / "driver")
    monkeypatch.setattr(maps_module, "DRIVER_MAPS_MAX", 0)
    spread = _runs(spark, tmp_path / "spread")
    for run in ("A", "B"):
        left = Path(driver[run].layout.root)
        right = Path(spread[run].layout.root)
        assert len(list((left / contracts.RUN_USER_MAP_DIR).glob("*.parquet"))) == 1  # written by the driver
        for folder in TABLES:
            assert _table(left, folder) == _table(right, folder), (run, folder)
        for folder in FILES:
            assert _files(left, folder) == _files(right, folder), (run, folder)
        assert _documents(left) == _documents(right)
    categories = {r[1]: r[2] for r in _table(Path(driver["B"].layout.root), contracts.RUN_CATEGORY_MAP_DIR)}
    assert categories["Sci-Fi"] is True  # new in B, numbered after A's categories
    assert not categories["Drama"]


def _partial(items: list[int], count: list[int]) -> pa.Table:
    index = pa.array(items, pa.int64())
    values = pa.array(count, pa.int64())
    return pa.table({"item_idx": index, **{name: values for name in ITEM_COUNTS}})


def test_popularity_sums_the_partitions_counts_for_every_item_of_the_map() -> None:
    items = pa.table({"item_idx": pa.array([0, 1, 2], pa.int64()), "item_id": ["a", "b", "c"]})
    pop = popularity_table(items, [_partial([0, 2], [3, 1]), _partial([2], [4])])
    assert pop.column("item_id").to_pylist() == ["a", "b", "c"]
    assert pop.column("count").to_pylist() == [3, 0, 5]
    assert pop.column("train_positives").to_pylist() == [3, 0, 5]
    with pytest.raises(ValueError, match="outside"):
        popularity_table(items, [_partial([3], [1])])
