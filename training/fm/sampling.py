"""Labels and negatives in memory, the way preprocessing makes them for the FM channels (glue/sampling.py).

- label: 1 when the interaction's rating is ≥ `positive_threshold` (4.0), or when it has no rating; else 0;
- negatives: for every positive, `2 · per_positive + 4` candidates drawn with probability ∝ the item's
  train count ** `exponent` (0.75), candidates the user interacted with dropped, the first `per_positive`
  survivors (by draw order) kept — so a heavy user's positive may keep fewer;
- seeded: the same seed, data and settings give the same negatives.

The draws come from numpy's generator rather than Spark's xxhash, so they are the same distribution and
procedure as preprocessing, not the same items. Used by the evaluation plugin (recommender.py) and the
speed benchmark, which build FM rows straight from interactions without going through Spark.
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 20  # positives per block of draws: bounds the (positives × draws) temporaries


def draws_per_positive(per_positive: int) -> int:
    """As glue.sampling: enough candidates that a heavy user's rejections rarely leave a gap."""
    return 2 * per_positive + 4 if per_positive else 0


def labels_of(rating: np.ndarray, positive_threshold: float = 4.0) -> np.ndarray:
    """1.0 for a rating ≥ the threshold or no rating (NaN), else 0.0."""
    rating = np.asarray(rating, np.float64)
    return (np.isnan(rating) | (rating >= positive_threshold)).astype(np.float32)


def sample_negatives(
    users: np.ndarray,
    items: np.ndarray,
    positives: np.ndarray,
    n_items: int,
    *,
    per_positive: int = 4,
    exponent: float = 0.75,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of the negatives for the interactions (users, items) whose `positives` mask is set.

    Weights are the items' counts among all given interactions, ** exponent; every given interaction's
    item is excluded for its user. Returns int64 arrays, grouped by positive in input order.
    """
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    n_draws = draws_per_positive(per_positive)
    pos_users = users[np.asarray(positives, bool)]
    if n_draws == 0 or pos_users.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    weights = np.bincount(items, minlength=n_items).astype(np.float64) ** exponent
    cumulative = np.cumsum(weights)
    seen = np.unique(users * n_items + items)  # sorted keys of (user, item) pairs to avoid
    rng = np.random.default_rng(seed)
    out_users, out_items = [], []
    for start in range(0, pos_users.size, CHUNK):
        chunk = pos_users[start : start + CHUNK]
        draws = rng.random((chunk.size, n_draws)) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), n_items - 1)
        keys = chunk[:, None] * n_items + candidates
        where = np.minimum(np.searchsorted(seen, keys), seen.size - 1)
        fresh = seen[where] != keys
        keep = fresh & (np.cumsum(fresh, axis=1) <= per_positive)
        out_users.append(np.broadcast_to(chunk[:, None], keep.shape)[keep])
        out_items.append(candidates[keep])
    return np.concatenate(out_users), np.concatenate(out_items)
