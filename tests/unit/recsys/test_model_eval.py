"""Scoring publish-format folders against a run's held-out split: hand-computed metrics, users without a
list counting as zero hits, only positive test pairs as truth, popularity without train items, and
corrupt folders refused with the file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import contracts
from recsys import model_outputs as mo
from recsys.model_eval import (
    OutputsError,
    evaluate_outputs,
    evaluate_outputs_at,
    evaluate_popularity,
    popularity_lists,
)

ITEMS = np.array(["a", "b", "c", "d", "e"])


def write_run(run: Path) -> None:
    """u1 and u2 have positives in test; u3's only test pair is a negative (so u3 is not evaluated)."""
    train = pa.table(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["a", "b", "a", "c"],
            "label": [1, 1, 1, 1],
        }
    )
    test = pa.table(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["c", "d", "e", "a"],
            "label": [1, 1, 1, 0],
        }
    )
    for name, table in ((contracts.RUN_TRAIN_DIR, train), (contracts.RUN_TEST_DIR, test)):
        (run / name).mkdir(parents=True)
        pq.write_table(table, run / name / "part-0.parquet")
    (run / contracts.RUN_POPULARITY_DIR).mkdir(parents=True)
    pop = pa.table({"item_idx": [0, 1, 2, 3, 4], "item_id": list(ITEMS), "train_count": [3, 1, 2, 1, 0]})
    pq.write_table(pop, run / contracts.RUN_POPULARITY_DIR / "part-0.parquet")


def write_model(folder: Path, rows: dict[str, list[int]], version: str = "fm-test") -> None:
    users = list(rows)
    k = max(len(r) for r in rows.values())
    ids = np.array([r + [-1] * (k - len(r)) for r in rows.values()])
    scores = np.where(ids >= 0, -np.arange(k, dtype=np.float64)[None, :], 0.0)
    with mo.ListWriter(folder, mo.RECOMMENDATIONS, mo.part_name(0, len(users)), version, ITEMS) as w:
        w.write_block(users, ids, scores)
    mo.write_model_info(folder, model_version=version, model_kind="fm", k=k)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    write_run(tmp_path / "run")
    return tmp_path / "run"


def test_hand_computed_metrics(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    # u1: c (hit), e (miss) -> 1 hit of 2 relevant; u2: e (hit) first -> 1 hit of 1.
    write_model(model, {"u1": [2, 4], "u2": [4, 0]})
    m = evaluate_outputs(model, run, k=2)
    assert m["users"] == 2
    assert m["users_with_list"] == 2
    assert m["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["map@2"] == pytest.approx((1 / 2 + 1) / 2)  # u1: 1/1 over min(2, 2); u2: 1/1 over 1
    ideal_u1 = 1 + 1 / np.log2(3)
    assert m["ndcg@2"] == pytest.approx((1 / ideal_u1 + 1) / 2)
    # distinct recommended {c, e, a} over distinct train items {a, b, c}
    assert m["coverage"] == pytest.approx(3 / 3)


def test_users_without_a_list_count_as_zero_hits(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model, {"u2": [4]})  # u1 has no list
    m = evaluate_outputs(model, run, k=1)
    assert m["users_with_list"] == 1
    assert m["users"] == 2
    assert m["precision@1"] == pytest.approx(0.5)
    assert m["recall@1"] == pytest.approx(0.5)


def test_negative_test_pairs_are_not_truth(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model, {"u1": [0], "u2": [0], "u3": [0]})  # a is u3's (negative) test pair
    m = evaluate_outputs(model, run, k=1)
    assert m["users"] == 2  # u3 has no positive test pair
    assert m["precision@1"] == 0.0


def test_several_k_from_one_read(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model, {"u1": [4, 2, 3], "u2": [0, 1, 4]})
    at = evaluate_outputs_at(model, run, (1, 3))
    assert at[1]["precision@1"] == 0.0
    assert at[3]["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert at[3]["recall@3"] == pytest.approx(1.0)


def test_popularity_excludes_train_items(run: Path) -> None:
    lists = popularity_lists(run, 2)
    assert lists == {"u1": ["c", "d"], "u2": ["c", "b"]}  # u1 saw a, b; u2 saw a; ties keep item order
    m = evaluate_popularity(run, k=2)
    assert m["precision@2"] == pytest.approx((2 / 2 + 0) / 2)
    assert m["recall@2"] == pytest.approx((1 + 0) / 2)


def test_corrupt_part_file_is_refused_with_its_name(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model, {"u1": [2]})
    part = next((model / contracts.MODEL_RECS_DIR).glob("*.parquet"))
    part.write_bytes(b"not parquet at all")
    with pytest.raises(OutputsError, match="unreadable model output"):
        evaluate_outputs(model, run)


def test_missing_model_json_and_wrong_version_are_refused(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model, {"u1": [2]})
    (model / contracts.MODEL_INFO_FILE).unlink()
    with pytest.raises(OutputsError, match=r"model\.json"):
        evaluate_outputs(model, run)
    mo.write_model_info(model, model_version="other-version", model_kind="fm", k=1)
    with pytest.raises(OutputsError, match="row 0"):
        evaluate_outputs(model, run)


def test_incomplete_run_is_named(tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model, {"u1": [2]})
    with pytest.raises(OutputsError, match="split=test"):
        evaluate_outputs(model, tmp_path / "no-run")
