"""Accuracy of the autoencoder against the baselines and reference models, on the bundled sample.

ml-latest-small, one split per protocol (stratified and temporal 75/25, seed 42), k = 10, every model
fitted on the same train split and scored by the same `recsys.evaluation` code: popularity, the
autoencoder as DSSTNE's sample config has it (`autoencoder-dsstne`), the tuned autoencoder
(`autoencoder`), the factorization machine (`fm`, the local trainer's ranking preset), implicit's ALS
and BPR (each the best of a small grid, so they are not handicapped by defaults), and EASE (closed-form
linear item-item autoencoder, λ = 500) for scale. Prints one JSON object.

    python benchmarks/autoencoder_quality.py [--splits stratified,temporal]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; its own threads do the work

import numpy as np
import scipy.sparse as sp
from _common import REPO, machine

from recsys.evaluation import evaluate
from recsys.interactions import Interactions
from recsys.loaders import load_interactions
from recsys.models import MODELS
from recsys.models.base import train_matrix


class ImplicitModel:
    """implicit's ALS or BPR behind the harness's interface (binary train interactions)."""

    def __init__(self, kind: str, seed: int, **params: Any) -> None:
        self.name = f"implicit-{kind}"
        self.kind, self.seed, self.params = kind, seed, params

    def fit(self, train: Interactions) -> None:
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking

        factory = AlternatingLeastSquares if self.kind == "als" else BayesianPersonalizedRanking
        self.model = factory(random_state=self.seed, **self.params)
        self.user_items = train_matrix(train).astype(np.float32)
        self.model.fit(self.user_items, show_progress=False)

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        ids, _ = self.model.recommend(
            users, sp.csr_matrix(exclude[users], dtype=np.float32), N=k, filter_already_liked_items=True
        )
        return np.asarray(ids, dtype=np.int64)

    def predict(self, users: np.ndarray, items: np.ndarray) -> None:
        return None


class Ease:
    """Steck's EASE: B = I − P / diag(P), P = (XᵀX + λI)⁻¹; scores X·B."""

    name = "ease"

    def __init__(self, seed: int, l2: float = 500.0) -> None:
        self.l2 = l2

    def fit(self, train: Interactions) -> None:
        x = train_matrix(train).astype(np.float32)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        self.b = -p / np.diag(p)
        self.b[np.diag_indices_from(self.b)] = 0
        self.x = x

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        scores = np.asarray(self.x[users] @ self.b)
        seen = exclude[users]
        scores[np.repeat(np.arange(len(users)), np.diff(seen.indptr)), seen.indices] = -np.inf
        return np.argsort(-scores, axis=1)[:, :k].astype(np.int64)

    def predict(self, users: np.ndarray, items: np.ndarray) -> None:
        return None


GRIDS: dict[str, list[dict[str, Any]]] = {
    "als": [
        {"factors": f, "regularization": r, "iterations": 15, "alpha": a}
        for f in (64, 128)
        for r in (0.05, 0.5)
        for a in (1.0, 10.0)
    ],
    "bpr": [
        {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": it}
        for f in (64, 128)
        for lr in (0.01, 0.05)
        for it in (100, 300)
    ],
}


def run(data: Interactions, name: str, split: str, factory: Any = None, **params: Any) -> dict[str, Any]:
    """`evaluate` with a registered model, or with a model built here (temporarily registered)."""
    if factory is not None:
        MODELS[name] = lambda seed: factory(seed=seed, **params)
    try:
        result = evaluate(data, name, split=split, test_ratio=0.25, k=10, seed=42)
    finally:
        if factory is not None:
            del MODELS[name]
    return {**result, **({"params": params} if params else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="stratified,temporal")
    args = parser.parse_args()
    data = load_interactions(REPO / "data" / "sample" / "ml-latest-small")
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    for split in args.splits.split(","):
        models = ("popularity", "autoencoder-dsstne", "autoencoder", "fm")
        rows = [run(data, model, split) for model in models]
        for kind, grid in GRIDS.items():
            tried = [run(data, f"implicit-{kind}", split, ImplicitModel, kind=kind, **p) for p in grid]
            best = max(tried, key=lambda r: r["precision@10"])
            best["grid_size"] = len(grid)
            rows.append(best)
        rows.append(run(data, "ease", split, Ease, l2=500.0))
        results[split] = rows
    print(
        json.dumps(
            {
                "benchmark": "autoencoder_quality",
                "data": "data/sample/ml-latest-small",
                "protocol": "per-user 75/25 split, seed 42, k = 10; train items never recommended",
                "results": results,
                "seconds": round(time.perf_counter() - started, 1),
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
