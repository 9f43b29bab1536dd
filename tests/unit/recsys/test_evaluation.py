"""The evaluation harness end to end on synthetic data: keys, sizes, determinism, contracts, sanity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import models
from recsys.evaluation import evaluate
from recsys.interactions import Interactions

KEYS = {
    "model",
    "split",
    "k",
    "test_ratio",
    "seed",
    "n_users",
    "n_items",
    "n_train",
    "n_test",
    "n_test_users",
    "precision@10",
    "recall@10",
    "ndcg@10",
    "map@10",
    "map",
    "coverage",
    "rmse",
    "fit_seconds",
    "recommend_seconds",
}


def skewed(n_users: int = 300, n_items: int = 200, per_user: int = 30, ratings: bool = True) -> Interactions:
    """Each user picks distinct items with Zipf-like popularity: a popularity model should shine."""
    rng = np.random.default_rng(1)
    weights = 1.0 / np.arange(1, n_items + 1) ** 1.1
    weights /= weights.sum()
    items = np.concatenate([rng.choice(n_items, per_user, replace=False, p=weights) for _ in range(n_users)])
    n = len(items)
    return Interactions(
        user=np.repeat(np.arange(n_users), per_user).astype(np.int32),
        item=items.astype(np.int32),
        timestamp=rng.integers(0, 10**6, n).astype(np.int64),
        rating=(rng.integers(1, 6, n) if ratings else np.full(n, np.nan)).astype(np.float32),
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
    )


@pytest.fixture(scope="module")
def data() -> Interactions:
    return skewed()


def test_result_has_every_key_and_consistent_sizes(data: Interactions) -> None:
    result = evaluate(data, "popularity")
    assert set(result) == KEYS
    assert result["n_train"] + result["n_test"] == len(data)
    # 30 interactions per user: round(7.5) = 8 to test, 22 to train
    assert result["n_test"] == 300 * 8
    assert result["n_test_users"] == 300
    assert (result["n_users"], result["n_items"]) == (300, 200)
    assert 0 < result["coverage"] <= 1
    assert result["fit_seconds"] >= 0


@pytest.mark.parametrize("split", ["stratified", "temporal"])
def test_popularity_beats_random_on_skewed_data(data: Interactions, split: str) -> None:
    pop = evaluate(data, "popularity", split=split)
    rnd = evaluate(data, "random", split=split)
    for metric in ("precision@10", "recall@10", "ndcg@10", "map@10", "map"):
        assert pop[metric] > 2 * rnd[metric], metric
    assert rnd["coverage"] > pop["coverage"]  # random spreads over the catalog, popularity does not


def test_rmse_only_for_models_that_predict_ratings(data: Interactions) -> None:
    pop = evaluate(data, "popularity")
    assert isinstance(pop["rmse"], float)
    assert 0.5 < pop["rmse"] < 2.5
    assert evaluate(data, "random")["rmse"] is None
    assert evaluate(skewed(ratings=False), "popularity")["rmse"] is None


def test_same_seed_same_numbers_other_seed_other_split(data: Interactions) -> None:
    def scores(seed: int) -> dict[str, object]:
        result = evaluate(data, "random", seed=seed)
        return {k: v for k, v in result.items() if not k.endswith("seconds")}

    assert scores(4) == scores(4)
    assert scores(4) != scores(5)


def test_k_names_the_metric_keys(data: Interactions) -> None:
    result = evaluate(data, "popularity", k=5, test_ratio=0.2)
    assert "precision@5" in result
    assert "map@5" in result
    assert "precision@10" not in result
    assert result["k"] == 5
    assert result["test_ratio"] == 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": "nope"}, "unknown model"),
        ({"model_name": "popularity", "k": 0}, "k must be"),
        ({"model_name": "popularity", "test_ratio": 1.0}, "test ratio"),
        ({"model_name": "popularity", "split": "random"}, "unknown split"),
    ],
)
def test_bad_settings_raise_value_error(data: Interactions, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(data, **kwargs)  # type: ignore[arg-type]


def test_no_test_users_is_an_error() -> None:
    one_each = Interactions(
        user=np.array([0, 1], dtype=np.int32),
        item=np.array([0, 1], dtype=np.int32),
        timestamp=np.array([1, 2], dtype=np.int64),
        rating=np.array([np.nan, np.nan], dtype=np.float32),
        user_ids=np.array(["a", "b"], dtype=object),
        item_ids=np.array(["x", "y"], dtype=object),
    )
    with pytest.raises(ValueError, match="no user has enough interactions"):
        evaluate(one_each, "popularity")


class Cheater:
    """Recommends each user's own train items: the harness must refuse the result."""

    name = "cheater"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train: Interactions) -> None:
        pass

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        out = np.full((len(users), k), -1, dtype=np.int64)
        for row, user in enumerate(users):
            seen = exclude[user].indices[:k]
            out[row, : len(seen)] = seen
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        return None


def test_a_model_recommending_train_items_is_refused(
    data: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(models.MODELS, "cheater", Cheater)
    with pytest.raises(RuntimeError, match="train interactions"):
        evaluate(data, "cheater")
