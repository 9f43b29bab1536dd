"""`recsys fm recommend` on a tiny run: the written lists equal a brute-force ranking by the model equation
(`FmModel.score_pairs`, categories included), seen items are excluded, shards concatenate to the full
result, and bad input gets a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import contracts
from recsys import model_outputs as mo
from recsys.cli.main import main
from recsys.serving import model_files
from training.fm.artifact import FmModel, load_layout
from training.fm.recommend import RecommendError, RecommendSettings, recommend

N_USERS, N_ITEMS, N_CATS, FACTORS = 7, 30, 3, 4


def make_run(root: Path, seed: int = 0) -> Path:
    """A preprocessing run's files that top-k reads: manifest, maps, train interactions, popularity."""
    rng = np.random.default_rng(seed)
    run = root / "run"
    blocks = {
        "users": {"offset": 0, "size": N_USERS},
        "items": {"offset": N_USERS, "size": N_ITEMS},
        "categories": {"offset": N_USERS + N_ITEMS, "size": N_CATS},
    }
    run.mkdir(parents=True)
    (run / contracts.RUN_MANIFEST_FILE).write_text(json.dumps({"run_id": "t1", "blocks": blocks}))

    def parquet(folder: str, columns: dict[str, list[object]]) -> None:
        (run / folder).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), run / folder / "part-00000.parquet")

    parquet(
        contracts.RUN_USER_MAP_DIR,
        {"user_idx": list(range(N_USERS)), "user_id": [f"u{i}" for i in range(N_USERS)]},
    )
    cats = ["Drama", "Comedy", "Horror"]
    item_cats = ["|".join(c for c in cats if rng.random() < 0.4) for _ in range(N_ITEMS)]
    parquet(
        contracts.RUN_ITEM_MAP_DIR,
        {
            "item_idx": list(range(N_ITEMS)),
            "item_id": [f"m{i}" for i in range(N_ITEMS)],
            "categories": item_cats,
        },
    )
    parquet(contracts.RUN_CATEGORY_MAP_DIR, {"category_idx": [0, 1, 2], "category": cats})
    users, items = [], []
    for u in range(N_USERS):
        n_seen = N_ITEMS - 1 if u == 3 else int(rng.integers(0, 10))  # user 3 has one unseen item left
        seen = rng.choice(N_ITEMS, size=n_seen, replace=False)
        users += [u] * n_seen
        items += seen.tolist()
    users += [0, 0]  # a repeated pair must not matter
    items += [items[0], items[0]] if items else [0, 0]
    parquet(contracts.RUN_TRAIN_DIR, {"user_idx": users, "item_idx": items})
    parquet(contracts.RUN_TEST_DIR, {"user_idx": [1, 2], "item_idx": [5, 6]})
    counts = rng.integers(0, 20, N_ITEMS)
    parquet(
        contracts.RUN_POPULARITY_DIR,
        {
            "item_idx": list(range(N_ITEMS)),
            "item_id": [f"m{i}" for i in range(N_ITEMS)],
            "count": counts.tolist(),
        },
    )
    return run


def make_model(root: Path, run: Path, *, with_layout: bool = True, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    dim = N_USERS + N_ITEMS + N_CATS
    model = FmModel(
        0.2,
        rng.normal(size=dim).astype(np.float32),
        rng.normal(size=(dim, FACTORS)).astype(np.float32),
        "binary_classifier",
        {"num_factors": str(FACTORS)},
        load_layout(run) if with_layout else None,
    )
    path = root / ("model.npz" if with_layout else "bare.npz")
    model.save(path)
    return path


def seen_sets(run: Path) -> list[set[int]]:
    table = pq.read_table(run / contracts.RUN_TRAIN_DIR)
    seen: list[set[int]] = [set() for _ in range(N_USERS)]
    for u, i in zip(table.column("user_idx").to_pylist(), table.column("item_idx").to_pylist(), strict=True):
        seen[u].add(i)
    return seen


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    run = make_run(tmp_path)
    return run, make_model(tmp_path, run)


def lists_of(out: Path, kind: mo.ListKind = mo.RECOMMENDATIONS) -> dict[str, tuple[list[str], list[float]]]:
    table = mo.read_lists(out, kind).to_pylist()
    key = contracts.RECS_USER_COLUMN if kind == mo.RECOMMENDATIONS else contracts.RECS_ITEM_COLUMN
    return {r[key]: (r[contracts.RECS_ITEM_IDS_COLUMN], r[contracts.RECS_SCORES_COLUMN]) for r in table}


def test_lists_equal_brute_force_by_the_model_equation(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, model_path = setup
    out = tmp_path / "out"
    result = recommend(RecommendSettings(model=model_path, run=run, out=out, k=5, progress=False, threads=2))
    model = FmModel.load(model_path)
    lists = lists_of(out)
    seen = seen_sets(run)
    _, user_bias = model.user_factors()
    for u in range(N_USERS):
        full = model.score_pairs(np.full(N_ITEMS, u), np.arange(N_ITEMS)).astype(np.float64)
        candidates = [i for i in np.argsort(-full, kind="stable") if i not in seen[u]][:5]
        ids, scores = lists[f"u{u}"]
        assert ids == [f"m{i}" for i in candidates]
        assert not {f"m{i}" for i in seen[u]} & set(ids)
        # Stored scores are the ranking part: the model score less w0 + w_u.
        np.testing.assert_allclose(scores, full[candidates] - model.w0 - user_bias[u], rtol=1e-4, atol=1e-4)
    assert len(lists["u3"][0]) == 1  # one unseen item left: the list is shorter, not padded
    assert result.lists_written == N_USERS
    assert result.shared_files


def test_shared_files(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, model_path = setup
    out = tmp_path / "out"
    recommend(RecommendSettings(model=model_path, run=run, out=out, k=4, model_version="v-7", progress=False))
    model = FmModel.load(model_path)
    item_vec, item_bias = model.item_factors()
    info = model_files.read_model_info(out)  # the publish step's checking reader accepts the folder
    assert (info.version, info.kind, info.k, info.run_id) == ("v-7", "fm", 4, "t1")
    assert len(list(model_files.iter_lists(out, model_files.RECOMMENDATIONS, "v-7"))) == N_USERS
    similar = lists_of(out, mo.SIMILAR)
    unit = item_vec / np.linalg.norm(item_vec, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    for i in range(N_ITEMS):
        ids, sims = similar[f"m{i}"]
        want = np.argsort(-cosine[i], kind="stable")[:4]
        assert ids == [f"m{j}" for j in want]
        np.testing.assert_allclose(sims, cosine[i, want], rtol=1e-5, atol=1e-5)
    ids, factors, bias = mo.read_item_vectors(out)
    assert ids.tolist() == [f"m{i}" for i in range(N_ITEMS)]
    np.testing.assert_allclose(factors, item_vec)
    np.testing.assert_allclose(bias, item_bias)
    counts = pq.read_table(run / contracts.RUN_POPULARITY_DIR).column("count").to_numpy()
    popular = mo.read_popularity(out)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    assert popular.column(contracts.RECS_ITEM_COLUMN).to_pylist() == [f"m{i}" for i in order]


def test_shards_concatenate_to_the_full_result(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, model_path = setup
    full, sharded = tmp_path / "full", tmp_path / "sharded"
    recommend(RecommendSettings(model=model_path, run=run, out=full, k=6, progress=False))
    second = recommend(
        RecommendSettings(model=model_path, run=run, out=sharded, k=6, users=(3, 100), progress=False)
    )
    assert not second.shared_files
    assert not (sharded / contracts.MODEL_INFO_FILE).exists()  # only the shard at 0 writes model.json
    recommend(
        RecommendSettings(
            model=model_path, run=run, out=sharded, k=6, users=(0, 3), block_users=2, progress=False
        )
    )
    assert second.users == (3, N_USERS)
    assert [p.name for p in mo.list_parts(sharded, mo.RECOMMENDATIONS)] == [
        mo.part_name(0, 3),
        mo.part_name(3, N_USERS),
    ]
    assert mo.read_lists(sharded, mo.RECOMMENDATIONS).equals(mo.read_lists(full, mo.RECOMMENDATIONS))
    assert mo.read_model_info(sharded)["model_version"] == mo.read_model_info(full)["model_version"]


def test_model_without_layout_takes_the_runs(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, model_path = setup
    bare = make_model(tmp_path, run, with_layout=False)
    recommend(
        RecommendSettings(model=bare, run=run, out=tmp_path / "a", k=3, model_version="v", progress=False)
    )
    recommend(
        RecommendSettings(
            model=model_path, run=run, out=tmp_path / "b", k=3, model_version="v", progress=False
        )
    )
    assert mo.read_lists(tmp_path / "a", mo.RECOMMENDATIONS).equals(
        mo.read_lists(tmp_path / "b", mo.RECOMMENDATIONS)
    )


def test_no_similar(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, model_path = setup
    out = tmp_path / "out"
    assert (
        main(
            [
                "fm",
                "recommend",
                "--model",
                str(model_path),
                "--run",
                str(run),
                "--out",
                str(out),
                "--no-similar",
                "--no-progress",
            ]
        )
        == 0
    )
    assert not model_files.has_similar_items(out)
    assert (out / contracts.MODEL_POPULARITY_FILE).is_file()


def cli(model: Path, run: Path, out: Path, *extra: str) -> int:
    argv = ["fm", "recommend", "--model", str(model), "--run", str(run), "--out", str(out), "--no-progress"]
    return main([*argv, *extra])


@pytest.mark.parametrize("bad", ["5", "3:1", "-1:4", "a:b", "2:2"])
def test_cli_rejects_a_malformed_user_range(setup: tuple[Path, Path], tmp_path: Path, bad: str) -> None:
    run, model_path = setup
    with pytest.raises(SystemExit) as exc:
        cli(model_path, run, tmp_path / "out", f"--users={bad}")
    assert exc.value.code == 2


def test_cli_errors_name_the_problem(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, model_path = setup
    out = tmp_path / "out"
    assert cli(model_path, run, out, "--users", "7:9") == 1
    assert "past the last user" in capsys.readouterr().err
    assert cli(tmp_path / "missing.npz", run, out) == 1
    assert "missing.npz" in capsys.readouterr().err
    assert cli(model_path, tmp_path / "norun", out) == 1
    assert "norun" in capsys.readouterr().err
    assert cli(model_path, run, out, "--k", "101") == 1
    assert "--k must be" in capsys.readouterr().err
    assert cli(model_path, run, out, "--model-version", "bad#v") == 1
    assert "--model-version" in capsys.readouterr().err
    other = make_run(tmp_path / "other", seed=5)
    (other / contracts.RUN_USER_MAP_DIR / "part-00000.parquet").unlink()
    pq.write_table(
        pa.table({"user_idx": list(range(N_USERS)), "user_id": [f"x{i}" for i in range(N_USERS)]}),
        other / contracts.RUN_USER_MAP_DIR / "part-00000.parquet",
    )
    assert cli(model_path, other, out) == 1
    assert "not those of the run" in capsys.readouterr().err
    broken = make_run(tmp_path / "broken")
    for part in (broken / contracts.RUN_TRAIN_DIR).iterdir():
        part.unlink()
    (broken / contracts.RUN_TRAIN_DIR).rmdir()
    assert cli(model_path, broken, out) == 1
    assert "train interactions" in capsys.readouterr().err
    assert not mo.list_parts(out, mo.RECOMMENDATIONS)  # nothing half written


def test_settings_errors(setup: tuple[Path, Path], tmp_path: Path) -> None:
    run, model_path = setup
    with pytest.raises(RecommendError, match="START < END"):
        recommend(RecommendSettings(model=model_path, run=run, out=tmp_path, users=(4, 2), progress=False))
