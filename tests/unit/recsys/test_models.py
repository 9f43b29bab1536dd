"""Baseline models: ranking, exclusion of train items, padding, seeding, rating predictions, registry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.interactions import Interactions
from recsys.models import MODELS, Popularity, RandomModel, Recommender, make_model
from recsys.models import popularity as popularity_module
from recsys.models import random_model as random_module
from recsys.models.base import blocked_positions, nth_allowed, train_matrix
from recsys.models.random_model import sample_ranks


def make(
    user: list[int], item: list[int], rating: list[float] | None = None, n_items: int = 0
) -> Interactions:
    n_items = max(n_items, max(item) + 1)
    return Interactions(
        user=np.asarray(user, dtype=np.int32),
        item=np.asarray(item, dtype=np.int32),
        timestamp=np.arange(len(user), dtype=np.int64),
        rating=np.asarray(rating if rating is not None else [np.nan] * len(user), dtype=np.float32),
        user_ids=np.array([str(u) for u in range(max(user) + 1)], dtype=object),
        item_ids=np.array([str(i) for i in range(n_items)], dtype=object),
    )


def random_data(n_users: int = 200, n_items: int = 80, n: int = 3000, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    item = np.minimum(rng.zipf(1.5, n) - 1, n_items - 1)
    return make(rng.integers(0, n_users, n).tolist(), item.tolist(), n_items=n_items)


def assert_valid_lists(top: np.ndarray, users: np.ndarray, exclude: sp.csr_matrix, k: int) -> None:
    assert top.shape == (len(users), k)
    for row, user in zip(top, users, strict=True):
        items = row[row >= 0]
        assert len(set(items.tolist())) == len(items), "duplicate items in a list"
        assert (row[len(items) :] == -1).all(), "padding must be trailing"
        assert not set(items.tolist()) & set(exclude[user].indices.tolist()), "a train item was recommended"


def test_nth_allowed_skips_blocked_positions() -> None:
    # 8 positions, row 0 blocks {1, 2, 5}: allowed 0, 3, 4, 6, 7; row 1 blocks nothing.
    blocked = sp.csr_matrix(([1, 1, 1], ([0, 0, 0], [1, 2, 5])), shape=(2, 8))
    ranks = np.array([[0, 1, 2, 3, 4], [0, 1, 2, -1, -1]])
    assert nth_allowed(blocked, ranks).tolist() == [[0, 3, 4, 6, 7], [0, 1, 2, -1, -1]]


def test_blocked_positions_maps_and_drops_non_candidates() -> None:
    exclude = sp.csr_matrix(([1, 1, 1], ([0, 0, 1], [0, 3, 2])), shape=(2, 4))
    position = np.array([2, 0, -1, 1])  # item 2 is not a candidate
    blocked = blocked_positions(exclude, np.array([1, 0]), position, 3)
    assert [blocked[r].indices.tolist() for r in range(2)] == [[], [1, 2]]


def test_popularity_ranks_by_distinct_users_ties_to_lower_index() -> None:
    # item 2: users {0, 1, 2}; item 0: {0, 1} (user 0 twice); item 1: {3}; item 3: {2}; item 4 unseen.
    data = make([0, 0, 1, 0, 1, 2, 3, 2], [0, 0, 0, 2, 2, 2, 1, 3], n_items=5)
    model = Popularity()
    model.fit(data)
    empty = sp.csr_matrix((4, 5))
    assert model.recommend(np.array([0]), 4, empty).tolist() == [[2, 0, 1, 3]]
    # item 4 has no train interaction: never a candidate, so a 5th slot is padding
    assert model.recommend(np.array([0]), 5, empty).tolist() == [[2, 0, 1, 3, -1]]
    # user 2 saw items 2 and 3
    assert model.recommend(np.array([2]), 3, train_matrix(data)).tolist() == [[0, 1, -1]]


@pytest.mark.parametrize("name", ["popularity", "random"])
def test_train_items_are_never_recommended(name: str) -> None:
    data = random_data()
    exclude = train_matrix(data)
    model = make_model(name, seed=3)
    model.fit(data)
    users = np.arange(data.n_users)
    assert_valid_lists(model.recommend(users, 10, exclude), users, exclude, 10)


@pytest.mark.parametrize("name", ["popularity", "random"])
def test_batches_give_valid_lists(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = popularity_module if name == "popularity" else random_module
    data = random_data()
    exclude = train_matrix(data)
    users = np.arange(data.n_users)[::-1]
    model = make_model(name)
    model.fit(data)
    whole = model.recommend(users, 7, exclude)
    monkeypatch.setattr(module, "BATCH_USERS", 16)
    batched = model.recommend(users, 7, exclude)
    assert_valid_lists(batched, users, exclude, 7)
    if name == "popularity":
        assert batched.tolist() == whole.tolist()


def test_random_is_seeded_and_seeds_differ() -> None:
    data = random_data()
    exclude = train_matrix(data)
    users = np.arange(data.n_users)
    lists = []
    for seed in (5, 5, 6):
        model = RandomModel(seed)
        model.fit(data)
        lists.append(model.recommend(users, 10, exclude).tolist())
    assert lists[0] == lists[1]
    assert lists[0] != lists[2]


def test_random_pads_when_few_unseen_items_remain() -> None:
    # 4 items, user 0 saw 3 of them: one candidate, then padding.
    data = make([0, 0, 0, 1], [0, 1, 2, 3])
    model = RandomModel()
    model.fit(data)
    assert model.recommend(np.array([0]), 3, train_matrix(data)).tolist() == [[3, -1, -1]]


def test_sample_ranks_are_distinct_in_range_and_roughly_uniform() -> None:
    rng = np.random.default_rng(0)
    n_candidates = np.array([2, 3, 10, 50] * 2000)
    ranks = sample_ranks(rng, n_candidates, 3)
    for row, n in zip(ranks[:8], n_candidates[:8], strict=True):
        valid = row[row >= 0]
        assert len(valid) == min(3, n)
        assert len(set(valid.tolist())) == len(valid)
        assert (valid < n).all()
    # users with 10 candidates: 2000 lists x 3 = 6000 draws over 10 ranks, ~600 each
    tens = ranks[n_candidates == 10].ravel()
    counts = np.bincount(tens, minlength=10)
    assert counts.min() > 480
    assert counts.max() < 720
    # and every slot, not only the set, is uniform: rank 9 is as likely first as rank 0
    first = np.bincount(ranks[n_candidates == 10][:, 0], minlength=10)
    assert first.min() > 130
    assert first.max() < 270


def test_popularity_predicts_shrunk_item_means() -> None:
    # ratings: item 0 -> 5, 5; item 1 -> 1; global mean (5 + 5 + 1) / 3 = 11/3
    # item 0 with shrinkage 1: (10 + 11/3) / (2 + 1) = 41/9; item 1: (1 + 11/3) / 2 = 7/3; item 2 unseen: 11/3
    data = make([0, 1, 1], [0, 0, 1], rating=[5.0, 5.0, 1.0], n_items=3)
    model = Popularity(shrinkage=1.0)
    model.fit(data)
    predicted = model.predict(np.array([0, 0, 0]), np.array([0, 1, 2]))
    assert predicted is not None
    assert np.allclose(predicted, [41 / 9, 7 / 3, 11 / 3])
    plain = Popularity(shrinkage=0.0)
    plain.fit(data)
    assert np.allclose(plain.predict(np.array([0, 0]), np.array([0, 1])), [5.0, 1.0])  # type: ignore[arg-type]


def test_models_without_ratings_predict_none() -> None:
    data = make([0, 1], [0, 1])
    model = Popularity()
    model.fit(data)
    assert model.predict(np.array([0]), np.array([0])) is None
    random = RandomModel()
    random.fit(data)
    assert random.predict(np.array([0]), np.array([0])) is None


def test_registry_makes_fresh_models_and_rejects_unknown_names() -> None:
    assert set(MODELS) == {"popularity", "random"}
    model = make_model("random", seed=9)
    assert isinstance(model, Recommender)
    assert model.name == "random"
    assert make_model("popularity") is not make_model("popularity")
    with pytest.raises(ValueError, match=r"known models: (.*, )?popularity, random"):
        make_model("bpr")
