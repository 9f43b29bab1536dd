"""Reading a model folder: every bad row stops the publish with the file, the row and the column."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.serving.model_files import (
    RECOMMENDATIONS,
    ModelFormatError,
    epoch_ms,
    iter_lists,
    read_model_info,
    read_popularity,
)
from tests.unit.recsys.serving.helpers import write_model_folder

POPULAR = [("p1", 2.0), ("p2", 1.0)]


def recs_file(folder: Path, **columns: object) -> Path:
    base: dict[str, object] = {
        "user_id": ["u1"],
        "item_ids": [["a", "b"]],
        "scores": [[1.0, 0.5]],
        "model_version": ["v1"],
    }
    base.update(columns)
    write_model_folder(folder, recommendations={}, popularity=POPULAR)
    for old in (folder / "recommendations").glob("*.parquet"):
        old.unlink()
    path = folder / "recommendations" / "part-00000.parquet"
    pq.write_table(pa.table(base), path)
    return path


def test_a_folder_in_several_parts_is_read_whole(tmp_path: Path) -> None:
    recs = {f"u{n}": [("a", 1.0)] for n in range(7)}
    write_model_folder(tmp_path, recommendations=recs, popularity=POPULAR, parts=3)
    assert [u for u, _, _ in iter_lists(tmp_path, RECOMMENDATIONS, "v1")] == [f"u{n}" for n in range(7)]
    assert read_popularity(tmp_path, 1) == (["p1"], [2.0])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"model_version": ["v0"]}, "row 0: model_version is 'v0', expected 'v1'"),
        ({"scores": [[1.0]]}, "row 0: 2 item_ids but 1 scores"),
        ({"scores": [[1.0, float("nan")]]}, "row 0: scores: nan is not a finite number"),
        ({"user_id": ["a\tb"]}, "row 0: user_id contains a control character"),
        ({"item_ids": [["a", "a"]]}, "row 0: item_ids has duplicates"),
        (
            {"item_ids": [[str(i) for i in range(101)]], "scores": [[1.0] * 101]},
            "row 0: 101 items; at most 100",
        ),
        (
            {
                "user_id": ["u1", "u1"],
                "item_ids": [["a"], ["a"]],
                "scores": [[1.0], [1.0]],
                "model_version": ["v1"] * 2,
            },
            "row 1: user_id 'u1' appears twice",
        ),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, columns: dict[str, object], message: str) -> None:
    path = recs_file(tmp_path, **columns)
    with pytest.raises(ModelFormatError) as caught:
        list(iter_lists(tmp_path, RECOMMENDATIONS, "v1"))
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    write_model_folder(tmp_path, recommendations={}, popularity=POPULAR)
    path = tmp_path / "recommendations" / "part-00000.parquet"
    pq.write_table(pa.table({"user_id": ["u1"]}), path)
    with pytest.raises(ModelFormatError, match="missing column\\(s\\) item_ids, scores, model_version"):
        list(iter_lists(tmp_path, RECOMMENDATIONS, "v1"))


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (None, "missing"),
        ("{", "not valid JSON"),
        ({"model_kind": "fm", "created_at": "2026-01-01"}, "field 'model_version' is missing"),
        (
            {"model_version": "a#b", "model_kind": "fm", "created_at": "2026-01-01"},
            "model_version: model version 'a#b' is not usable",
        ),
        ({"model_version": "live", "model_kind": "fm", "created_at": "2026-01-01"}, "is not usable"),
        ({"model_version": "v1", "model_kind": "fm", "created_at": "yesterday"}, "created_at: 'yesterday'"),
        ({"model_version": "v1", "model_kind": "fm", "created_at": 0, "k": 500}, "k: expected an integer"),
    ],
)
def test_model_json_problems_are_named(tmp_path: Path, info: object, message: str) -> None:
    if info is not None:
        (tmp_path / "model.json").write_text(info if isinstance(info, str) else json.dumps(info))
    with pytest.raises(ModelFormatError, match=message):
        read_model_info(tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000),
        ("2026-01-01", 1_767_225_600_000),
        (1_767_225_600, 1_767_225_600_000),
        ("1767225600.5", 1_767_225_600_500),
        ("soon", None),
        (True, None),
    ],
)
def test_created_at_forms(value: object, expected: int | None) -> None:
    assert epoch_ms(value) == expected
