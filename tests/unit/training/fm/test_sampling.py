"""Labels and negatives made in memory as preprocessing makes them: never a user's own item, at most the
asked number per positive, popularity^exponent, seeded."""

from __future__ import annotations

import numpy as np

from training.fm.sampling import draws_per_positive, labels_of, sample_negatives


def interactions(seed: int = 0, n_users: int = 40, n_items: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs = {
        (int(u), int(rng.zipf(1.5) % n_items)) for u in range(n_users) for _ in range(rng.integers(2, 25))
    }
    users, items = np.array(sorted(pairs)).T
    return users, items


def test_labels() -> None:
    got = labels_of(np.array([4.0, 3.5, 5.0, np.nan, 0.5]))
    assert got.tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert labels_of(np.array([3.5]), positive_threshold=0.0).tolist() == [1.0]
    assert draws_per_positive(4) == 12
    assert draws_per_positive(0) == 0


def test_negatives_avoid_the_users_items_and_respect_the_count() -> None:
    users, items = interactions()
    positives = np.arange(users.size) % 3 != 0
    neg_users, neg_items = sample_negatives(users, items, positives, 60, per_positive=4, seed=1)
    own = set(zip(users.tolist(), items.tolist(), strict=True))
    assert not own & set(zip(neg_users.tolist(), neg_items.tolist(), strict=True))
    assert neg_items.min() >= 0
    assert neg_items.max() < 60
    per_user = np.bincount(neg_users, minlength=40)
    allowed = 4 * np.bincount(users[positives], minlength=40)
    assert np.all(per_user <= allowed)
    assert per_user.sum() > 0.9 * allowed.sum()  # shortfalls are rare
    again = sample_negatives(users, items, positives, 60, per_positive=4, seed=1)
    assert np.array_equal(again[1], neg_items)
    assert not np.array_equal(
        sample_negatives(users, items, positives, 60, per_positive=4, seed=2)[1], neg_items
    )
    assert sample_negatives(users, items, positives, 60, per_positive=0)[0].size == 0


def test_negatives_follow_popularity_to_the_exponent() -> None:
    # one user with one item; 20 items with counts 1..20 from other users: draws ∝ count^0.75
    counts = np.arange(1, 21)
    items = np.repeat(np.arange(20), counts)
    users = 1 + np.arange(items.size)  # each interaction its own user, so nothing is excluded for user 0
    users = np.concatenate([[0], users])
    items = np.concatenate([[20], items])
    positives = users == 0
    draws = [sample_negatives(users, items, positives, 21, per_positive=4, seed=s)[1] for s in range(3000)]
    seen = np.bincount(np.concatenate(draws), minlength=21)[:20]
    expected = counts**0.75 / np.sum(counts**0.75) * seen.sum()  # item 20 is user 0's own: never drawn
    assert np.bincount(np.concatenate(draws), minlength=21)[20] == 0
    assert np.abs(seen / expected - 1).max() < 0.15
    assert np.corrcoef(seen, counts**0.75)[0, 1] > 0.99
    assert np.corrcoef(seen, counts**0.75)[0, 1] > np.corrcoef(seen, counts)[0, 1]
