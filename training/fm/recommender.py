"""The local FM as `recsys` models: `recsys evaluate --model fm` (ranking) and `--model fm-regressor` (RMSE).

Registered as entry points (group `recsys.models` in pyproject.toml). `fit` builds the FM rows in memory
from the harness's train split, the way preprocessing builds the FM channels: one-hot user + item (+ the
item's categories when the harness has a catalog), and

- `fm` (binary classifier): every interaction labelled (1 for a rating ≥ `positive_threshold`, or no
  rating), plus negatives per positive drawn by popularity^exponent among items the user has not
  interacted with (training/fm/sampling.py) — preprocessing's procedure; the preset's threshold (0: every
  interaction is a positive), count (30) and exponent (0.3) are tuned for ranking, preprocessing's
  defaults are 4.0, 4 and 0.75;
- `fm-regressor`: the ratings themselves, no negatives.

It then trains the local FM (training/fm/local.py) and ranks, for each user, the items by
[v_u, 1] · [v_i + Σ v_c, w_i + …] (exact for the FM's score; artifact.FmModel builds the vectors) with
`recsys.topk.top_k`, train items excluded and only items seen in train as candidates (as the popularity
baseline). `fm-regressor.predict` returns the FM's rating, clipped to the train ratings' range.

The presets' hyperparameters are tuned on ml-latest-small (stratified 75/25 split, seed 42; see the
README and benchmarks/RESULTS.md); every other hyperparameter is SageMaker's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
from training.fm.artifact import FeatureLayout, FmModel
from training.fm.data import rows_from_csr
from training.fm.hyperparameters import FmHyperparameters
from training.fm.local import fit, to_model
from training.fm.sampling import labels_of, sample_negatives


@dataclass(frozen=True)
class Preset:
    """How the plugin builds its rows and trains."""

    predictor_type: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    negatives_per_positive: int = 4
    negative_exponent: float = 0.75
    positive_threshold: float = 4.0
    categories: bool = True


PRESETS = {
    # Tuned for P@10 on ml-latest-small (README "Evaluating"): every interaction a positive, 30 negatives per
    # positive by popularity^0.3 (mean P@10 over 5 seeds 0.2948, against 0.2815 with 20 by ^0.5; see
    # benchmarks/RESULTS.md), small learning rates (lazy Adam lets rare items' weights run away at 0.01).
    "fm": Preset(
        "binary_classifier",
        {
            "num_factors": 64,
            "epochs": 20,
            "mini_batch_size": 1000,
            "bias_lr": 0.001,
            "linear_lr": 0.001,
            "factors_lr": 0.001,
            "bias_wd": 0.0,
            "linear_wd": 2e-5,
            "factors_wd": 2e-5,
            "factors_init_sigma": 0.01,
        },
        negatives_per_positive=30,
        negative_exponent=0.3,
        positive_threshold=0.0,
    ),
    "fm-regressor": Preset(
        "regressor",
        {
            "num_factors": 64,
            "epochs": 20,
            "mini_batch_size": 1000,
            "bias_lr": 0.01,
            "linear_lr": 0.01,
            "factors_lr": 0.01,
            "linear_wd": 0.001,
            "factors_wd": 0.001,
            "factors_init_sigma": 0.01,
        },
        negatives_per_positive=0,
    ),
}


def _category_matrix(train: Interactions) -> sp.csr_matrix:
    """Items × categories (one column per distinct category name, sorted), from the harness's catalog."""
    catalog = train.catalog
    if catalog is None:
        return sp.csr_matrix((train.n_items, 0), dtype=np.float32)
    per_item = [
        [c for c in str(text or "").split("|") if c and c != "(no genres listed)"]
        for text in catalog.categories
    ]
    names = sorted({c for cats in per_item for c in cats})
    index = {name: i for i, name in enumerate(names)}
    indptr = np.concatenate([[0], np.cumsum([len(set(c)) for c in per_item])]).astype(np.int64)
    indices = np.fromiter(
        (index[c] for cats in per_item for c in sorted(set(cats))), np.int64, int(indptr[-1])
    )
    return sp.csr_matrix(
        (np.ones(indices.size, np.float32), indices, indptr), shape=(train.n_items, len(names))
    )


class FmRecommender:
    """Trains the local FM on the train split; ranks unseen items by the FM score; `fm-regressor` predicts."""

    def __init__(self, name: str, seed: int = 42, verbose: bool = True, **overrides: Any) -> None:
        self.name = name
        preset = PRESETS[name]
        fields = {k: v for k, v in overrides.items() if k in Preset.__dataclass_fields__}
        hyperparameters = {k: v for k, v in overrides.items() if k not in Preset.__dataclass_fields__}
        self.preset = replace(preset, **fields, hyperparameters={**preset.hyperparameters, **hyperparameters})
        self.seed = seed
        self.verbose = verbose
        self.device = "auto"
        self.model: FmModel | None = None
        self._candidates = np.zeros(0, np.int64)
        self._rating_range = (-np.inf, np.inf)

    def rows(self, train: Interactions) -> tuple[sp.csr_matrix, np.ndarray, FeatureLayout]:
        """The one-hot rows, labels and feature layout that `fit` trains on."""
        preset = self.preset
        users = train.user.astype(np.int64)
        items = train.item.astype(np.int64)
        if preset.predictor_type == "regressor":
            rated = ~np.isnan(train.rating)
            if not rated.any():
                raise ValueError("fm-regressor needs ratings, and the train split has none")
            users, items, labels = users[rated], items[rated], train.rating[rated].astype(np.float32)
        else:
            labels = labels_of(train.rating, preset.positive_threshold)
            neg_users, neg_items = sample_negatives(
                users,
                items,
                labels > 0,
                train.n_items,
                per_positive=preset.negatives_per_positive,
                exponent=preset.negative_exponent,
                seed=self.seed,
            )
            users = np.concatenate([users, neg_users])
            items = np.concatenate([items, neg_items])
            labels = np.concatenate([labels, np.zeros(neg_users.size, np.float32)])
        categories = _category_matrix(train) if preset.categories else sp.csr_matrix((train.n_items, 0))
        n_users, n_items, n_cats = train.n_users, train.n_items, categories.shape[1]
        one_hot = sp.csr_matrix(
            (
                np.ones(2 * users.size, np.float32),
                np.stack([users, n_users + items], axis=1).reshape(-1),
                np.arange(0, 2 * users.size + 1, 2),
            ),
            shape=(users.size, n_users + n_items + n_cats),
        )
        if n_cats:
            item_cats = categories[items]
            item_cats = sp.csr_matrix(
                (item_cats.data, item_cats.indices + n_users + n_items, item_cats.indptr), shape=one_hot.shape
            )
            one_hot = (one_hot + item_cats).tocsr()
            one_hot.sort_indices()
        blocks = {"users": (0, n_users), "items": (n_users, n_items)}
        if n_cats:
            blocks["categories"] = (n_users + n_items, n_cats)
        layout = FeatureLayout(
            blocks,
            np.asarray(train.user_ids, str),
            np.asarray(train.item_ids, str),
            categories.indptr.astype(np.int64),
            categories.indices.astype(np.int64),
        )
        return one_hot, labels, layout

    def fit(self, train: Interactions) -> None:
        matrix, labels, layout = self.rows(train)
        feature_dim = matrix.shape[1]
        hp = FmHyperparameters(
            feature_dim=feature_dim,
            predictor_type=self.preset.predictor_type,
            **self.preset.hyperparameters,
        )
        rows = rows_from_csr(matrix, labels, feature_dim)
        result = fit(
            hp, rows, seed=self.seed, device=self.device, progress=self.verbose, description=self.name
        )
        self.model = to_model(result.params, hp, layout)
        counts = np.bincount(train.item, minlength=train.n_items)
        self._candidates = np.flatnonzero(counts > 0).astype(np.int64)
        if self.preset.predictor_type == "regressor":
            rated = train.rating[~np.isnan(train.rating)]
            self._rating_range = (float(rated.min()), float(rated.max()))

    def _fitted(self) -> FmModel:
        if self.model is None:
            raise RuntimeError("fit the model before asking for recommendations")
        return self.model

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        from recsys.topk import top_k

        model = self._fitted()
        users = np.asarray(users, np.int64)
        user_vec, _ = model.user_factors()
        item_vec, item_bias = model.item_factors()
        candidates = self._candidates
        queries = np.hstack([user_vec[users], np.ones((users.size, 1), np.float32)]).astype(np.float32)
        items = np.hstack([item_vec[candidates], item_bias[candidates, None]]).astype(np.float32)
        blocked = sp.csr_matrix(exclude)[users][:, candidates]
        best, _ = top_k(queries, items, k, exclude=blocked)
        return np.where(best >= 0, candidates[np.maximum(best, 0)], -1).astype(np.int64)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        if self.preset.predictor_type != "regressor":
            return None  # the classifier's scores are preferences, not ratings
        model = self._fitted()
        scores = model.score_pairs(np.asarray(users, np.int64), np.asarray(items, np.int64))
        low, high = self._rating_range
        return np.clip(scores, low, high)


def classifier(seed: int = 42) -> FmRecommender:
    return FmRecommender("fm", seed)


def regressor(seed: int = 42) -> FmRecommender:
    return FmRecommender("fm-regressor", seed)
