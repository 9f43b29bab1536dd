"""The FM artifact: save/load round trip, the layout of a run, and exact item vectors with categories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import contracts
from training.fm.artifact import ArtifactError, FeatureLayout, FmModel, load_layout


def _layout() -> FeatureLayout:
    # 3 users, 4 items, 2 categories; item 0 has both categories, item 2 one, items 1 and 3 none.
    return FeatureLayout(
        {"users": (0, 3), "items": (3, 4), "categories": (7, 2)},
        np.array(["u0", "u1", "u2"]),
        np.array(["a", "b", "c", "d"]),
        np.array([0, 2, 2, 3, 3]),
        np.array([0, 1, 1]),
    )


def _model(layout: FeatureLayout | None = None, seed: int = 0) -> FmModel:
    rng = np.random.default_rng(seed)
    return FmModel(
        0.3,
        rng.normal(size=9).astype(np.float32),
        rng.normal(size=(9, 4)).astype(np.float32),
        "binary_classifier",
        {"num_factors": "4"},
        layout,
    )


def _full_fm(model: FmModel, x: np.ndarray) -> float:
    """The model equation on a dense feature vector, in float64, term by term."""
    v, w = model.V.astype(np.float64), model.w.astype(np.float64)
    pairs = sum(float(v[i] @ v[j]) * x[i] * x[j] for i in range(len(x)) for j in range(i + 1, len(x)))
    return model.w0 + float(w @ x) + pairs


def test_pair_scores_equal_the_model_equation_with_category_features() -> None:
    model = _model(_layout())
    layout = model.layout
    assert layout is not None
    for user in range(3):
        for item in range(4):
            x = np.zeros(9)
            x[user] = 1
            x[3 + item] = 1
            for c in layout.item_category_indices[
                layout.item_category_indptr[item] : layout.item_category_indptr[item + 1]
            ]:
                x[7 + c] = 1
            got = model.score_pairs(np.array([user]), np.array([item]))[0]
            assert got == pytest.approx(_full_fm(model, x), rel=1e-5, abs=1e-5)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = _model(_layout())
    model.save(tmp_path / "m.npz")
    loaded = FmModel.load(tmp_path / "m.npz")
    assert loaded.w0 == pytest.approx(0.3)
    np.testing.assert_array_equal(loaded.w, model.w)
    np.testing.assert_array_equal(loaded.V, model.V)
    assert loaded.predictor_type == "binary_classifier"
    assert loaded.hyperparameters == {"num_factors": "4"}
    assert loaded.layout is not None
    assert loaded.layout.blocks == model.layout.blocks  # type: ignore[union-attr]
    assert list(loaded.layout.item_ids) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(loaded.item_factors()[0], model.item_factors()[0])


def test_a_model_without_layout_cannot_rank(tmp_path: Path) -> None:
    model = _model()
    model.save(tmp_path / "bare.npz")
    with pytest.raises(ArtifactError, match="no feature layout"):
        FmModel.load(tmp_path / "bare.npz").user_factors()


def test_files_that_are_not_artifacts_are_named(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match=r"junk\.npz"):
        FmModel.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ArtifactError, match="missing V, predictor_type, w, w0"):
        FmModel.load(tmp_path / "other.npz")


def test_shapes_are_checked() -> None:
    with pytest.raises(ArtifactError, match="feature_dim"):
        FmModel(0.0, np.zeros(5, np.float32), np.zeros((4, 2), np.float32), "regressor")
    with pytest.raises(ArtifactError, match="layout needs 9 features"):
        FmModel(0.0, np.zeros(5, np.float32), np.zeros((5, 2), np.float32), "regressor", {}, _layout())


def _write_run(run: Path, users: list[str], items: list[tuple[str, str]], categories: list[str]) -> None:
    manifest = {
        "blocks": {
            "users": {"offset": 0, "size": len(users)},
            "items": {"offset": len(users), "size": len(items)},
            "categories": {"offset": len(users) + len(items), "size": len(categories)},
        }
    }
    run.mkdir(parents=True)
    (run / contracts.RUN_MANIFEST_FILE).write_text(json.dumps(manifest))
    for folder, table in (
        (contracts.RUN_USER_MAP_DIR, {"user_idx": list(range(len(users)))[::-1], "user_id": users[::-1]}),
        (
            contracts.RUN_ITEM_MAP_DIR,
            {
                "item_idx": list(range(len(items))),
                "item_id": [i for i, _ in items],
                "categories": [c for _, c in items],
            },
        ),
        (
            contracts.RUN_CATEGORY_MAP_DIR,
            {"category_idx": list(range(len(categories))), "category": categories},
        ),
    ):
        (run / folder).mkdir()
        pq.write_table(pa.table(table), run / folder / "part-0.parquet")


def test_layout_of_a_preprocessing_run(tmp_path: Path) -> None:
    _write_run(
        tmp_path / "r1", ["u0", "u1"], [("i0", "Drama|War"), ("i1", ""), ("i2", "War")], ["War", "Drama"]
    )
    layout = load_layout(tmp_path / "r1")
    assert list(layout.user_ids) == ["u0", "u1"]  # sorted by index, whatever the file order
    assert layout.blocks["categories"] == (5, 2)
    assert layout.feature_dim == 7
    assert list(layout.item_category_indptr) == [0, 2, 2, 3]
    assert list(layout.item_category_indices) == [0, 1, 0]


def test_layout_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json"):
        load_layout(tmp_path)
    _write_run(tmp_path / "r2", ["u0"], [("i0", "")], [])
    manifest = json.loads((tmp_path / "r2" / contracts.RUN_MANIFEST_FILE).read_text())
    manifest["blocks"]["users"]["size"] = 2
    (tmp_path / "r2" / contracts.RUN_MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="do not match the id maps"):
        load_layout(tmp_path / "r2")
