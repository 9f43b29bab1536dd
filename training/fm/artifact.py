"""The FM model artifact: one `.npz` file that both backends produce and the top-k code reads.

Contents (numpy arrays; strings as unicode arrays):

| key | shape / type | meaning |
|---|---|---|
| `w0` | () float32 | global bias |
| `w` | (feature_dim,) float32 | linear weights |
| `V` | (feature_dim, num_factors) float32 | factors, one row per feature |
| `predictor_type` | () str | `binary_classifier` or `regressor` |
| `hyperparameters` | () str | JSON object of the training hyperparameters (strings, as SageMaker's) |
| `blocks` | () str | JSON `{"users": [offset, size], "items": [...], "categories": [...]}` (optional) |
| `user_ids`, `item_ids` | (n,) str | external ids in index order (optional, with blocks) |
| `item_category_indptr`, `item_category_indices` | CSR int64 | each item's categories (indices into the |
| | | categories block; optional) |

Without a layout the model still scores feature vectors; with one it can rank items for users.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from recsys import contracts

ARTIFACT_VERSION = 1
BLOCK_NAMES = ("users", "items", "categories")


class ArtifactError(ValueError):
    """An artifact or a run layout that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class FeatureLayout:
    """Where users, items and categories sit among the one-hot features, and their external ids."""

    blocks: dict[str, tuple[int, int]]
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_category_indptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    item_category_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def feature_dim(self) -> int:
        return max(offset + size for offset, size in self.blocks.values())

    def block(self, name: str) -> tuple[int, int]:
        if name not in self.blocks:
            return (self.feature_dim, 0)
        return self.blocks[name]

    def check(self, where: str) -> None:
        users, items = self.block("users"), self.block("items")
        if users[1] != len(self.user_ids) or items[1] != len(self.item_ids):
            raise ArtifactError(
                f"{where}: the users/items blocks ({users[1]}, {items[1]}) do not match the id maps "
                f"({len(self.user_ids)}, {len(self.item_ids)})"
            )
        if len(self.item_category_indptr) not in (1, len(self.item_ids) + 1):
            raise ArtifactError(f"{where}: item_category_indptr has the wrong length")


@dataclass(frozen=True)
class FmModel:
    """ŷ(x) = w0 + Σ wᵢxᵢ + Σᵢ<ⱼ ⟨vᵢ, vⱼ⟩ xᵢxⱼ (a sigmoid on top for the binary classifier)."""

    w0: float
    w: np.ndarray
    V: np.ndarray
    predictor_type: str
    hyperparameters: dict[str, str] = field(default_factory=dict)
    layout: FeatureLayout | None = None

    def __post_init__(self) -> None:
        if self.w.ndim != 1 or self.V.ndim != 2 or self.V.shape[0] != self.w.shape[0]:
            raise ArtifactError(
                f"w must be (feature_dim,) and V (feature_dim, num_factors); got {self.w.shape} and "
                f"{self.V.shape}"
            )
        if self.layout is not None and self.layout.feature_dim > self.feature_dim:
            raise ArtifactError(
                f"the layout needs {self.layout.feature_dim} features, the model has {self.feature_dim}"
            )

    @property
    def feature_dim(self) -> int:
        return int(self.w.shape[0])

    @property
    def num_factors(self) -> int:
        return int(self.V.shape[1])

    def with_layout(self, layout: FeatureLayout) -> FmModel:
        return FmModel(self.w0, self.w, self.V, self.predictor_type, self.hyperparameters, layout)

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Raw scores (before any sigmoid) of (user index, item index) pairs, categories included."""
        if self.layout is None:
            raise ArtifactError("this model has no feature layout (import it with --manifest)")
        user_vec, user_bias = self.user_factors()
        item_vec, item_bias = self.item_factors()
        scores: np.ndarray = (
            self.w0
            + user_bias[users]
            + item_bias[items]
            + np.einsum("ij,ij->i", user_vec[users], item_vec[items])
        )
        return scores.astype(np.float32)

    def user_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(v_u, w_u) of every user of the layout."""
        offset, size = self._layout().block("users")
        return self.V[offset : offset + size], self.w[offset : offset + size]

    def item_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(v_i + Σ_c v_c, w_i + Σ_c w_c) of every item: its own factors plus its categories'.

        The category features are one-hot per item, so an item with categories behaves exactly like one
        feature with the summed factors; pairwise terms between an item and its own categories are constant
        per item and go into the bias (ranking for a user stays exact)."""
        layout = self._layout()
        offset, size = layout.block("items")
        vec = self.V[offset : offset + size].astype(np.float32, copy=True)
        bias = self.w[offset : offset + size].astype(np.float32, copy=True)
        indptr, indices = layout.item_category_indptr, layout.item_category_indices
        if len(indptr) == size + 1 and len(indices):
            cat_offset, _ = layout.block("categories")
            counts = np.diff(indptr)
            rows = np.repeat(np.arange(size), counts)
            cats = indices + cat_offset
            np.add.at(vec, rows, self.V[cats])
            np.add.at(bias, rows, self.w[cats])
            # Pairwise interactions inside the item's own feature group (item×category, category×category).
            own = self.V[offset : offset + size]
            cat_sum = vec - own
            cat_sq = np.zeros(size, np.float32)
            np.add.at(cat_sq, rows, np.einsum("ij,ij->i", self.V[cats], self.V[cats]))
            bias += np.einsum("ij,ij->i", own, cat_sum) + 0.5 * (
                np.einsum("ij,ij->i", cat_sum, cat_sum) - cat_sq
            )
        return vec, bias

    def _layout(self) -> FeatureLayout:
        if self.layout is None:
            raise ArtifactError("this model has no feature layout (import it with --manifest)")
        return self.layout

    def save(self, path: str | Path) -> None:
        """Write the `.npz` (uncompressed: the factors dominate and do not compress)."""
        arrays: dict[str, Any] = {
            "artifact_version": np.asarray(ARTIFACT_VERSION),
            "w0": np.asarray(self.w0, np.float32),
            "w": self.w.astype(np.float32, copy=False),
            "V": self.V.astype(np.float32, copy=False),
            "predictor_type": np.asarray(self.predictor_type),
            "hyperparameters": np.asarray(json.dumps(self.hyperparameters, sort_keys=True)),
        }
        if self.layout is not None:
            arrays["blocks"] = np.asarray(json.dumps({k: list(v) for k, v in self.layout.blocks.items()}))
            arrays["user_ids"] = self.layout.user_ids.astype(str)
            arrays["item_ids"] = self.layout.item_ids.astype(str)
            arrays["item_category_indptr"] = self.layout.item_category_indptr.astype(np.int64)
            arrays["item_category_indices"] = self.layout.item_category_indices.astype(np.int64)
        with open(path, "wb") as out:
            np.savez(out, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> FmModel:
        """Read an artifact written by `save`; raises ArtifactError naming the file if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: not an FM model artifact (.npz): {exc}") from exc
        missing = {"w0", "w", "V", "predictor_type"} - set(arrays)
        if missing:
            raise ArtifactError(f"{path}: not an FM model artifact (missing {', '.join(sorted(missing))})")
        layout = None
        if "blocks" in arrays:
            blocks = {k: (int(v[0]), int(v[1])) for k, v in json.loads(str(arrays["blocks"])).items()}
            layout = FeatureLayout(
                blocks,
                arrays["user_ids"],
                arrays["item_ids"],
                arrays.get("item_category_indptr", np.zeros(1, np.int64)),
                arrays.get("item_category_indices", np.zeros(0, np.int64)),
            )
            layout.check(str(path))
        try:
            return cls(
                float(arrays["w0"]),
                arrays["w"].astype(np.float32, copy=False),
                arrays["V"].astype(np.float32, copy=False),
                str(arrays["predictor_type"]),
                json.loads(str(arrays.get("hyperparameters", "{}"))),
                layout,
            )
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {exc}") from exc


def load_layout(run_dir: str | Path) -> FeatureLayout:
    """The feature layout of a preprocessing run: manifest blocks plus its user, item and category maps."""
    run = Path(run_dir)
    manifest_path = run / contracts.RUN_MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        blocks = {name: (int(b["offset"]), int(b["size"])) for name, b in manifest["blocks"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{manifest_path}: not a preprocessing manifest ({exc})") from exc
    users = _read_map(run / contracts.RUN_USER_MAP_DIR, "user_idx", ["user_id"])
    items = _read_map(run / contracts.RUN_ITEM_MAP_DIR, "item_idx", ["item_id", "categories"])
    indptr = np.zeros(1, np.int64)
    indices = np.zeros(0, np.int64)
    if blocks.get("categories", (0, 0))[1] > 0:
        categories = _read_map(run / contracts.RUN_CATEGORY_MAP_DIR, "category_idx", ["category"])
        index = {name: i for i, name in enumerate(categories["category"])}
        per_item = [
            sorted({index[c] for c in (text or "").split("|") if c in index}) for text in items["categories"]
        ]
        indptr = np.concatenate([[0], np.cumsum([len(c) for c in per_item])]).astype(np.int64)
        indices = np.fromiter((c for cats in per_item for c in cats), np.int64, int(indptr[-1]))
    layout = FeatureLayout(
        blocks, np.asarray(users["user_id"], str), np.asarray(items["item_id"], str), indptr, indices
    )
    layout.check(str(manifest_path))
    return layout


def _read_map(path: Path, index_column: str, columns: list[str]) -> dict[str, list[Any]]:
    """A map table sorted by its contiguous index (0..n-1, checked)."""
    try:
        table = pq.read_table(path, columns=[index_column, *columns]).sort_by(index_column)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read the map ({exc})") from exc
    index = table.column(index_column).to_numpy()
    if not np.array_equal(index, np.arange(len(index))):
        raise ArtifactError(f"{path}: {index_column} is not contiguous from 0")
    return {name: table.column(name).to_pylist() for name in columns}
