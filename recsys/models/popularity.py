"""Popularity baseline: the most-interacted items the user has not seen, the same order for everyone.

It is the floor every learned model must beat (the pipeline's gate, DESIGN.md §2), and what Amazon
Personalize recommends as its evaluation baseline (Popularity-Count: items with the most interactions
from unique users). Popularity counts distinct users per item; ties go to the lower item index. Only
items with at least one train interaction are candidates.

Ratings: the item's mean train rating shrunk toward the global mean,
(sum + shrinkage * global_mean) / (count + shrinkage), so an item rated once does not predict its one
rating; items without ratings get the global mean. With shrinkage 0 it is the plain item mean.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
from recsys.models.base import blocked_positions, n_allowed, nth_allowed, train_matrix

BATCH_USERS = 65_536


class Popularity:
    name = "popularity"

    def __init__(self, seed: int = 42, shrinkage: float = 5.0) -> None:
        self.seed = seed  # unused: the model is deterministic; kept for a uniform constructor
        self.shrinkage = shrinkage
        self._position = np.zeros(0, dtype=np.int64)
        self._order = np.zeros(0, dtype=np.int64)
        self._item_rating: np.ndarray | None = None
        self._global_mean = float("nan")

    def fit(self, train: Interactions) -> None:
        """Rank items by distinct train users; learn shrunk item means when ratings exist."""
        users_per_item = np.diff(train_matrix(train).tocsc().indptr)
        ranked = np.argsort(-users_per_item, kind="stable")
        self._order = ranked[users_per_item[ranked] > 0].astype(np.int64)
        self._position = np.full(train.n_items, -1, dtype=np.int64)
        self._position[self._order] = np.arange(len(self._order))
        self._fit_ratings(train)

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        """The first k popular items not in each user's `exclude` row."""
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), k), -1, dtype=np.int64)
        if len(self._order) == 0:
            return out
        ranks = np.arange(k, dtype=np.int64)[None, :]
        for start in range(0, len(users), BATCH_USERS):
            batch = users[start : start + BATCH_USERS]
            blocked = blocked_positions(exclude, batch, self._position, len(self._order))
            batch_ranks = np.where(ranks < n_allowed(blocked)[:, None], ranks, -1)
            positions = nth_allowed(blocked, batch_ranks)
            out[start : start + len(batch)] = np.where(
                positions >= 0, self._order[np.maximum(positions, 0)], -1
            )
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """Shrunk item means (the user is ignored), or None when train had no ratings."""
        if self._item_rating is None:
            return None
        items = np.asarray(items, dtype=np.int64)
        known = (items >= 0) & (items < len(self._item_rating))
        result: np.ndarray = np.full(len(items), self._global_mean, dtype=np.float64)
        result[known] = self._item_rating[items[known]]
        return result

    def _fit_ratings(self, train: Interactions) -> None:
        rated = ~np.isnan(train.rating)
        if not rated.any():
            self._item_rating = None
            return
        items = train.item[rated]
        values = train.rating[rated].astype(np.float64)
        self._global_mean = float(values.mean())
        sums = np.bincount(items, weights=values, minlength=train.n_items)
        counts = np.bincount(items, minlength=train.n_items).astype(np.float64)
        self._item_rating = (sums + self.shrinkage * self._global_mean) / np.maximum(
            counts + self.shrinkage, 1e-12
        )
        self._item_rating[counts == 0] = self._global_mean
