"""The publish-format writer: round trips, padding and empty lists, atomic parts, and the serving reader
(`recsys.serving.model_files`, what `recsys publish` loads) accepting every file it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsys import contracts
from recsys import model_outputs as mo
from recsys.serving import model_files

ITEM_IDS = np.array(["i0", "i1", "i2", "i3", "i4"])


def write_recs(folder: Path, version: str = "v1") -> None:
    with mo.ListWriter(folder, mo.RECOMMENDATIONS, mo.part_name(0, 3), version, ITEM_IDS) as w:
        w.write_block(["u0", "u1"], np.array([[4, 0, 2], [1, -1, -1]]), np.array([[3, 2, 1], [5, 0, 0]]))
        w.write_block(["u2"], np.array([[-1, -1, -1]]), np.full((1, 3), -np.inf))  # no candidates: skipped
    with mo.ListWriter(folder, mo.RECOMMENDATIONS, mo.part_name(3, 4), version, ITEM_IDS) as w:
        w.write_block(["u3"], np.array([[3, 2, 1]]), np.array([[0.5, 0.25, -1.0]]))


def test_round_trip_drops_padding_and_empty_lists(tmp_path: Path) -> None:
    write_recs(tmp_path)
    table = mo.read_lists(tmp_path, mo.RECOMMENDATIONS)
    assert table.column(contracts.RECS_USER_COLUMN).to_pylist() == ["u0", "u1", "u3"]
    assert table.column(contracts.RECS_ITEM_IDS_COLUMN).to_pylist() == [
        ["i4", "i0", "i2"],
        ["i1"],
        ["i3", "i2", "i1"],
    ]
    assert table.column(contracts.RECS_SCORES_COLUMN).to_pylist() == [[3, 2, 1], [5], [0.5, 0.25, -1.0]]
    assert set(table.column(contracts.RECS_MODEL_VERSION_COLUMN).to_pylist()) == {"v1"}
    assert table.schema.field(contracts.RECS_SCORES_COLUMN).type.value_type == "float"  # float32
    names = [p.name for p in mo.list_parts(tmp_path, mo.RECOMMENDATIONS)]
    assert names == ["part-0000000000-0000000003.parquet", "part-0000000003-0000000004.parquet"]


def test_serving_reader_accepts_the_folder(tmp_path: Path) -> None:
    write_recs(tmp_path, "fm-r1-abc")
    with mo.ListWriter(tmp_path, mo.SIMILAR, mo.part_name(0, 5), "fm-r1-abc", ITEM_IDS) as w:
        w.write_block(ITEM_IDS, np.array([[1, 2]] * 5), np.array([[0.9, 0.1]] * 5))
    mo.write_popularity(tmp_path, ITEM_IDS, np.array([1, 7, 0, 7, 3]))
    mo.write_item_vectors(tmp_path, ITEM_IDS, np.ones((5, 3)), np.arange(5))
    mo.write_model_info(tmp_path, model_version="fm-r1-abc", model_kind="fm", k=3, run_id="r1", num_factors=2)

    info = model_files.read_model_info(tmp_path)
    assert (info.version, info.kind, info.k, info.run_id) == ("fm-r1-abc", "fm", 3, "r1")
    assert info.raw["num_factors"] == 2
    recs = list(model_files.iter_lists(tmp_path, model_files.RECOMMENDATIONS, "fm-r1-abc"))
    assert recs[0] == ("u0", ["i4", "i0", "i2"], [3.0, 2.0, 1.0])
    assert len(recs) == 3
    assert model_files.has_similar_items(tmp_path)
    similar = list(model_files.iter_lists(tmp_path, model_files.SIMILAR, "fm-r1-abc"))
    assert [s[0] for s in similar] == ITEM_IDS.tolist()
    ids, scores = model_files.read_popularity(tmp_path, 10)
    assert ids == ["i1", "i3", "i4", "i0"]  # best first, ties in the given order, zero left out
    assert scores == [7.0, 7.0, 3.0, 1.0]
    path = tmp_path / contracts.MODEL_ITEM_VECTORS_FILE
    vectors = model_files.read_item_vectors(path.read_bytes(), str(path))
    assert vectors.item_ids == ITEM_IDS.tolist()
    assert vectors.factors.dtype == np.float32
    np.testing.assert_array_equal(vectors.bias, np.arange(5, dtype=np.float32))
    ids2, factors2, bias2 = mo.read_item_vectors(tmp_path)
    assert bias2.dtype == np.float32
    assert ids2.tolist() == ITEM_IDS.tolist()
    assert factors2.shape == (5, 3)
    assert mo.read_popularity(tmp_path).num_rows == 4
    assert mo.read_model_info(tmp_path)["model_kind"] == "fm"
    # Only the finished files are left: no hidden temporary files.
    assert not [p for p in tmp_path.rglob(".*")]


def test_failed_block_leaves_no_part(tmp_path: Path) -> None:
    def write_then_fail() -> None:
        with mo.ListWriter(tmp_path, mo.RECOMMENDATIONS, mo.part_name(0, 1), "v1", ITEM_IDS) as w:
            w.write_block(["u0"], np.array([[1]]), np.array([[1.0]]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert mo.list_parts(tmp_path, mo.RECOMMENDATIONS) == []
    assert list((tmp_path / contracts.MODEL_RECS_DIR).iterdir()) == []


def test_batches_stream_every_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with mo.ListWriter(tmp_path, mo.RECOMMENDATIONS, mo.part_name(0, 1000), "v1", ITEM_IDS) as w:
        for start in range(0, 1000, 100):
            items = np.stack([rng.permutation(5)[:4] for _ in range(100)])
            w.write_block([f"u{start + i}" for i in range(100)], items, rng.random((100, 4)))
    assert w.rows == 1000
    assert pq.ParquetFile(w.path).metadata.num_row_groups == 10  # one row group per block
    rows = sum(b.num_rows for b in mo.iter_list_batches(tmp_path, mo.RECOMMENDATIONS, batch_rows=64))
    assert rows == 1000


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model version"):
        mo.ListWriter(tmp_path, mo.RECOMMENDATIONS, "p.parquet", "bad#version", ITEM_IDS)
    with mo.ListWriter(tmp_path, mo.RECOMMENDATIONS, "p.parquet", "v1", ITEM_IDS) as w:
        with pytest.raises(ValueError, match="do not match"):
            w.write_block(["u0"], np.array([[1, 2]]), np.array([[1.0]]))
        with pytest.raises(ValueError, match="out of range"):
            w.write_block(["u0"], np.array([[5]]), np.array([[1.0]]))
        with pytest.raises(ValueError, match="finite"):
            w.write_block(["u0"], np.array([[1]]), np.array([[np.nan]]))
        with pytest.raises(ValueError, match="at most"):
            w.write_block(["u0"], np.zeros((1, 101), np.int64), np.zeros((1, 101)))
    with pytest.raises(ValueError, match="k must be"):
        mo.write_model_info(tmp_path, model_version="v1", model_kind="fm", k=0)
    with pytest.raises(ValueError, match="finite"):
        mo.write_item_vectors(tmp_path, ITEM_IDS, np.full((5, 2), np.inf), np.zeros(5))
    with pytest.raises(ValueError, match="expected item_ids"):
        mo.write_item_vectors(tmp_path, ITEM_IDS, np.ones((4, 2)), np.zeros(5))
