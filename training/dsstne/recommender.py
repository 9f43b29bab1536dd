"""The autoencoder as a `recsys` model: `recsys evaluate --model autoencoder` trains the engine.

Two presets, registered as entry points (group `recsys.models` in pyproject.toml):

- `autoencoder-dsstne`: DSSTNE's own MovieLens sample, as it comes (128 sigmoid hidden units with
  the sparseness penalty p = 0.5, β = 2; denoising 0.2; ScaledMarginalCrossEntropy 1/0/1/1; DSSTNE's
  train defaults SGD α = 0.025, λ = 1e-4; batch 256; 40 epochs; no shuffling). It learns little more
  than popularity, as DSSTNE's users found (dsstne.md §11: P@10 0.057 on ML-20M against 0.110 for
  popularity).
- `autoencoder`: the tuned configuration (measured in benchmarks/RESULTS.md): 600 tanh hidden units,
  denoising 0.5 (the input layer sees half of each user's items), the same cross-entropy over all
  items, Adam α = 1e-3, λ = 1e-5, batch 64, 50 epochs, shuffled. The widening and the heavier
  denoising are what make it rank personal items above popular ones; Adam is what lets a small data
  set train in a few hundred steps.

Users are the examples, their train items both the input and the target; the scores of the output
layer rank the items a user has not seen.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsys.interactions import Interactions
from training.dsstne.engine import Engine, LayerSpec, NetworkSpec, TrainSettings, xavier_weights
from training.dsstne.layout import SparseRows
from training.dsstne.losses import SparseLoss

BCE = SparseLoss("smce", one_target=1.0, zero_target=0.0, one_scale=1.0, zero_scale=1.0)


@dataclass(frozen=True)
class Preset:
    hidden: tuple[LayerSpec, ...]
    denoising: float
    settings: TrainSettings
    epochs: int


PRESETS = {
    "autoencoder-dsstne": Preset(
        hidden=(LayerSpec(128, "sigmoid", sparseness=(0.5, 2.0)),),
        denoising=0.2,
        settings=TrainSettings(alpha=0.025, l2=1e-4, batch=256, shuffle=False),
        epochs=40,
    ),
    "autoencoder": Preset(
        hidden=(LayerSpec(600, "tanh"),),
        denoising=0.5,
        settings=TrainSettings(alpha=1e-3, l2=1e-5, batch=64, shuffle=True, optimizer="adam"),
        epochs=50,
    ),
}


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class AutoencoderRecommender:
    """Fits the engine on the train split; recommends the highest-scoring unseen items."""

    def __init__(self, name: str, seed: int = 42, epochs: int | None = None, verbose: bool = True) -> None:
        self.name = name
        self.preset = PRESETS[name]
        self.seed = seed
        self.epochs = self.preset.epochs if epochs is None else epochs
        self.verbose = verbose
        self._engine: Engine | None = None
        self._rows: SparseRows | None = None
        self._n_items = 0

    def fit(self, train: Interactions) -> None:
        device = _device()
        width = -(-train.n_items // 128) * 128  # DSSTNE pads layer widths to a multiple of 128
        matrix = sp.csr_matrix(
            (np.ones(len(train), dtype=np.float32), (train.user, train.item)), shape=(train.n_users, width)
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        rows = SparseRows(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            width,
        ).to(device)
        preset = self.preset
        spec = NetworkSpec(width, (*preset.hidden, LayerSpec(width, "sigmoid")), BCE, preset.denoising)
        settings = TrainSettings(**{**preset.settings.__dict__, "seed": self.seed})
        torch.manual_seed(self.seed)  # denoising masks
        engine = Engine(
            spec, xavier_weights(spec, torch.Generator().manual_seed(self.seed), device), settings, device
        )
        for _ in range(self.epochs):
            stats = engine.train_epoch(rows, rows)
            if self.verbose:
                progress = f"{self.name}: epoch {stats.epoch}/{self.epochs}"
                print(
                    f"{progress}, average training error {stats.error:.3f}, "
                    f"{stats.examples_per_second:,.0f} examples/s",
                    file=sys.stderr,
                )
        self._engine, self._rows, self._n_items = engine, rows, train.n_items

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self._engine is None or self._rows is None:
            raise RuntimeError("fit the model before asking for recommendations")
        exclude = sp.csr_matrix(exclude)
        out = np.full((len(users), k), -1, dtype=np.int64)
        batch = 1024
        for start in range(0, len(users), batch):
            chunk = np.asarray(users[start : start + batch], dtype=np.int64)
            rows = torch.from_numpy(chunk).to(self._rows.indptr.device)
            scores = self._engine.scores(self._rows, rows)[:, : self._n_items].float().cpu()
            seen = exclude[chunk]
            seen_rows = np.repeat(np.arange(len(chunk)), np.diff(seen.indptr))
            scores[torch.from_numpy(seen_rows), torch.from_numpy(seen.indices.astype(np.int64))] = -torch.inf
            take = min(k, self._n_items)
            values, items = torch.topk(scores, take, dim=1)
            items[torch.isinf(values)] = -1  # fewer than k unseen items left
            out[start : start + len(chunk), :take] = items.numpy()
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> None:
        return None  # scores are preferences, not ratings


def tuned(seed: int = 42) -> AutoencoderRecommender:
    return AutoencoderRecommender("autoencoder", seed)


def dsstne_sample(seed: int = 42) -> AutoencoderRecommender:
    return AutoencoderRecommender("autoencoder-dsstne", seed)
