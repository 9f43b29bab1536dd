"""What a model must offer to be evaluated, and the shared "k best items not yet seen" machinery.

Items are indices into `Interactions.item_ids`. `exclude` is a CSR matrix of shape (n_users, n_items)
indexed by *global* user index (the train interactions, usually), so one matrix serves every batch.
A model returns, per requested user, k distinct item indices in rank order, never an excluded one, and
-1 padding at the end when fewer than k candidates remain.

Baselines rank every user over one item order (popularity) or over random ranks (random); in both cases
a user's list is "the items at allowed ranks r_1, r_2, ... of a fixed item order, skipping the user's
excluded items". `nth_allowed` answers that for all users at once with one sorted search, so nothing of
size n_users x n_items is ever materialised.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions


@runtime_checkable
class Recommender(Protocol):
    """A model the evaluation harness can fit, ask for top-k lists, and (optionally) rating predictions."""

    name: str

    def fit(self, train: Interactions) -> None:
        """Learn from the train split."""

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        """Int64 (len(users), k) item indices, best first; excluded items never appear; -1 pads."""
        ...

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """Predicted ratings for (user, item) pairs, or None when the model does not predict ratings."""
        ...


def blocked_positions(
    exclude: sp.csr_matrix, users: np.ndarray, position: np.ndarray, n_positions: int
) -> sp.csr_matrix:
    """The excluded items of `users`, mapped into a model's candidate order.

    `position[item]` is the item's place in the model's order (0..n_positions-1), or -1 when the item is
    not a candidate at all; such items are dropped. Rows come back canonical (sorted, unique).
    """
    rows = sp.csr_matrix(exclude)[np.asarray(users, dtype=np.int64)]
    pos = position[rows.indices]
    keep = pos >= 0
    row_of = np.repeat(np.arange(rows.shape[0], dtype=np.int64), np.diff(rows.indptr))[keep]
    blocked = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.int8), (row_of, pos[keep])),
        shape=(rows.shape[0], n_positions),
    )
    blocked.sum_duplicates()
    return blocked


def nth_allowed(blocked: sp.csr_matrix, ranks: np.ndarray) -> np.ndarray:
    """For each row i and rank r = ranks[i, j] >= 0, the r-th (0-based) position not blocked in row i.

    With a row's blocked positions e_0 < e_1 < ..., e_m - m allowed positions lie before e_m, so the r-th
    allowed position is r + #{m : e_m - m <= r}. Negative ranks stay -1. `blocked` must be canonical.
    """
    n_rows, n_cols = blocked.shape
    indptr = blocked.indptr.astype(np.int64)
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    allowed_before = blocked.indices.astype(np.int64) - (np.arange(len(row_of)) - indptr[row_of])
    width = np.int64(n_cols) + 1
    keys = row_of * width + allowed_before  # sorted: rows ascending, non-decreasing within a row
    valid = ranks >= 0
    query = np.arange(n_rows, dtype=np.int64)[:, None] * width + np.where(valid, ranks, 0)
    n_before = np.searchsorted(keys, query, side="right") - indptr[:-1, None]
    result: np.ndarray = np.where(valid, ranks + n_before, -1)
    return result


def n_allowed(blocked: sp.csr_matrix) -> np.ndarray:
    """Candidates left per row: all positions minus the blocked ones."""
    counts: np.ndarray = blocked.shape[1] - np.diff(blocked.indptr).astype(np.int64)
    return counts


def train_matrix(train: Interactions) -> sp.csr_matrix:
    """Binary user x item CSR of the train interactions: the usual `exclude` argument."""
    matrix = sp.csr_matrix(
        (np.ones(len(train), dtype=np.int8), (train.user, train.item)),
        shape=(train.n_users, train.n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix
