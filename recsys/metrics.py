"""Offline accuracy metrics, defined exactly as Microsoft Recommenders defines them, on arrays.

Source read: recommenders-team/recommenders `recommenders/evaluation/python_evaluation.py` at commit
0a1b98f7 (functions `merge_ranking_true_pred`, `precision_at_k`, `recall_at_k`, `ndcg_at_k`, `map`,
`map_at_k`, `catalog_coverage`, `rmse`), with binary relevance: an item is relevant to a user if the user
has any test interaction with it.

Inputs: `top_k`, an int array of shape (n_users, k') of item indices in rank order, -1 for padding
(trailing; a row of only -1 means "no recommendations"); `truth`, a CSR matrix with one row per row of
`top_k` whose non-zero columns are that user's relevant items. Users are averaged over those with both
relevant items and recommendations ("common users" in Recommenders); a user with no hit counts 0.

Per user, with hits h_r in {0, 1} at rank r = 1..k, |R| relevant items and H = sum h_r:
- precision@k = H / k (k, not the number of recommendations: fewer than k caps it below 1, as in Spark);
- recall@k = H / |R|;
- ndcg@k = sum h_r / ln(1 + r) over sum_{r=1..min(|R|, k)} 1 / ln(1 + r) (the log base cancels);
- map = sum over hits of (hits so far / r), divided by |R|;
- map@k = the same sum divided by min(|R|, k).

Which is which: in the current library `map` divides by |R| (the "MAP" column of their benchmark
notebook, anchors.md §2.1) and `map_at_k` divides by min(|R|, k) (Spark's `meanAveragePrecisionAt`).
Older copies of the file (e.g. pmarkoo/recommenders at 758b86c6) have only `map_at_k`, and it divides by
|R|: the old `map_at_k` is the new `map`, so compare "MAP" figures from older notebooks with `map`.
Two differences, both moot on the usual data: Recommenders' `ndcg_at_k` averages over every user in the
truth (a user without recommendations adds a 0) while its other metrics use common users; here all five
use common users, the same whenever every test user gets recommendations. And Recommenders assumes no
duplicate (user, item) rows in the truth (it would count them twice in |R|); here they count once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hit_matrix(top_k: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Bool (n_users, k'): whether each recommended item is relevant to its row's user."""
    top_k = np.asarray(top_k)
    if top_k.ndim != 2 or top_k.shape[0] != truth.shape[0]:
        raise ValueError(f"top_k has shape {top_k.shape}, truth has {truth.shape[0]} rows")
    truth = _canonical(truth)
    n_cols = int(truth.shape[1])
    rows_of_nnz = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    keys = rows_of_nnz * n_cols + truth.indices  # sorted: canonical CSR is row-major with sorted indices
    valid = top_k >= 0
    query = np.arange(top_k.shape[0], dtype=np.int64)[:, None] * n_cols + np.where(valid, top_k, 0)
    if len(keys) == 0:
        return np.zeros(top_k.shape, dtype=bool)
    found = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    hits: np.ndarray = valid & (keys[found] == query)
    return hits


def ranking_metrics(top_k: np.ndarray, truth: sp.csr_matrix, k: int) -> dict[str, float]:
    """precision@k, recall@k, ndcg@k, map@k and map in one pass over the hit matrix.

    Keys: "precision", "recall", "ndcg", "map_at_k", "map". All 0.0 when no user has both relevant
    items and recommendations.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top_k = _first_k(np.asarray(top_k), k)
    hits = hit_matrix(top_k, truth)
    n_relevant = np.diff(_canonical(truth).indptr).astype(np.float64)
    common = (n_relevant > 0) & (top_k >= 0).any(axis=1)
    n_users = int(common.sum())
    if n_users == 0:
        return {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map_at_k": 0.0, "map": 0.0}
    hits = hits[common]
    rel = n_relevant[common]
    n_hits = hits.sum(axis=1)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log1p(ranks)
    dcg = (hits * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(rel, k).astype(np.int64) - 1]
    precision_sum = (np.cumsum(hits, axis=1) / ranks * hits).sum(axis=1)
    return {
        "precision": float((n_hits / k).sum() / n_users),
        "recall": float((n_hits / rel).sum() / n_users),
        "ndcg": float((dcg / ideal).sum() / n_users),
        "map_at_k": float((precision_sum / np.minimum(rel, k)).sum() / n_users),
        "map": float((precision_sum / rel).sum() / n_users),
    }


def precision_at_k(top_k: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Recommenders' `precision_at_k`: mean over common users of hits / k."""
    return ranking_metrics(top_k, truth, k)["precision"]


def recall_at_k(top_k: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Recommenders' `recall_at_k`: mean over common users of hits / relevant."""
    return ranking_metrics(top_k, truth, k)["recall"]


def ndcg_at_k(top_k: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Recommenders' `ndcg_at_k` with score_type="binary": DCG over the ideal DCG of min(|R|, k) hits."""
    return ranking_metrics(top_k, truth, k)["ndcg"]


def map_at_k(top_k: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Recommenders' (>= 1.2) `map_at_k`: average precision normalised by min(|R|, k)."""
    return ranking_metrics(top_k, truth, k)["map_at_k"]


def mean_average_precision(top_k: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Recommenders' `map` over the top-k list: average precision normalised by |R|."""
    return ranking_metrics(top_k, truth, k)["map"]


def catalog_coverage(top_k: np.ndarray, train_items: np.ndarray) -> float:
    """Distinct recommended items over distinct items in train (Recommenders' `catalog_coverage`)."""
    n_train = len(np.unique(train_items))
    if n_train == 0:
        return 0.0
    recommended = np.asarray(top_k)
    return float(len(np.unique(recommended[recommended >= 0])) / n_train)


def rmse(true: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error over the pairs whose true rating is known (not NaN)."""
    true = np.asarray(true, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if true.shape != predicted.shape:
        raise ValueError(f"rmse needs equal shapes, got {true.shape} and {predicted.shape}")
    known = ~np.isnan(true)
    if not known.any():
        raise ValueError("rmse needs at least one known rating")
    return float(np.sqrt(np.mean((true[known] - predicted[known]) ** 2)))


def _first_k(top_k: np.ndarray, k: int) -> np.ndarray:
    """The first k columns, padded with -1 when the list is shorter."""
    if top_k.ndim != 2:
        raise ValueError(f"top_k must be 2-D, got shape {top_k.shape}")
    if top_k.shape[1] >= k:
        return top_k[:, :k]
    pad = np.full((top_k.shape[0], k - top_k.shape[1]), -1, dtype=top_k.dtype)
    return np.hstack([top_k, pad])


def _canonical(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """CSR with sorted, unique column indices per row (binary relevance ignores multiplicity)."""
    matrix = sp.csr_matrix(matrix)
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    return matrix
