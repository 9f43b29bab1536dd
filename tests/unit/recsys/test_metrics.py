"""Ranking metrics against hand-computed values and a plain per-user reference of the same definitions."""

from __future__ import annotations

from math import isclose, log, sqrt

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.metrics import (
    catalog_coverage,
    hit_matrix,
    map_at_k,
    mean_average_precision,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    rmse,
)


def truth_of(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [item for items in rows for item in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


# k = 3. Six users:
#   A: top [1, 2, 3], relevant {2, 5, 6, 7}  one hit at rank 2, more relevant items than k
#   B: top [4, 0, 1], relevant {9}           zero hits
#   C: top [7, -1, -1], relevant {7}         one recommendation (padding), fewer relevant than k
#   D: top [5, 6, 8], relevant {3, 6, 8}     hits at ranks 2 and 3
#   E: top [-1, -1, -1], relevant {1}        no recommendations: not averaged
#   F: top [1, 2, 3], relevant {}            no test items: not averaged
TOP = np.array([[1, 2, 3], [4, 0, 1], [7, -1, -1], [5, 6, 8], [-1, -1, -1], [1, 2, 3]])
TRUTH = truth_of([[2, 5, 6, 7], [9], [7], [3, 6, 8], [1], []])
K = 3
L2, L3, L4 = 1 / log(2), 1 / log(3), 1 / log(4)  # 1/ln(1 + rank): 1.442695, 0.910239, 0.721348


def test_precision_divides_hits_by_k_even_for_short_lists() -> None:
    # (1/3 + 0 + 1/3 + 2/3) / 4 users = (4/3) / 4 = 1/3
    assert isclose(precision_at_k(TOP, TRUTH, K), 1 / 3)


def test_recall_divides_hits_by_relevant() -> None:
    # (1/4 + 0 + 1/1 + 2/3) / 4 = (23/12) / 4 = 23/48 = 0.479167
    assert isclose(recall_at_k(TOP, TRUTH, K), 23 / 48)


def test_ndcg_uses_ideal_of_min_relevant_k() -> None:
    # A: (1/ln3) / (1/ln2 + 1/ln3 + 1/ln4) = 0.910239 / 3.074282 = 0.296082   (ideal over min(4, 3) = 3)
    # B: 0;  C: (1/ln2) / (1/ln2) = 1   (ideal over min(1, 3) = 1)
    # D: (1/ln3 + 1/ln4) / (1/ln2 + 1/ln3 + 1/ln4) = 1.631587 / 3.074282 = 0.530720
    # mean = (0.296082 + 0 + 1 + 0.530720) / 4 = 0.456701
    ideal = L2 + L3 + L4
    expected = (L3 / ideal + 0 + 1 + (L3 + L4) / ideal) / 4
    assert isclose(ndcg_at_k(TOP, TRUTH, K), expected)
    assert isclose(expected, 0.456701, abs_tol=1e-6)


def test_map_normalises_by_relevant_and_map_at_k_by_min_relevant_k() -> None:
    # Sum of precision at each hit: A 1/2; B 0; C 1/1; D 1/2 + 2/3 = 7/6.
    # map   (over |R|):          (1/2 / 4 + 0 + 1/1 + 7/6 / 3) / 4 = (0.125 + 1 + 0.388889) / 4 = 0.378472
    # map@k (over min(|R|, 3)):  (1/2 / 3 + 0 + 1/1 + 7/6 / 3) / 4 = (0.166667 + 1 + 0.388889) / 4 = 0.388889
    assert isclose(mean_average_precision(TOP, TRUTH, K), (0.125 + 1 + 7 / 18) / 4)
    assert isclose(map_at_k(TOP, TRUTH, K), (1 / 6 + 1 + 7 / 18) / 4)


def test_ranking_metrics_returns_all_five_consistently() -> None:
    scores = ranking_metrics(TOP, TRUTH, K)
    assert set(scores) == {"precision", "recall", "ndcg", "map_at_k", "map"}
    assert isclose(scores["precision"], 1 / 3)
    assert isclose(scores["map"], (0.125 + 1 + 7 / 18) / 4)


def test_duplicate_test_interactions_count_once() -> None:
    # C's relevant item 7 appears twice in the truth; D's 6 three times. Binary relevance: same numbers.
    doubled = truth_of([[2, 5, 6, 7], [9], [7, 7], [3, 6, 6, 6, 8], [1], []])
    assert ranking_metrics(TOP, doubled, K) == ranking_metrics(TOP, TRUTH, K)


def test_a_list_shorter_than_k_is_padded() -> None:
    # top-2 lists scored at k=3: as if a -1 followed. A: [1, 2] -> hit at 2 -> precision 1/3.
    short = np.array([[1, 2]])
    assert isclose(precision_at_k(short, truth_of([[2]]), 3), 1 / 3)
    assert isclose(ndcg_at_k(short, truth_of([[2]]), 3), L3 / L2)


def test_no_common_users_scores_zero() -> None:
    top = np.array([[-1, -1], [1, 2]])
    scores = ranking_metrics(top, truth_of([[1], []]), 2)
    assert scores == {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map_at_k": 0.0, "map": 0.0}


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ranking_metrics(TOP, TRUTH, 0)
    with pytest.raises(ValueError, match="rows"):
        hit_matrix(TOP[:2], TRUTH)


def test_hit_matrix_ignores_padding_and_empty_truth() -> None:
    hits = hit_matrix(np.array([[0, -1], [3, 0]]), truth_of([[0], [0]], 4))
    assert hits.tolist() == [[True, False], [False, True]]
    empty = sp.csr_matrix((2, 4))
    assert not hit_matrix(np.array([[0, 1], [2, 3]]), empty).any()


def test_matches_a_plain_per_user_reference_on_random_lists() -> None:
    rng = np.random.default_rng(11)
    n_users, n_items, k = 60, 40, 5
    top = np.array([rng.choice(n_items, k, replace=False) for _ in range(n_users)])
    top[rng.random((n_users, k)) < 0.1] = -1
    top = -np.sort(-top, axis=1)  # descending order puts the -1 padding last, as models return it
    relevant = [set(rng.choice(n_items, rng.integers(0, 12), replace=False).tolist()) for _ in range(n_users)]
    expected = _reference(top, relevant, k)
    got = ranking_metrics(top, truth_of([sorted(r) for r in relevant], n_items), k)
    for key, value in expected.items():
        assert isclose(got[key], value, rel_tol=1e-12), key


def _reference(top: np.ndarray, relevant: list[set[int]], k: int) -> dict[str, float]:
    """The definitions, one user at a time."""
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map_at_k", "map"), 0.0)
    n = 0
    for row, rel in zip(top.tolist(), relevant, strict=True):
        recs = [item for item in row[:k] if item >= 0]
        if not rel or not recs:
            continue
        n += 1
        hits = [r + 1 for r, item in enumerate(row[:k]) if item >= 0 and item in rel]
        ap = sum((j + 1) / rank for j, rank in enumerate(hits))
        sums["precision"] += len(hits) / k
        sums["recall"] += len(hits) / len(rel)
        ideal = sum(1 / log(1 + r) for r in range(1, min(len(rel), k) + 1))
        sums["ndcg"] += sum(1 / log(1 + rank) for rank in hits) / ideal
        sums["map_at_k"] += ap / min(len(rel), k)
        sums["map"] += ap / len(rel)
    return {key: value / n for key, value in sums.items()}


def test_catalog_coverage_counts_distinct_recommended_over_distinct_train() -> None:
    # recommended {1, 2, 3} (padding ignored); train items {0..5} -> 3 / 6
    top = np.array([[1, 2, -1], [2, 3, -1]])
    assert catalog_coverage(top, np.array([0, 1, 2, 3, 4, 5, 5, 0])) == 0.5
    assert catalog_coverage(top, np.array([], dtype=np.int64)) == 0.0


def test_rmse_skips_unknown_ratings() -> None:
    # pairs (1, 2) and (3, 3); the NaN rating is skipped: sqrt((1 + 0) / 2)
    assert isclose(rmse(np.array([1.0, np.nan, 3.0]), np.array([2.0, 5.0, 3.0])), sqrt(0.5))
    with pytest.raises(ValueError, match="known rating"):
        rmse(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="shapes"):
        rmse(np.array([1.0]), np.array([1.0, 2.0]))
