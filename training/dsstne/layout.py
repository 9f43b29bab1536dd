"""Sparse rows and their minibatch layout with static shapes.

The engine keeps a whole data set on the device as CSR and lays an epoch out as fixed-size tensors per
minibatch: the input nonzeros padded to the epoch's largest batch, their row within the batch, the
EmbeddingBag offsets, and the flat output positions of the targets. Static shapes let one CUDA graph
replay a whole epoch with no host work, and padding entries carry weight 0, so they change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SparseRows:
    """CSR rows of feature indices (Boolean sparse data: a stored index means 1)."""

    indptr: torch.Tensor  # int64 [n_rows + 1]
    indices: torch.Tensor  # int64 [nnz]
    width: int  # number of columns (DSSTNE's padded width)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_lists(cls, rows: list[list[int]], width: int) -> SparseRows:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        flat = (
            np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]) if rows else np.zeros(0, np.int64)
        )
        return cls(torch.from_numpy(indptr), torch.from_numpy(flat), width)

    def to(self, device: torch.device | str) -> SparseRows:
        return SparseRows(self.indptr.to(device), self.indices.to(device), self.width)

    def unique(self) -> SparseRows:
        """The same rows with repeated indices dropped (targets are sets: an item is wanted or not)."""
        row = torch.repeat_interleave(torch.arange(self.n_rows, device=self.indptr.device), self.lengths())
        key = torch.unique(row * self.width + self.indices)  # sorted by row, then index
        kept_row = torch.div(key, self.width, rounding_mode="floor")
        counts = torch.bincount(kept_row, minlength=self.n_rows)
        indptr = torch.zeros(self.n_rows + 1, dtype=torch.int64, device=key.device)
        indptr[1:] = torch.cumsum(counts, 0)
        return SparseRows(indptr, key - kept_row * self.width, self.width)

    def lengths(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def columns(self, lo: int, hi: int) -> SparseRows:
        """The same rows restricted to columns lo..hi-1, renumbered from 0 (one rank's output shard)."""
        row = torch.repeat_interleave(torch.arange(self.n_rows, device=self.indptr.device), self.lengths())
        keep = (self.indices >= lo) & (self.indices < hi)
        counts = torch.bincount(row[keep], minlength=self.n_rows)
        indptr = torch.zeros(self.n_rows + 1, dtype=torch.int64, device=self.indptr.device)
        indptr[1:] = torch.cumsum(counts, 0)
        return SparseRows(indptr, self.indices[keep] - lo, hi - lo)


@dataclass(frozen=True)
class BatchLayout:
    """Minibatches of equal size `batch`, as [n_batches, capacity] tensors."""

    batch: int
    rows: torch.Tensor  # int64 [n_batches, batch]: data-set row of each batch row
    in_index: torch.Tensor  # int64 [n_batches, in_cap]: input feature of each nonzero (0 for padding)
    in_row: torch.Tensor  # int64 [n_batches, in_cap]: batch row of each nonzero
    in_valid: torch.Tensor  # float32 [n_batches, in_cap]: 1 for a real nonzero, 0 for padding
    offsets: torch.Tensor  # int64 [n_batches, batch + 1]: EmbeddingBag offsets (last = in_cap)
    out_pos: torch.Tensor  # int64 [n_batches, out_cap]: row * width + index; padding -> batch * width
    out_valid: torch.Tensor  # float32 [n_batches, out_cap]

    @property
    def n_batches(self) -> int:
        return int(self.rows.shape[0])


def _pack(rows: SparseRows, order: torch.Tensor, batch: int) -> tuple[torch.Tensor, ...]:
    """Pack the nonzeros of `order` (a multiple of `batch` rows) batch by batch, padded to the largest."""
    device = order.device
    n = len(order)
    n_batches = n // batch
    lengths = rows.lengths()[order]
    ends = torch.cumsum(lengths, 0)
    starts = ends - lengths
    batch_of_row = torch.arange(n, device=device) // batch
    batch_start = starts[batch_of_row * batch]  # nonzeros before the batch's first row
    per_batch = torch.zeros(n_batches, dtype=torch.int64, device=device).index_add_(0, batch_of_row, lengths)
    capacity = max(int(per_batch.max()) if n_batches else 0, 1)

    nz_row = torch.repeat_interleave(torch.arange(n, device=device), lengths)
    within = torch.arange(len(nz_row), device=device) - starts[nz_row]
    source = rows.indptr[order][nz_row] + within
    nz_batch = batch_of_row[nz_row]
    slot = starts[nz_row] - batch_start[nz_row] + within

    index = torch.zeros(n_batches, capacity, dtype=torch.int64, device=device)
    index[nz_batch, slot] = rows.indices[source]
    row_in_batch = torch.full((n_batches, capacity), batch - 1, dtype=torch.int64, device=device)
    row_in_batch[nz_batch, slot] = nz_row % batch
    valid = torch.zeros(n_batches, capacity, dtype=torch.float32, device=device)
    valid[nz_batch, slot] = 1.0
    offsets = torch.full((n_batches, batch + 1), capacity, dtype=torch.int64, device=device)
    offsets[:, :batch] = (starts - batch_start).view(n_batches, batch)
    return index, row_in_batch, valid, offsets


def layout(inputs: SparseRows, targets: SparseRows, order: torch.Tensor, batch: int) -> BatchLayout:
    """Lay out the rows `order` (a multiple of `batch` of them) of an input and a target data set."""
    if len(order) % batch:
        raise ValueError(f"{len(order)} rows do not split into batches of {batch}")
    in_index, in_row, in_valid, offsets = _pack(inputs, order, batch)
    out_index, out_row, out_valid, _ = _pack(targets, order, batch)
    padding = batch * targets.width  # the first cell of a scratch row after the batch
    out_pos = torch.where(out_valid > 0, out_row * targets.width + out_index, padding)
    return BatchLayout(
        batch=batch,
        rows=order.view(-1, batch),
        in_index=in_index,
        in_row=in_row,
        in_valid=in_valid,
        offsets=offsets,
        out_pos=out_pos,
        out_valid=out_valid,
    )


def epoch_layouts(
    inputs: SparseRows, targets: SparseRows, order: torch.Tensor, batch: int
) -> list[BatchLayout]:
    """The epoch's full batches, plus one layout for the last, shorter batch when there is one."""
    full = (len(order) // batch) * batch
    parts = [layout(inputs, targets, order[:full], batch)] if full else []
    if full < len(order):
        parts.append(layout(inputs, targets, order[full:], len(order) - full))
    return parts
