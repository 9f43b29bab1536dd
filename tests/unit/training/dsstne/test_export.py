"""recs.txt → the publish format: ids decoded, order and scores kept, popularity from the input text."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys import contracts
from recsys.model_outputs import read_lists, read_model_info, read_popularity
from training.dsstne.export import ExportError, export_recommendations


def _write(tmp_path: Path, recs: str, inputs: str) -> tuple[Path, Path]:
    (tmp_path / "recs.txt").write_text(recs, encoding="utf-8")
    (tmp_path / "input.txt").write_text(inputs, encoding="utf-8")
    return tmp_path / "recs.txt", tmp_path / "input.txt"


def test_lists_keep_dsstnes_order_and_scores_with_decoded_ids(tmp_path: Path) -> None:
    recs, inputs = _write(
        tmp_path,
        "u+1\ta,0.900:b%2Cc,0.500:\nu%3A2\tb%2Cc,0.700:\nu3\t\n",
        "u+1\td:e,1700000000\nu%3A2\ta:d\nu3\td\n",
    )
    counts = export_recommendations(
        recs, inputs, tmp_path / "model", model_version="dsstne-r1", run_id="r1", decode_names=True
    )
    assert counts == {"users": 2, "items": 4, "k": 2}
    rows = read_lists(tmp_path / "model", "recommendations").to_pylist()
    assert [(r["user_id"], r["item_ids"]) for r in rows] == [("u 1", ["a", "b,c"]), ("u:2", ["b,c"])]
    assert rows[0]["scores"] == pytest.approx([0.9, 0.5])
    assert {r["model_version"] for r in rows} == {"dsstne-r1"}
    popular = read_popularity(tmp_path / "model").to_pylist()
    assert popular[0] == {"item_id": "d", "score": 3.0}  # in all three users' input
    assert {p["item_id"] for p in popular} == {"a", "d", "e"}  # recommended-only items have no count
    info = read_model_info(tmp_path / "model")
    assert (info["model_kind"], info["k"], info["run_id"]) == ("autoencoder", 2, "r1")


def test_names_stay_raw_without_decoding_and_lists_are_cut_at_k_max(tmp_path: Path) -> None:
    recs, inputs = _write(tmp_path, "a+b\tx%2C,3:y,2:z,1:\n", "a+b\tx%2C\n")
    export_recommendations(recs, inputs, tmp_path / "m", model_version="v1", k_max=2)
    (row,) = read_lists(tmp_path / "m", "recommendations").to_pylist()
    assert (row["user_id"], row["item_ids"]) == ("a+b", ["x%2C", "y"])
    assert (tmp_path / "m" / contracts.MODEL_INFO_FILE).exists()


@pytest.mark.parametrize("line", ["no tab here", "u\tx,notanumber:", "u\t,0.5:", "u\tx,nan:"])
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, line: str) -> None:
    recs, inputs = _write(tmp_path, f"u0\tx,1:\n{line}\n", "u0\tx\n")
    with pytest.raises(ExportError, match=r"recs\.txt, line 2"):
        export_recommendations(recs, inputs, tmp_path / "m", model_version="v1")
    assert not (tmp_path / "m" / contracts.MODEL_INFO_FILE).exists()  # nothing that looks complete
