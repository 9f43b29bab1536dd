"""FM rows for the trainer: from a preprocessing run's recordIO channels, or from a CSR matrix in memory.

The trainer wants a dense (n, width) block of feature indices (padded with `feature_dim`), not CSR: a
batch is then a plain row gather. One-hot rows (every stored value 1, as preprocessing writes them) keep
no value array at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recsys import contracts
from recsys.recordio import bulk_read_sparse_records
from training.fm.model import FmRows


class ChannelError(ValueError):
    """A run folder whose manifest or channels cannot be trained on; the message names the file."""


def rows_from_csr(matrix: sp.csr_matrix, labels: np.ndarray, feature_dim: int) -> FmRows:
    """Padded rows of a CSR matrix (n, ≤ feature_dim): width = the longest row; values kept unless all 1."""
    matrix = sp.csr_matrix(matrix)
    n = matrix.shape[0]
    counts = np.diff(matrix.indptr)
    width = max(int(counts.max()) if n else 1, 1)
    dtype = np.int32 if feature_dim < np.iinfo(np.int32).max else np.int64
    idx = np.full((n, width), feature_dim, dtype)
    row = np.repeat(np.arange(n, dtype=np.int64), counts)
    slot = np.arange(matrix.nnz, dtype=np.int64) - matrix.indptr[:-1].astype(np.int64)[row]
    idx[row, slot] = matrix.indices
    x = None
    if matrix.nnz and not bool(np.all(matrix.data == 1)):
        values = np.zeros((n, width), np.float32)
        values[row, slot] = matrix.data
        x = torch.from_numpy(values)
    return FmRows(torch.from_numpy(idx), x, torch.from_numpy(np.asarray(labels, np.float32)))


def read_manifest(run: Path) -> dict[str, Any]:
    path = run / contracts.RUN_MANIFEST_FILE
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChannelError(f"{path}: cannot read the run's manifest ({exc})") from exc
    if not isinstance(manifest.get("feature_dim"), int) or not isinstance(manifest.get("fm"), dict):
        raise ChannelError(f"{path}: not a preprocessing manifest (no feature_dim or fm section)")
    return manifest


def read_channel(run: Path, manifest: dict[str, Any], channel: str) -> FmRows | None:
    """The rows of one channel (`train` or `test`) as the manifest lists its files; None if it has none."""
    entry = manifest["fm"].get("channels", {}).get(channel)
    if not entry or not entry.get("files"):
        return None
    feature_dim = int(manifest["feature_dim"])
    folder = run / entry.get("path", f"fm/{channel}/")
    parts, labels = [], []
    for name in entry["files"]:
        path = folder / name
        try:
            rows, part_labels, dim = bulk_read_sparse_records(path)
        except OSError as exc:
            raise ChannelError(f"{path}: cannot read the {channel} channel ({exc})") from exc
        except ValueError as exc:
            raise ChannelError(f"{path}: {exc}") from exc
        if rows.shape[0] and dim != feature_dim:
            raise ChannelError(f"{path}: records have feature_dim {dim}, the manifest says {feature_dim}")
        parts.append(rows.tocsr().astype(np.float32))
        labels.append(part_labels)
    matrix = sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
    expected = entry.get("records")
    if isinstance(expected, int) and expected != matrix.shape[0]:
        raise ChannelError(f"{folder}: {matrix.shape[0]} records, the manifest says {expected}")
    return rows_from_csr(matrix, np.concatenate(labels), feature_dim)
