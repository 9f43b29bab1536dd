"""Two whole runs on awkward data, then every output read back: maps, recordIO channels, DSSTNE text, JSON.

Run A has what the issue lists as bad input (nulls in every column, an item missing from the catalog,
duplicate events, users with one interaction, ids with commas, tabs, colons and spaces, one user with
many repeated events); run B adds users and items and must extend A's maps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from glue import storage
from glue.dsstne_text import decode_name
from glue.pipeline import EmptyInputError, RunExistsError, run_preprocess
from glue.settings import DsstneTarget, PreprocessSettings
from glue.transforms import PLACEHOLDER_TITLE
from recsys import contracts
from recsys.recordio import read_sparse_records
from tests.spark.helpers import inputs, mock_s3, tx
from training.dsstne.generate import parse_line

USERS_A = ["u,1", "u\t2", "u:3", "ü 4", "plus+5", "heavy"]
ITEMS = ["i,a", "i:b", "i\tc", "plain", "ghost", "x y", "pct%"]  # "ghost" has no catalog row
CATALOG = [
    ("i,a", "A, the film", "Drama|Comedy"),
    ("i:b", "B", "Drama"),
    ("i\tc", "C", ""),
    ("plain", "Plain", "(no genres listed)"),
    ("x y", "X Y", "Horror"),
    ("pct%", "Percent", "Comedy|Horror"),
    ("never", "Never seen", "Drama"),  # a catalog item without interactions
]
SETTINGS = PreprocessSettings(
    max_file_bytes=2048, negatives_per_positive=3, dsstne_target=DsstneTarget.POSITIVE
)
SETTINGS_B = PreprocessSettings(negatives_per_positive=2, categories=False)  # and no category block


def _rows_a() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for u, user in enumerate(USERS_A[:5]):
        for k in range(5):
            item = ITEMS[(u + k) % len(ITEMS)]
            rows.append((user, item, 1000 + 10 * u + k, float(1 + (u + k) % 5)))
    rows += [(USERS_A[0], ITEMS[0], 1000, 1.0)] * 3  # exact duplicates of the first row
    rows += [("heavy", ITEMS[k % 3], 5000 + k, None, "view") for k in range(300)]  # many events, 3 pairs
    rows += [("solo", "plain", 42, 5.0)]  # one interaction: stays in train
    rows += [
        (None, "plain", 1, 5.0),
        ("u,1", None, 1, 5.0),
        ("u,1", "plain", None, 5.0),
        (None, None, None, None),
    ]
    rows += [("u,1", "plain", 9999, None, None)]  # no rating, no event type: an implicit positive
    return rows


def _rows_b() -> list[tuple[Any, ...]]:
    return [
        *_rows_a(),
        ("new1", "plain", 7000, 5.0),
        ("new1", "fresh", 7001, 4.0),
        ("new2", "fresh", 7002, 2.0),
        ("u:3", "fresh", 7003, 5.0),
    ]


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory) -> dict[str, Any]:
    out = str(tmp_path_factory.mktemp("runs"))
    a = run_preprocess(spark, inputs(spark, _rows_a(), CATALOG), out, "A", SETTINGS)
    b = run_preprocess(spark, inputs(spark, _rows_b(), CATALOG), out, "B", SETTINGS_B)
    return {"out": out, "A": a, "B": b}


def _table(spark, result, folder: str) -> list[Any]:
    return spark.read.parquet(result.layout.path(folder)).collect()


def _channel(result, folder: str) -> tuple[Any, np.ndarray, int, list[Path]]:
    """All shards of a channel, in name order, read back as one CSR matrix with labels."""
    files = sorted(storage.local_path(result.layout.path(folder)).glob("*.pbr"))
    matrices, labels, dims = [], [], set()
    for path in files:
        with path.open("rb") as stream:
            rows, y, dim = read_sparse_records(stream)
        matrices.append(rows)
        labels.append(y)
        dims.add(dim)
    import scipy.sparse as sp

    assert len(dims) == 1
    return sp.vstack(matrices).tocsr(), np.concatenate(labels), dims.pop(), files


def test_the_second_run_keeps_old_indices_and_appends_new_ones(spark, runs) -> None:
    for table, id_col, idx_col, new in (
        (contracts.RUN_USER_MAP_DIR, "user_id", "user_idx", {"new1", "new2"}),
        (contracts.RUN_ITEM_MAP_DIR, "item_id", "item_idx", {"fresh"}),
    ):
        first = {r[id_col]: r[idx_col] for r in _table(spark, runs["A"], table)}
        second = {r[id_col]: (r[idx_col], r.is_new) for r in _table(spark, runs["B"], table)}
        assert sorted(first.values()) == list(range(len(first)))
        assert {k: v[0] for k, v in second.items() if k in first} == first  # never renumbered
        assert {k for k, v in second.items() if v[1]} == new
        assert sorted(v[0] for k, v in second.items() if k in new) == list(range(len(first), len(second)))
    assert runs["B"].manifest["previous_run"] == runs["A"].layout.root
    assert json.loads(Path(runs["out"], "runs", "latest.json").read_text())["run_id"] == "B"


def test_items_without_a_catalog_row_are_flagged(spark, runs) -> None:
    items = {r.item_id: r for r in _table(spark, runs["A"], contracts.RUN_ITEM_MAP_DIR)}
    assert (items["ghost"].in_catalog, items["ghost"].title) == (False, PLACEHOLDER_TITLE)
    assert (items["i,a"].in_catalog, items["i,a"].title) == (True, "A, the film")
    assert items["never"].in_catalog  # catalog items without interactions get indices too
    assert runs["A"].manifest["counts"]["unknown_items_with_interactions"] == 1


def test_cleaning_counts_nulls_duplicates_and_repeats(runs) -> None:
    quality = runs["A"].stats["transactions"]
    assert quality["incomplete"] == 4
    assert quality["exact_duplicates"] == 3
    assert quality["repeat_events_collapsed"] >= 297  # the heavy user's 300 views are 3 pairs
    assert quality["pairs"] == runs["A"].manifest["counts"]["interactions"]


@pytest.mark.parametrize("run", ["A", "B"])
def test_fm_channels_read_back_with_the_right_layout_and_labels(spark, runs, run) -> None:
    result = runs[run]
    manifest = result.manifest
    blocks = manifest["blocks"]
    n_users, n_items = blocks["users"]["size"], blocks["items"]["size"]
    interactions = _table(spark, result, contracts.RUN_INTERACTIONS_DIR)
    touched = {(r.user_idx, r.item_idx) for r in interactions}
    item_map = _table(spark, result, contracts.RUN_ITEM_MAP_DIR)
    item_categories = {r.item_idx: r.categories.split("|") if r.categories else [] for r in item_map}
    category_names = {}
    if blocks["categories"]["size"]:
        category_names = {
            r.category_idx: r.category for r in _table(spark, result, contracts.RUN_CATEGORY_MAP_DIR)
        }

    for split, folder in (("train", contracts.RUN_FM_TRAIN_DIR), ("test", contracts.RUN_FM_TEST_DIR)):
        rows, labels, dim, files = _channel(result, folder)
        assert dim == manifest["feature_dim"] == n_users + n_items + blocks["categories"]["size"]
        assert [f.name for f in files] == manifest["fm"]["channels"][split]["files"]
        assert len(labels) == manifest["fm"]["channels"][split]["records"]
        assert set(np.unique(labels)) <= {0.0, 1.0}
        assert np.all(rows.data == 1.0)
        own = {(r.user_idx, r.item_idx): r.label for r in interactions if r.split == split}
        seen = set()
        for k in range(rows.shape[0]):
            keys = rows.indices[rows.indptr[k] : rows.indptr[k + 1]]
            user, item = int(keys[0]), int(keys[1]) - n_users
            assert 0 <= user < n_users
            assert 0 <= item < n_items
            categories = sorted(category_names[int(c) - blocks["categories"]["offset"]] for c in keys[2:])
            if category_names:
                assert categories == sorted(c for c in item_categories[item] if c != "(no genres listed)")
            else:
                assert categories == []
            if (user, item) in own:
                assert labels[k] == own[(user, item)]
                seen.add((user, item))
            else:
                assert labels[k] == 0.0
                assert (user, item) not in touched
        assert seen == set(own)  # every interaction of the split is in its channel
    if run == "A":
        sizes = [f.stat().st_size for f in _channel(result, contracts.RUN_FM_TRAIN_DIR)[3]]
        assert len(sizes) > 1
        assert max(sizes) <= SETTINGS.max_file_bytes


def test_train_and_test_tables_are_the_split_partitions(spark, runs) -> None:
    result = runs["A"]
    train = spark.read.parquet(result.layout.path(contracts.RUN_TRAIN_DIR))
    test = spark.read.parquet(result.layout.path(contracts.RUN_TEST_DIR))
    assert (train.count(), test.count()) == (
        result.manifest["counts"]["train"],
        result.manifest["counts"]["test"],
    )
    assert "split" not in train.columns
    assert {"user_idx", "item_idx", "label", "timestamp"} <= set(train.columns)


def test_dsstne_text_survives_commas_tabs_and_colons(spark, runs) -> None:
    result = runs["A"]
    folder = storage.local_path(result.layout.path(contracts.RUN_DSSTNE_INPUT_DIR))
    assert all(p.name.startswith("part-") for p in folder.iterdir())  # nothing else for generateNetCDF -i
    interactions = _table(spark, result, contracts.RUN_INTERACTIONS_DIR)
    expected: dict[str, set[str]] = {}
    positives: dict[str, set[str]] = {}
    for r in interactions:
        if r.split == "train":
            expected.setdefault(r.user_id, set()).add(r.item_id)
            positives.setdefault(r.user_id, set())
            if r.label:
                positives[r.user_id].add(r.item_id)

    def read(folder_name: str) -> dict[str, set[str]]:
        got: dict[str, set[str]] = {}
        for path in sorted(storage.local_path(result.layout.path(folder_name)).glob("part-*")):
            for line in path.read_text(encoding="utf-8").splitlines():
                parsed = parse_line(line)
                assert parsed is not None
                sample, features, _, warnings = parsed
                assert not warnings
                got[decode_name(sample)] = {decode_name(f) for f in features}
        return got

    assert read(contracts.RUN_DSSTNE_INPUT_DIR) == expected
    assert read(contracts.RUN_DSSTNE_OUTPUT_DIR) == positives  # target "positive"; same users
    assert set(USERS_A) <= set(expected)


def test_manifest_says_how_to_read_the_run(runs) -> None:
    result = runs["A"]
    manifest = json.loads(Path(result.layout.manifest).read_text())
    assert manifest == json.loads(json.dumps(result.manifest))
    blocks = manifest["blocks"]
    assert blocks["users"]["offset"] == 0
    assert blocks["items"]["offset"] == blocks["users"]["size"]
    assert blocks["categories"]["offset"] == blocks["users"]["size"] + blocks["items"]["size"]
    assert blocks["categories"]["size"] == 3  # Drama, Comedy, Horror
    assert manifest["feature_dim"] == sum(b["size"] for b in blocks.values())
    assert manifest["run_id"] == "A"
    assert manifest["previous_run"] is None
    assert manifest["label"]["positive_rating_threshold"] == 4.0
    assert manifest["label"]["positive_events"] == ["purchase", "view"]
    assert manifest["label"]["negatives"]["per_positive"] == 3
    assert manifest["fm"]["content_type"] == "application/x-recordio-protobuf"
    assert manifest["source_files"] == ["transactions/t.csv"]
    counts = manifest["counts"]
    assert counts["users"] == len(USERS_A) + 1  # + "solo"
    assert counts["train"] + counts["test"] == counts["interactions"]
    stats = json.loads(Path(result.layout.path(contracts.RUN_STATS_FILE)).read_text())
    assert stats["negatives"]["train"]["sampled"] > 0


def test_an_existing_run_is_never_overwritten(spark, runs) -> None:
    with pytest.raises(RunExistsError):
        run_preprocess(spark, inputs(spark, _rows_a()), runs["out"], "A")


@pytest.mark.parametrize("rows", [[], [(None, None, None, None), ("u", None, 5, 1.0)]])
def test_an_empty_input_fails_clearly_and_writes_nothing(spark, tmp_path, rows) -> None:
    with pytest.raises(EmptyInputError, match="nothing was written"):
        run_preprocess(spark, inputs(spark, rows), str(tmp_path), "empty", previous="none")
    assert not (tmp_path / "runs").exists()


def test_storage_on_s3(tmp_path, monkeypatch) -> None:
    with mock_s3(monkeypatch, "bucket-x") as s3:
        storage.write_text("s3://bucket-x/run/manifest.json", "{}")
        assert storage.read_text("s3://bucket-x/run/manifest.json") == "{}"
        assert storage.read_text("s3://bucket-x/run/missing.json") is None
        local = tmp_path / "f.pbr"
        local.write_bytes(b"abc")
        storage.put_file(local, "s3://bucket-x/run/fm/f.pbr")
        assert storage.read_bytes("s3://bucket-x/run/fm/f.pbr") == b"abc"
        with storage.files_for("s3://bucket-x/run/parts/") as folder:
            (folder / "part-00001.txt").write_text("x\n")
        assert storage.read_text("s3://bucket-x/run/parts/part-00001.txt") == "x\n"
        assert not folder.exists()  # the scratch folder is gone once uploaded

        def fail_half_way() -> None:
            with storage.files_for("s3://bucket-x/run/failed/") as folder:
                (folder / "half.txt").write_text("x")
                raise RuntimeError("the task failed")

        with pytest.raises(RuntimeError):
            fail_half_way()
        assert storage.read_bytes("s3://bucket-x/run/failed/half.txt") is None  # nothing half-written
        table = pa.table({"user_idx": pa.array([0, 1], pa.int64()), "user_id": ["a", "b,c"]})
        written = "s3://bucket-x/run/user_map/part-00000.parquet"  # a map built on the driver
        storage.write_parquet(table, "s3://bucket-x/run/user_map/", "part-00000.parquet")
        assert storage.read_parquet(written).equals(table)
        assert storage.read_parquet(written, ["user_id"]).column_names == ["user_id"]
        with pytest.raises(FileNotFoundError, match=r"run/user_map/part-00001\.parquet"):
            storage.read_parquet("s3://bucket-x/run/user_map/part-00001.parquet")
        storage.delete_tree("s3://bucket-x/run")
        assert "Contents" not in s3.list_objects_v2(Bucket="bucket-x")


def test_tx_helper(spark) -> None:
    assert tx(spark, [("u", "i", 1, None)]).count() == 1
