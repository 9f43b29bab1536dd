"""The `fm` and `fm-regressor` evaluation plugins end to end on a tiny Interactions with planted taste."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.evaluation import evaluate
from recsys.interactions import Interactions, ItemCatalog
from recsys.models import make_model
from training.fm.recommender import FmRecommender

N_USERS, N_ITEMS = 40, 30


def planted(seed: int = 0, catalog: bool = True) -> Interactions:
    """Even users watch (and rate high) even items, odd users odd items, plus a little noise."""
    rng = np.random.default_rng(seed)
    users, items, ratings = [], [], []
    for user in range(N_USERS):
        liked = [i for i in range(N_ITEMS) if i % 2 == user % 2]
        chosen = set(rng.choice(liked, 9, replace=False).tolist()) | {int(rng.integers(N_ITEMS))}
        for item in sorted(chosen):
            users.append(user)
            items.append(item)
            ratings.append(4.5 if item % 2 == user % 2 else 2.0)
    n = len(users)
    cat = (
        ItemCatalog(
            np.array([f"t{i}" for i in range(N_ITEMS)], object),
            np.array(["Even" if i % 2 == 0 else "Odd" for i in range(N_ITEMS)], object),
        )
        if catalog
        else None
    )
    return Interactions(
        user=np.array(users, np.int32),
        item=np.array(items, np.int32),
        timestamp=np.arange(n, dtype=np.int64),
        rating=np.array(ratings, np.float32),
        user_ids=np.array([f"u{i}" for i in range(N_USERS)], object),
        item_ids=np.array([f"i{i}" for i in range(N_ITEMS)], object),
        catalog=cat,
    )


def test_the_plugins_are_registered() -> None:
    assert isinstance(make_model("fm", 1), FmRecommender)
    regressor = make_model("fm-regressor", 1)
    assert isinstance(regressor, FmRecommender)
    assert regressor.preset.predictor_type == "regressor"


def test_rows_are_one_hot_users_items_and_categories() -> None:
    data = planted()
    model = FmRecommender("fm", 3, verbose=False, negatives_per_positive=2, positive_threshold=4.0)
    matrix, labels, layout = model.rows(data)
    n_pos = int(labels[: len(data)].sum())
    assert len(data) + n_pos < matrix.shape[0] <= len(data) + 2 * n_pos  # ≤ 2 negatives per positive
    assert matrix.shape[1] == N_USERS + N_ITEMS + 2
    assert layout.blocks == {
        "users": (0, N_USERS),
        "items": (N_USERS, N_ITEMS),
        "categories": (N_USERS + N_ITEMS, 2),
    }
    first = matrix[0].indices.tolist()
    assert first == [
        int(data.user[0]),
        N_USERS + int(data.item[0]),
        N_USERS + N_ITEMS + int(data.item[0]) % 2,
    ]
    assert np.all(np.diff(matrix.indptr) == 3)
    assert labels[: len(data)].tolist() == [1.0 if r >= 4 else 0.0 for r in data.rating]
    without = FmRecommender("fm", 3, verbose=False, categories=False).rows(planted(catalog=False))[0]
    assert without.shape[1] == N_USERS + N_ITEMS


def test_fm_ranks_the_planted_taste_through_the_harness() -> None:
    data = planted()
    fm = evaluate(data, "fm", split="stratified", test_ratio=0.25, k=5, seed=42)
    popularity = evaluate(data, "popularity", split="stratified", test_ratio=0.25, k=5, seed=42)
    assert fm["precision@5"] > 1.5 * popularity["precision@5"]
    assert fm["rmse"] is None


def test_the_regressor_predicts_ratings() -> None:
    data = planted()
    result = evaluate(data, "fm-regressor", split="stratified", test_ratio=0.25, k=5, seed=42)
    assert result["rmse"] is not None
    assert result["rmse"] < 1.0  # ratings are 4.5 or 2.0: the global mean would miss by about 1
    model = FmRecommender("fm-regressor", 0, verbose=False)
    model.fit(data)
    predicted = model.predict(np.array([0, 0, 1]), np.array([2, 3, 3]))
    assert predicted is not None
    assert predicted[0] > predicted[1]
    assert predicted[2] > predicted[1]
    assert predicted.min() >= 2.0
    assert predicted.max() <= 4.5


def test_recommend_before_fit_fails() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        FmRecommender("fm", verbose=False).recommend(np.array([0]), 3, make_sparse())


def make_sparse() -> object:
    import scipy.sparse as sp

    return sp.csr_matrix((1, N_ITEMS))
