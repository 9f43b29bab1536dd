"""Whether a pandas baseline run (`preprocess_pandas.py`) and a Spark run (`recsys preprocess`) of the same
inputs did the same work: their counts, and on small inputs every output (tables, FM records, DSSTNE lines).

Outputs are compared as sets, not files: the two runs shard and order the FM records and the DSSTNE lines
differently on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys import contracts
from recsys.csv_contract import CATEGORIES, ITEM_ID, RATING, TIMESTAMP, TITLE, USER_ID
from recsys.recordio import read_sparse_records

CLEANING = ("rows", "incomplete", "exact_duplicates", "pairs")
COMPARED_COUNTS = (
    "users",
    "items",
    "categories",
    "interactions",
    "train",
    "test",
    "test_users",
    "positives",
    "fm_train_records",
    "fm_test_records",
)
TABLES = {  # folder: the columns compared, sorted by the first
    contracts.RUN_USER_MAP_DIR: ("user_idx", USER_ID),
    contracts.RUN_ITEM_MAP_DIR: ("item_idx", ITEM_ID, TITLE, CATEGORIES, "attributes", "in_catalog"),
    contracts.RUN_CATEGORY_MAP_DIR: ("category_idx", "category"),
    contracts.RUN_POPULARITY_DIR: ("item_idx", "count", "positives", "train_count", "train_positives"),
    contracts.RUN_TRAIN_DIR: ("user_idx", "item_idx", TIMESTAMP, RATING, "events", "label"),
    contracts.RUN_TEST_DIR: ("user_idx", "item_idx", TIMESTAMP, RATING, "events", "label"),
}


def run_counts(root: Path) -> dict[str, int]:
    """The counts a Spark or a pandas run reports: what cleaning dropped, sizes, feature_dim, negatives
    sampled per channel."""
    manifest = json.loads((root / contracts.RUN_MANIFEST_FILE).read_text())
    stats = json.loads((root / contracts.RUN_STATS_FILE).read_text())
    counts = {key: int(stats["transactions"][key]) for key in CLEANING}
    counts |= {key: int(manifest["counts"][key]) for key in COMPARED_COUNTS}
    counts["feature_dim"] = int(manifest["feature_dim"])
    for name in ("train", "test"):
        counts[f"{name}_negatives"] = int(stats["negatives"][name]["sampled"])
        counts[f"{name}_fm_positives"] = int(stats["negatives"][name]["positives"])
    return counts


def _table(folder: Path, columns: Sequence[str]) -> pd.DataFrame:
    frame = pq.read_table(folder, columns=list(columns)).to_pandas()
    return frame.sort_values(list(columns[:2])).reset_index(drop=True).astype(object)


def _fm_rows(folder: Path) -> np.ndarray:
    """Every record of a channel as one row (label, nonzero columns, padded with -1), rows sorted: the
    order of records and their sharding are ignored."""
    matrices, labels = [], []
    for path in sorted(folder.glob("*.pbr")):
        with path.open("rb") as handle:
            matrix, label, _ = read_sparse_records(handle)
        matrices.append(matrix.tocsr())
        labels.append(np.asarray(label, dtype=np.float64))
    if not matrices:
        return np.zeros((0, 1))
    width = max(int(np.diff(m.indptr).max(initial=0)) for m in matrices)
    blocks = []
    for matrix, label in zip(matrices, labels, strict=True):
        lengths = np.diff(matrix.indptr)
        table = np.full((matrix.shape[0], 1 + width), -1.0)
        table[:, 0] = label
        rows = np.repeat(np.arange(matrix.shape[0]), lengths)
        table[rows, 1 + np.arange(rows.size) - np.repeat(matrix.indptr[:-1], lengths)] = matrix.indices
        blocks.append(table)
    table = np.concatenate(blocks)
    return table[np.lexsort(table.T[::-1])]


def _same_fm(left: Path, right: Path) -> bool:
    a, b = _fm_rows(left), _fm_rows(right)
    return a.shape == b.shape and bool((a == b).all())


def _lines(folder: Path) -> list[str]:
    return sorted(line for path in sorted(folder.glob("part-*")) for line in path.read_text().splitlines())


def compare_runs(spark_root: Path, pandas_root: Path, contents: bool = False) -> dict[str, Any]:
    """Counts of both runs and which differ; with `contents`, also whether every table, the FM records
    (as a multiset) and the DSSTNE lines are identical (slow: meant for the bundled sample)."""
    spark, baseline = run_counts(spark_root), run_counts(pandas_root)
    report: dict[str, Any] = {
        "counts": spark,
        "counts_differ": {
            k: {"spark": v, "pandas": baseline.get(k)} for k, v in spark.items() if baseline.get(k) != v
        },
    }
    if contents:
        same: dict[str, bool] = {}
        for folder, columns in TABLES.items():
            left, right = spark_root / folder, pandas_root / folder
            if not left.exists() or not right.exists():  # a run without categories has no category map
                same[folder] = left.exists() == right.exists()
                continue
            same[folder] = _table(left, columns).equals(_table(right, columns))
        for folder in (contracts.RUN_FM_TRAIN_DIR, contracts.RUN_FM_TEST_DIR):
            same[folder] = _same_fm(spark_root / folder, pandas_root / folder)
        for folder in (contracts.RUN_DSSTNE_INPUT_DIR, contracts.RUN_DSSTNE_OUTPUT_DIR):
            same[folder] = _lines(spark_root / folder) == _lines(pandas_root / folder)
        report["identical"] = same
    return report
