"""Offline evaluation of one model on one per-user split: the numbers the pipeline's gate compares.

Protocol (as Microsoft Recommenders' benchmark, anchors.md §2.1): split each user's interactions into
train and test, fit on train, recommend k items to every test user excluding its train items, score the
lists against the user's test items (binary relevance), and RMSE on test ratings when the model
predicts ratings.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
from recsys.metrics import catalog_coverage, hit_matrix, ranking_metrics, rmse
from recsys.models import make_model
from recsys.models.base import Recommender, train_matrix
from recsys.splits import stratified_split, temporal_split

SPLITS = ("stratified", "temporal")


def evaluate(
    data: Interactions,
    model_name: str,
    split: str = "stratified",
    test_ratio: float = 0.25,
    k: int = 10,
    seed: int = 42,
) -> dict[str, Any]:
    """Split, fit, recommend, score; one flat dict (JSON-ready) of settings, sizes, metrics, timings."""
    check_settings(split, test_ratio, k)
    model = make_model(model_name, seed)
    if split == "stratified":
        train, test = stratified_split(data, test_ratio, seed)
    else:
        train, test = temporal_split(data, test_ratio)
    test_users = np.unique(test.user).astype(np.int64)
    if len(test_users) == 0:
        raise ValueError("no user has enough interactions to hold out a test set (each needs at least 2)")

    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started

    exclude = train_matrix(train)
    started = time.perf_counter()
    top_k = np.asarray(model.recommend(test_users, k, exclude))
    recommend_seconds = time.perf_counter() - started
    _check_recommendations(top_k, test_users, k, exclude, model_name)

    truth = _truth_matrix(test, test_users)
    scores = ranking_metrics(top_k, truth, k)
    return {
        "model": model_name,
        "split": split,
        "k": k,
        "test_ratio": test_ratio,
        "seed": seed,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_train": len(train),
        "n_test": len(test),
        "n_test_users": len(test_users),
        f"precision@{k}": scores["precision"],
        f"recall@{k}": scores["recall"],
        f"ndcg@{k}": scores["ndcg"],
        f"map@{k}": scores["map_at_k"],
        "map": scores["map"],
        "coverage": catalog_coverage(top_k, train.item),
        "rmse": _rating_error(model, test),
        "fit_seconds": fit_seconds,
        "recommend_seconds": recommend_seconds,
    }


def check_settings(split: str, test_ratio: float, k: int) -> None:
    """ValueError with a plain message for settings no evaluation can run with."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test ratio must be strictly between 0 and 1, got {test_ratio}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _truth_matrix(test: Interactions, test_users: np.ndarray) -> sp.csr_matrix:
    """Test items as CSR rows aligned with `test_users` (sorted), duplicates merged."""
    rows = np.searchsorted(test_users, test.user)
    truth = sp.csr_matrix(
        (np.ones(len(test), dtype=np.int8), (rows, test.item)), shape=(len(test_users), test.n_items)
    )
    truth.sum_duplicates()
    return truth


def _check_recommendations(
    top_k: np.ndarray, users: np.ndarray, k: int, exclude: sp.csr_matrix, model_name: str
) -> None:
    """Fail loudly if a model breaks the contract: wrong shape or a train item recommended."""
    if top_k.shape != (len(users), k):
        raise RuntimeError(f"model {model_name!r} returned shape {top_k.shape}, expected {(len(users), k)}")
    if hit_matrix(top_k, exclude[users]).any():
        raise RuntimeError(f"model {model_name!r} recommended items from the user's train interactions")


def _rating_error(model: Recommender, test: Interactions) -> float | None:
    """RMSE on the test interactions with a rating, or None when there are none or no predictions."""
    rated = ~np.isnan(test.rating)
    if not rated.any():
        return None
    predicted = model.predict(test.user[rated], test.item[rated])
    if predicted is None:
        return None
    return rmse(test.rating[rated], np.asarray(predicted))
