"""Per-user splits: sizes, the >=1-train/>=1-test rule, no lost or duplicated rows, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.interactions import Interactions
from recsys.splits import group_order, stratified_split, temporal_split


def make(user: list[int], item: list[int], timestamp: list[int] | None = None) -> Interactions:
    n_users = max(user) + 1
    n_items = max(item) + 1
    return Interactions(
        user=np.asarray(user, dtype=np.int32),
        item=np.asarray(item, dtype=np.int32),
        timestamp=np.asarray(timestamp if timestamp is not None else range(len(user)), dtype=np.int64),
        rating=np.full(len(user), np.nan, dtype=np.float32),
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
    )


def users_with_counts(counts: list[int]) -> Interactions:
    """User u has counts[u] interactions with items 0..n-1; timestamps are unique row ids."""
    user = [u for u, n in enumerate(counts) for _ in range(n)]
    item = [i for n in counts for i in range(n)]
    return make(user, item)


# n -> n_test with round half up of n * 0.25; users that would keep 0 in train or give 0 to test stay whole.
EXPECTED_TEST = {1: 0, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 10: 3}


@pytest.mark.parametrize("split", ["stratified", "temporal"])
def test_per_user_test_sizes_follow_round_half_up(split: str) -> None:
    counts = list(EXPECTED_TEST)
    data = users_with_counts(counts)
    train, test = stratified_split(data) if split == "stratified" else temporal_split(data)
    got = np.bincount(test.user, minlength=len(counts))
    assert got.tolist() == [EXPECTED_TEST[n] for n in counts]
    assert (np.bincount(train.user, minlength=len(counts)) == np.array(counts) - got).all()


@pytest.mark.parametrize("split", ["stratified", "temporal"])
def test_users_that_would_keep_nothing_in_train_stay_whole(split: str) -> None:
    # ratio 0.75: n=1 -> round(0.75) = 1 and n=2 -> round(1.5) = 2 would leave 0 in train: all stay in train;
    # n=3 -> round(2.25) = 2 (1 left), n=4 -> 3 (1 left)
    data = users_with_counts([1, 2, 3, 4])
    train, test = stratified_split(data, 0.75) if split == "stratified" else temporal_split(data, 0.75)
    assert np.bincount(test.user, minlength=4).tolist() == [0, 0, 2, 3]
    assert np.bincount(train.user, minlength=4).tolist() == [1, 2, 1, 1]


@pytest.mark.parametrize("split", ["stratified", "temporal"])
def test_every_row_lands_in_exactly_one_side_and_test_users_keep_train(split: str) -> None:
    rng = np.random.default_rng(0)
    user = rng.integers(0, 50, 2000).tolist()
    data = make(user, rng.integers(0, 300, 2000).tolist())
    train, test = stratified_split(data, 0.3, seed=1) if split == "stratified" else temporal_split(data, 0.3)
    ids = np.concatenate([train.timestamp, test.timestamp])  # timestamps are row ids here
    assert sorted(ids.tolist()) == list(range(2000))
    assert set(test.user.tolist()) <= set(train.user.tolist())
    assert train.user_ids is data.user_ids
    assert test.item_ids is data.item_ids


def test_stratified_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    rng = np.random.default_rng(3)
    data = make(rng.integers(0, 20, 500).tolist(), rng.integers(0, 100, 500).tolist())
    first = stratified_split(data, seed=7)[1].timestamp
    again = stratified_split(data, seed=7)[1].timestamp
    other = stratified_split(data, seed=8)[1].timestamp
    assert first.tolist() == again.tolist()
    assert set(first.tolist()) != set(other.tolist())


def test_stratified_picks_each_interaction_sometimes() -> None:
    """Random, not positional: over seeds, each of a user's 8 rows goes to test at some point."""
    data = users_with_counts([8])
    seen: set[int] = set()
    for seed in range(40):
        seen |= set(stratified_split(data, seed=seed)[1].timestamp.tolist())
    assert seen == set(range(8))


def test_temporal_puts_each_users_newest_in_test() -> None:
    #         user 0: times 5, 1, 9, 3 -> newest (9) to test; user 1: times 2, 8 -> 8 to test
    data = make([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 0, 1], [5, 1, 9, 3, 2, 8])
    train, test = temporal_split(data)
    assert sorted(zip(test.user.tolist(), test.timestamp.tolist(), strict=True)) == [(0, 9), (1, 8)]
    assert len(train) == 4


def test_temporal_ties_break_by_item_then_position_whatever_the_row_order() -> None:
    # One user, 4 events at the same second: with 0.5, the 2 "newest" are the larger item indices.
    data = make([0, 0, 0, 0], [3, 1, 2, 0], [7, 7, 7, 7])
    test_items = sorted(temporal_split(data, 0.5)[1].item.tolist())
    assert test_items == [2, 3]
    reordered = make([0, 0, 0, 0], [0, 2, 1, 3], [7, 7, 7, 7])
    assert sorted(temporal_split(reordered, 0.5)[1].item.tolist()) == [2, 3]


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_open_interval_is_rejected(ratio: float) -> None:
    data = users_with_counts([4])
    with pytest.raises(ValueError, match="test ratio"):
        stratified_split(data, ratio)
    with pytest.raises(ValueError, match="test ratio"):
        temporal_split(data, ratio)


def test_group_order_is_a_stable_sort() -> None:
    keys = np.random.default_rng(5).integers(0, 30, 5000)
    assert group_order(keys, 30).tolist() == np.argsort(keys, kind="stable").tolist()
    assert group_order(np.zeros(0, dtype=np.int64), 3).tolist() == []


def test_empty_data_splits_to_empty() -> None:
    data = make([0], [0]).subset(np.zeros(1, dtype=bool))
    train, test = stratified_split(data)
    assert len(train) == 0
    assert len(test) == 0
