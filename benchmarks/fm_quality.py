"""Accuracy of the local FM against the baselines and reference models, on the bundled sample.

ml-latest-small, one split per protocol (stratified and temporal 75/25, seed 42), k = 10, every model
fitted on the same train split and scored by the same `recsys.evaluation` code: popularity, the FM
evaluation plugin (`fm`, its tuned preset), implicit's ALS and BPR (each the best of the grid of
benchmarks/autoencoder_quality.py, so they are not handicapped by defaults) and EASE (λ = 500) for scale.

Rating prediction: RMSE of `fm-regressor` over 5 folds of the ratings (random, seed 42) next to
scikit-surprise's SVD (biased matrix factorization, its default settings) on the very same folds.

Prints one JSON object.

    python benchmarks/fm_quality.py [--splits stratified,temporal] [--no-ease] [--folds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; its own threads do the work

import numpy as np
from _common import REPO, machine
from autoencoder_quality import GRIDS, Ease, ImplicitModel, run

from recsys.interactions import Interactions
from recsys.loaders import load_interactions
from recsys.metrics import rmse
from training.fm.recommender import PRESETS, FmRecommender


def ranking(data: Interactions, split: str, ease: bool) -> list[dict[str, Any]]:
    rows = [run(data, "popularity", split)]
    started = time.perf_counter()
    rows.append({**run(data, "fm", split), "preset": _preset("fm")})
    print(
        f"fm ({split}): {rows[-1]['precision@10']:.4f} in {time.perf_counter() - started:.0f} s", flush=True
    )
    for kind, grid in GRIDS.items():
        tried = [run(data, f"implicit-{kind}", split, ImplicitModel, kind=kind, **p) for p in grid]
        best = max(tried, key=lambda r: r["precision@10"])
        best["grid_size"] = len(grid)
        rows.append(best)
    if ease:
        rows.append(run(data, "ease", split, Ease, l2=500.0))
    popularity = rows[0]["precision@10"]
    for row in rows:
        row["p10_over_popularity"] = row["precision@10"] / popularity if popularity else None
    return rows


def _preset(name: str) -> dict[str, Any]:
    preset = PRESETS[name]
    return {
        "predictor_type": preset.predictor_type,
        **preset.hyperparameters,
        "negatives_per_positive": preset.negatives_per_positive,
        "negative_exponent": preset.negative_exponent,
        "positive_threshold": preset.positive_threshold,
        "categories": preset.categories,
    }


def folds(data: Interactions, n_folds: int, seed: int) -> list[np.ndarray]:
    """Random folds of the rated interactions (indices), as Surprise's KFold(shuffle=True) makes them."""
    rated = np.flatnonzero(~np.isnan(data.rating))
    order = np.random.default_rng(seed).permutation(rated)
    return np.array_split(order, n_folds)


def rating_errors(data: Interactions, n_folds: int, seed: int) -> dict[str, Any]:
    from surprise import SVD, Dataset, Reader

    parts = folds(data, n_folds, seed)
    fm_errors, svd_errors, fm_seconds, svd_seconds = [], [], [], []
    for f, test_index in enumerate(parts):
        train_index = np.concatenate([p for g, p in enumerate(parts) if g != f])
        train, test = data.subset(train_index), data.subset(test_index)

        started = time.perf_counter()
        model = FmRecommender("fm-regressor", seed, verbose=False)
        model.fit(train)
        predicted = model.predict(test.user, test.item)
        assert predicted is not None
        fm_errors.append(rmse(test.rating, predicted))
        fm_seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        reader = Reader(rating_scale=(float(np.nanmin(data.rating)), float(np.nanmax(data.rating))))
        frame = {"user": train.user.tolist(), "item": train.item.tolist(), "rating": train.rating.tolist()}
        import pandas as pd

        trainset = Dataset.load_from_df(pd.DataFrame(frame), reader).build_full_trainset()
        svd = SVD(random_state=seed)
        svd.fit(trainset)
        svd_predicted = np.array(
            [svd.predict(int(u), int(i)).est for u, i in zip(test.user, test.item, strict=True)]
        )
        svd_errors.append(rmse(test.rating, svd_predicted))
        svd_seconds.append(time.perf_counter() - started)
        print(
            f"fold {f + 1}/{n_folds}: fm-regressor {fm_errors[-1]:.4f}, SVD {svd_errors[-1]:.4f}", flush=True
        )
    return {
        "folds": n_folds,
        "seed": seed,
        "fm_regressor": {
            "rmse_mean": float(np.mean(fm_errors)),
            "rmse_std": float(np.std(fm_errors)),
            "rmse_per_fold": fm_errors,
            "fit_predict_seconds": float(np.sum(fm_seconds)),
            "preset": _preset("fm-regressor"),
        },
        "surprise_svd": {
            "rmse_mean": float(np.mean(svd_errors)),
            "rmse_std": float(np.std(svd_errors)),
            "rmse_per_fold": svd_errors,
            "fit_predict_seconds": float(np.sum(svd_seconds)),
            "settings": "scikit-surprise 1.1.5 SVD defaults: 100 factors, 20 epochs, lr 0.005, reg 0.02",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="stratified,temporal")
    parser.add_argument(
        "--no-ease", dest="ease", action="store_false", help="skip EASE (about a minute per split)"
    )
    parser.add_argument("--folds", type=int, default=5, help="folds for the RMSE comparison (0: skip it)")
    args = parser.parse_args()
    data = load_interactions(REPO / "data" / "sample" / "ml-latest-small")
    started = time.perf_counter()
    results = {split: ranking(data, split, args.ease) for split in args.splits.split(",") if split}
    ratings = rating_errors(data, args.folds, 42) if args.folds else None
    print(
        json.dumps(
            {
                "benchmark": "fm_quality",
                "data": "data/sample/ml-latest-small",
                "protocol": "per-user 75/25 split, seed 42, k = 10; train items never recommended",
                "results": results,
                "rating_prediction": ratings,
                "seconds": round(time.perf_counter() - started, 1),
                "machine": machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
