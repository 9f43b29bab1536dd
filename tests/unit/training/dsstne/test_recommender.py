"""The autoencoder as a `recsys evaluate` model: registered, fitted, recommending unseen items."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.evaluation import evaluate
from recsys.interactions import Interactions
from recsys.models import make_model, model_names
from recsys.models.base import train_matrix
from training.dsstne.recommender import AutoencoderRecommender


def two_tastes(n_users: int = 120, n_items: int = 40, seed: int = 0) -> Interactions:
    """Even users like items 0..19, odd users 20..39; item 0 and 20 are each side's favourite."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        base = 0 if u % 2 == 0 else 20
        chosen = rng.choice(20, size=8, replace=False, p=np.r_[0.3, np.full(19, 0.7 / 19)]) + base
        users += [u] * len(chosen)
        items += chosen.tolist()
    n = len(users)
    return Interactions(
        user=np.asarray(users, dtype=np.int32),
        item=np.asarray(items, dtype=np.int32),
        timestamp=np.arange(n, dtype=np.int64),
        rating=np.full(n, np.nan, dtype=np.float32),
        user_ids=np.asarray([str(u) for u in range(n_users)], dtype=object),
        item_ids=np.asarray([str(i) for i in range(n_items)], dtype=object),
    )


def test_the_presets_are_registered_models() -> None:
    assert {"autoencoder", "autoencoder-dsstne", "popularity"} <= set(model_names())
    assert make_model("autoencoder", seed=3).name == "autoencoder"


def test_recommends_the_users_own_taste_and_never_a_train_item() -> None:
    data = two_tastes()
    model = AutoencoderRecommender("autoencoder", seed=1, epochs=30, verbose=False)
    model.fit(data)
    exclude = train_matrix(data)
    users = np.arange(10)
    top = model.recommend(users, 5, exclude)
    assert top.shape == (10, 5)
    for user, row in zip(users, top, strict=True):
        side = range(0, 20) if user % 2 == 0 else range(20, 40)
        assert sum(int(i) in side for i in row) >= 4  # mostly its own side of the catalog
        assert not exclude[user, row].toarray().any()


def test_k_beyond_the_unseen_items_pads_with_minus_one() -> None:
    data = two_tastes(n_users=20)
    model = AutoencoderRecommender("autoencoder-dsstne", seed=1, epochs=1, verbose=False)
    model.fit(data)
    top = model.recommend(np.array([0]), 40, train_matrix(data))
    assert (top[0, -8:] == -1).all()  # 40 items, 8 of them seen
    assert len(set(top[0, :32].tolist())) == 32


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="fit the model"):
        AutoencoderRecommender("autoencoder").recommend(np.array([0]), 3, train_matrix(two_tastes(4)))


def test_evaluate_runs_the_autoencoder_and_it_beats_popularity_on_tastes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = two_tastes(n_users=200, seed=2)
    monkeypatch.setattr("training.dsstne.recommender.PRESETS", _short_presets())
    auto = evaluate(data, "autoencoder", split="stratified", k=5)
    popular = evaluate(data, "popularity", split="stratified", k=5)
    assert auto["precision@5"] > popular["precision@5"] + 0.05
    assert auto["rmse"] is None


def _short_presets() -> dict[str, object]:
    from dataclasses import replace

    from training.dsstne import recommender

    return {name: replace(p, epochs=20) for name, p in recommender.PRESETS.items()}
