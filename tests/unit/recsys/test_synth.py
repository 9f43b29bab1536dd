"""The synthetic generator: exact shape, distinct pairs, determinism, skew and learnable structure."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pytest

from recsys.synth import T_END, T_START, SynthConfig, SynthError, SynthResult, _allocate, synthesize

SMALL = SynthConfig(users=2_000, items=500, interactions=60_000, seed=7)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(tmp_path_factory.mktemp("synth"), SMALL)


def _columns(result: SynthResult) -> dict[str, np.ndarray]:
    table = pa_csv.read_csv(result.transactions_path)
    return {name: table[name].to_numpy() for name in table.column_names}


def test_writes_exact_rows_of_distinct_pairs(small: SynthResult) -> None:
    cols = _columns(small)
    assert list(cols) == ["user_id", "item_id", "timestamp", "rating"]
    assert len(cols["user_id"]) == SMALL.interactions == small.interactions
    pairs = cols["user_id"] * (SMALL.items + 1) + cols["item_id"]
    assert len(np.unique(pairs)) == SMALL.interactions
    assert set(np.unique(cols["user_id"])) == set(range(1, SMALL.users + 1))
    assert cols["item_id"].min() >= 1
    assert cols["item_id"].max() <= SMALL.items
    per_user = np.bincount(cols["user_id"])[1:]
    assert per_user.min() == 20  # MovieLens-like floor: 60k / 2k leaves room for it
    expected_bytes = small.catalog_path.stat().st_size + small.transactions_path.stat().st_size
    assert small.bytes_written == expected_bytes


def test_timestamps_rise_within_each_history_and_ratings_are_half_stars(small: SynthResult) -> None:
    cols = _columns(small)
    user, ts = cols["user_id"], cols["timestamp"]
    assert np.all(np.diff(user) >= 0)  # grouped by user
    same_user = np.diff(user) == 0
    assert np.all(np.diff(ts)[same_user] > 0)
    assert ts.min() >= T_START
    assert ts.max() <= T_END
    ratings = cols["rating"]
    assert set(np.unique(ratings)) <= {v / 2 for v in range(1, 11)}
    assert 3.2 < ratings.mean() < 3.9  # MovieLens averages about 3.5
    raw = small.transactions_path.read_text().splitlines()
    assert raw[0] == "user_id,item_id,timestamp,rating"
    assert raw[1].endswith((".0", ".5"))


def test_catalog_lists_every_item_with_quoted_titles_and_cluster_categories(small: SynthResult) -> None:
    with small.catalog_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["item_id", "title", "categories"]
    assert [int(r["item_id"]) for r in rows] == list(range(1, SMALL.items + 1))
    with_comma = [r["title"] for r in rows if "," in r["title"]]
    assert len(with_comma) > SMALL.items // 5
    assert any(t.endswith(", The") for t in (w.rsplit(" (", 1)[0] for w in with_comma))
    assert '"' in small.catalog_path.read_text()  # comma titles are quoted
    categories = {c for r in rows for c in r["categories"].split("|")}
    assert 2 <= len(categories) <= SMALL.clusters
    assert all(r["categories"] for r in rows)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    config = SynthConfig(users=300, items=200, interactions=9_000, seed=3, block_rows=2_000)
    a = synthesize(tmp_path / "a", config)
    b = synthesize(tmp_path / "b", config)
    c = synthesize(tmp_path / "c", dataclasses.replace(config, seed=4))
    assert a.transactions_path.read_bytes() == b.transactions_path.read_bytes()
    assert a.catalog_path.read_bytes() == b.catalog_path.read_bytes()
    assert a.transactions_path.read_bytes() != c.transactions_path.read_bytes()


def test_item_popularity_is_skewed(tmp_path: Path) -> None:
    result = synthesize(tmp_path, SynthConfig(users=2_000, items=3_000, interactions=60_000, seed=1))
    counts = np.sort(np.bincount(_columns(result)["item_id"], minlength=3_001)[1:])[::-1]
    top_1pct = counts[:30].sum() / counts.sum()
    top_10pct = counts[:300].sum() / counts.sum()
    assert top_1pct > 0.08  # eight times a uniform share; ml-latest-small has 0.16
    assert top_10pct > 0.35  # ml-latest-small has 0.60


def test_full_and_minimal_requests_are_met_exactly(tmp_path: Path) -> None:
    full = synthesize(tmp_path / "full", SynthConfig(users=3, items=4, interactions=12))
    pairs = _columns(full)
    assert sorted(zip(pairs["user_id"], pairs["item_id"], strict=True)) == [
        (u, i) for u in range(1, 4) for i in range(1, 5)
    ]
    one_each = _columns(synthesize(tmp_path / "min", SynthConfig(users=50, items=5, interactions=50)))
    assert np.array_equal(np.bincount(one_each["user_id"])[1:], np.ones(50))


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (SynthConfig(users=10, items=10, interactions=101), "at most 100"),
        (SynthConfig(users=10, items=10, interactions=9), "at least one"),
        (SynthConfig(users=0, items=10, interactions=9), "users must be a positive"),
    ],
)
def test_impossible_requests_are_refused(tmp_path: Path, config: SynthConfig, needle: str) -> None:
    with pytest.raises(SynthError, match=needle):
        synthesize(tmp_path, config)
    assert not (tmp_path / "transactions.csv").exists()


def test_allocate_respects_caps_and_total() -> None:
    weights = np.array([100.0, 1.0, 1.0, 1.0])
    caps = np.array([5, 50, 50, 50])
    got = _allocate(65, weights, caps)
    assert got.sum() == 65
    assert got[0] == 5
    assert np.all(got <= caps)


def _precision_at_10(scores: np.ndarray, held_out: np.ndarray) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    hits = np.take_along_axis(held_out, top, axis=1).sum(axis=1)
    has = held_out.any(axis=1)
    return float(hits[has].mean() / 10)


def test_planted_structure_lets_cooccurrence_beat_popularity(small: SynthResult) -> None:
    cols = _columns(small)
    user, item = cols["user_id"] - 1, cols["item_id"] - 1
    test = np.random.default_rng(0).random(len(user)) < 0.2
    train = np.zeros((SMALL.users, SMALL.items))
    train[user[~test], item[~test]] = 1.0
    held_out = np.zeros((SMALL.users, SMALL.items), dtype=bool)
    held_out[user[test], item[test]] = True
    # Item-item cosine co-occurrence, scored by summing similarities to the user's training items.
    together = train.T @ train
    np.fill_diagonal(together, 0.0)
    norm = np.sqrt(np.maximum(train.sum(axis=0), 1.0))
    cooc = train @ (together / norm[:, None] / norm[None, :])
    popular = np.broadcast_to(train.sum(axis=0), train.shape).copy()
    seen = train > 0
    cooc[seen] = -np.inf
    popular[seen] = -np.inf
    p_cooc, p_pop = _precision_at_10(cooc, held_out), _precision_at_10(popular, held_out)
    assert p_cooc > 1.5 * p_pop
    assert p_cooc - p_pop > 0.05
