"""Random baseline: k items drawn uniformly, without replacement, from those the user has not seen.

The chance level of every ranking metric; a model near it has learned nothing. Candidates are the items
with at least one train interaction (no model can know the others). Seeded: the same seed, train data
and users give the same lists. Sampling is exact and vectorised: Floyd's algorithm picks k distinct
ranks among each user's allowed items (a loop over k, not over users), the ranks are shuffled, and
`nth_allowed` turns them into items, so the cost is O(users x k + excluded items), not users x items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
from recsys.models.base import blocked_positions, n_allowed, nth_allowed

BATCH_USERS = 65_536


class RandomModel:
    name = "random"

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self._items = np.zeros(0, dtype=np.int64)
        self._position = np.zeros(0, dtype=np.int64)

    def fit(self, train: Interactions) -> None:
        """Remember which items are candidates."""
        self._items = np.unique(train.item).astype(np.int64)
        self._position = np.full(train.n_items, -1, dtype=np.int64)
        self._position[self._items] = np.arange(len(self._items))

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        """Uniform random unseen items per user, in random order; a fresh generator per call."""
        rng = np.random.default_rng(self.seed)
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), k), -1, dtype=np.int64)
        if len(self._items) == 0:
            return out
        for start in range(0, len(users), BATCH_USERS):
            batch = users[start : start + BATCH_USERS]
            blocked = blocked_positions(exclude, batch, self._position, len(self._items))
            ranks = sample_ranks(rng, n_allowed(blocked), k)
            positions = nth_allowed(blocked, ranks)
            out[start : start + len(batch)] = np.where(
                positions >= 0, self._items[np.maximum(positions, 0)], -1
            )
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """Random does not predict ratings."""
        return None


def sample_ranks(rng: np.random.Generator, n_candidates: np.ndarray, k: int) -> np.ndarray:
    """Per row, min(k, n) distinct ranks drawn uniformly from range(n), in random order, -1 padded."""
    n_candidates = np.asarray(n_candidates, dtype=np.int64)
    ranks = np.full((len(n_candidates), k), -1, dtype=np.int64)
    few = n_candidates <= k
    ranks[few] = np.where(np.arange(k) < n_candidates[few, None], np.arange(k), -1)
    many = ~few
    total = n_candidates[many]
    chosen = np.empty((len(total), k), dtype=np.int64)
    for step in range(k):  # Floyd: for j in n-k..n-1, draw t in [0, j]; keep t, or j if t is taken
        j = total - k + step
        t = rng.integers(0, j + 1)
        taken = (chosen[:, :step] == t[:, None]).any(axis=1)
        chosen[:, step] = np.where(taken, j, t)
    ranks[many] = chosen
    keys = rng.random(ranks.shape)
    keys[ranks < 0] = np.inf
    shuffled: np.ndarray = np.take_along_axis(ranks, np.argsort(keys, axis=1), axis=1)
    return shuffled
