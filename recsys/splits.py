"""Per-user train/test splits for offline evaluation.

Both splits are stratified by user (each user keeps most of its history in train and gives the rest to
test), as Microsoft Recommenders' `python_stratified_split` / `python_chrono_split` do, so every test user
is a warm user the model has seen. They are vectorised: one sort by user, ranks within each user's run,
no Python loop over users, so 20M interactions split in seconds.

Rounding: a user with n interactions gives n_test = floor(n * test_ratio + 0.5) to test (round half up,
in float64). Recommenders instead keeps the ranks with rank / n <= 1 - test_ratio in train, which
amounts to ceil(n * test_ratio); the two differ only when the fraction of n * test_ratio is below 0.5.
A user goes to test only if it keeps >= 1 interaction in train and gives >= 1 to test; otherwise all its
interactions stay in train (Recommenders would put a one-interaction user wholly in test, where no
model could rank for it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions


def stratified_split(
    data: Interactions, test_ratio: float = 0.25, seed: int = 42
) -> tuple[Interactions, Interactions]:
    """Each user's interactions split uniformly at random (seeded, deterministic)."""
    _check_ratio(test_ratio)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(data))
    # A stable grouping of a random permutation: users contiguous, random order within each user.
    order = perm[group_order(data.user[perm], data.n_users)]
    return _split_sorted(data, order, test_ratio)


def temporal_split(data: Interactions, test_ratio: float = 0.25) -> tuple[Interactions, Interactions]:
    """Each user's newest interactions go to test.

    Ties on timestamp are broken by item index, then by position in the input (the larger counts as
    newer), so the split is deterministic whatever the file order of equal-time events.
    """
    _check_ratio(test_ratio)
    # Three stable passes, least significant key first (np.lexsort takes 2-3x longer on 20M rows).
    order = group_order(data.item, data.n_items)
    order = order[np.argsort(data.timestamp[order], kind="stable")]
    order = order[group_order(data.user[order], data.n_users)]
    return _split_sorted(data, order, test_ratio)


def group_order(keys: np.ndarray, n_groups: int) -> np.ndarray:
    """A stable counting sort of small non-negative ints: indices ordered by key, then by position.

    Building a CSR matrix with row = key and column = position does the counting sort in C, and a
    canonical CSR lists each row's columns (positions) ascending, so the result is stable by
    construction. About 5x faster than a stable argsort on 20M keys.
    """
    n = len(keys)
    grouped = sp.coo_matrix(
        (np.ones(n, dtype=np.int8), (keys, np.arange(n, dtype=np.int64))), shape=(n_groups, max(n, 1))
    ).tocsr()
    grouped.sort_indices()
    order: np.ndarray = grouped.indices.astype(np.int64, copy=False)
    return order


def _check_ratio(test_ratio: float) -> None:
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test ratio must be strictly between 0 and 1, got {test_ratio}")


def _split_sorted(
    data: Interactions, order: np.ndarray, test_ratio: float
) -> tuple[Interactions, Interactions]:
    """Split given an order that groups users together; the last n_test of each group go to test."""
    n = len(data)
    counts = np.bincount(data.user, minlength=data.n_users).astype(np.int64)
    n_test = np.floor(counts * test_ratio + 0.5).astype(np.int64)
    n_test[(n_test < 1) | (counts - n_test < 1)] = 0
    starts = np.cumsum(counts) - counts
    user_sorted = data.user[order]
    pos_in_user = np.arange(n, dtype=np.int64) - starts[user_sorted]
    is_test = np.empty(n, dtype=bool)
    is_test[order] = pos_in_user >= (counts - n_test)[user_sorted]
    return data.subset(~is_test), data.subset(is_test)
