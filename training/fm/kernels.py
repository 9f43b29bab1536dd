"""The CPU training step as one fused, multi-threaded numba kernel (the same math as `model.FmOptimizer`).

Why not torch ops on the CPU: a step is a gather, a little arithmetic and a scatter per row, and as a chain
of torch ops every intermediate (batch × width × factors) goes through memory several times and the
row-sparse gradient needs a scatter-add that torch runs single-threaded; that measured about 0.5 M
samples per CPU-second. Fused, each table row is read once and written once per step (about 2× that).

One step over a batch, in four phases:

0. per sample (parallel): the batch's rows gathered from the (shuffled) dataset into contiguous arrays,
   their lines prefetched ahead — on a large dataset each row is a cache miss, and a serial gather was a
   quarter of the step;
1. per sample (parallel): ŷ from the gathered rows, keeping Σᵢ vᵢxᵢ; the loss and ∂loss/∂ŷ;
2. (serial, O(batch)) the distinct feature rows of the batch, each with a linked list of its occurrences —
   no sort, no pass over the whole table;
3. per distinct row (parallel): its gradient summed over its occurrences (in a fixed order, so results do
   not depend on the number of threads), then clip, weight decay and Adam on that row only (lazy update).

The parameters are the trainer's torch tensors, seen as numpy arrays (shared memory, updated in place).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# numba's OpenMP layer, with threads that sleep while they wait (OMP_WAIT_POLICY=PASSIVE): measured on 2
# cores, 2.25 M rows/s idle and 1.48 M with the other core busy, against 1.75 M / 1.19 M for numba's own
# `workqueue` pool (which keeps the second thread mostly idle) and 0.93 M for OpenMP's default spinning
# wait on busy cores. `workqueue` stays the fallback where no OpenMP runtime loads. Both settings are
# process-wide, so a user's NUMBA_THREADING_LAYER / OMP_WAIT_POLICY wins; the wait policy must be set
# before numba loads its OpenMP runtime (at the first parallel call).
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Reassociation lets LLVM vectorise the sums over factors; no "fast" library calls, no NaN assumptions.
_FLAGS = {"reassoc", "contract", "nsz", "arcp"}
AHEAD = 8  # samples (phase 1) or rows (phase 3) whose table rows are prefetched ahead of use
LINE = 16  # float32 values per 64-byte cache line


@intrinsic
def _prefetch(typingctx: Any, array: Any, row: Any, column: Any) -> Any:
    """Hint the CPU to load array[row, column] into the cache (LLVM's prefetch; never faults).

    Why: the table rows a step needs are random, so each one is a cache miss; issued a few samples
    ahead, the misses overlap instead of stalling one after another (+40 % on the forward phase).
    """
    signature = types.void(array, row, column)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        array_type, row_type, column_type = sig.args
        data = context.make_array(array_type)(context, builder, args[0])
        index = [
            context.cast(builder, args[1], row_type, types.intp),
            context.cast(builder, args[2], column_type, types.intp),
        ]
        pointer = cgutils.get_item_pointer(context, builder, array_type, data, index)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = builder.module.globals.get("llvm.prefetch.p0") or ir.Function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            name="llvm.prefetch.p0",
        )
        # read access, high temporal locality, data cache
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return signature, codegen


@numba.njit(parallel=True, cache=True)
def _gather(
    idx: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    take: np.ndarray,
    idx_out: np.ndarray,
    x_out: np.ndarray,
    y_out: np.ndarray,
) -> None:
    """Phase 0, per sample: rows `take` of (idx, x, y) into the first len(take) rows of the outputs."""
    batch, width = take.shape[0], idx.shape[1]
    weighted = x.shape[0] > 0
    for b in prange(batch):
        if b + AHEAD < batch:
            ahead = take[b + AHEAD]
            _prefetch(idx, ahead, 0)
            if weighted:
                _prefetch(x, ahead, 0)
        row = take[b]
        for j in range(width):
            idx_out[b, j] = idx[row, j]
            if weighted:
                x_out[b, j] = x[row, j]
        y_out[b] = y[row]


@numba.njit(parallel=True, cache=True, fastmath=_FLAGS)
def _forward(
    idx: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    v_table: np.ndarray,
    w: np.ndarray,
    w0: float,
    sums: np.ndarray,
    dyhat: np.ndarray,
    classifier: bool,
    scale: float,
) -> float:
    """Phase 1, per sample: ŷ, Σᵢ vᵢxᵢ (kept in `sums`), the loss, ∂(scaled loss)/∂ŷ (in `dyhat`)."""
    batch, width = idx.shape
    k, pad = v_table.shape[1], v_table.shape[0] - 1
    one_hot = x.shape[0] == 0
    zero = np.float32(0.0)
    loss = 0.0
    for b in prange(batch):
        if b + AHEAD < batch:
            for j in range(width):
                for f in range(0, k, LINE):
                    _prefetch(v_table, idx[b + AHEAD, j], f)
        row = b
        linear = np.float32(w0)
        squares = zero
        for f in range(k):
            sums[b, f] = zero
        for j in range(width):
            feature = idx[row, j]
            if feature == pad:
                continue
            value = np.float32(1.0) if one_hot else x[row, j]
            linear += w[feature] * value
            for f in range(k):
                term = v_table[feature, f] * value
                sums[b, f] += term
                squares += term * term
        total = zero
        for f in range(k):
            total += sums[b, f] * sums[b, f]
        yhat = float(linear + np.float32(0.5) * (total - squares))
        if classifier:  # log(1 + e^ŷ) − yŷ and σ(ŷ) − y, both stable for large |ŷ|
            tail = math.exp(-abs(yhat))
            loss += max(yhat, 0.0) + math.log1p(tail) - y[row] * yhat
            prob = 1.0 / (1.0 + tail) if yhat >= 0 else tail / (1.0 + tail)
            dyhat[b] = (prob - y[row]) * scale
        else:
            loss += 0.5 * (yhat - y[row]) ** 2
            dyhat[b] = (yhat - y[row]) * scale
    return loss


@numba.njit(cache=True)
def _distinct_rows(idx: np.ndarray, pad: int, head: np.ndarray, link: np.ndarray, rows: np.ndarray) -> int:
    """Phase 2 (serial, O(batch)): the distinct features of the batch in `rows[:n]`, and for each a
    linked list of its entries (entry = sample * width + slot) from `head[feature]` through `link`."""
    width = idx.shape[1]
    n = 0
    for entry in range(idx.shape[0] * width):
        feature = idx[entry // width, entry % width]
        if feature == pad:
            continue
        if head[feature] < 0:
            rows[n] = feature
            n += 1
        link[entry] = head[feature]
        head[feature] = entry
    return n


@numba.njit(parallel=True, cache=True, fastmath=_FLAGS)
def _update_rows(
    idx: np.ndarray,
    x: np.ndarray,
    v_table: np.ndarray,
    w: np.ndarray,
    m_v: np.ndarray,
    v_v: np.ndarray,
    m_w: np.ndarray,
    v_w: np.ndarray,
    sums: np.ndarray,
    dyhat: np.ndarray,
    grads: np.ndarray,
    head: np.ndarray,
    link: np.ndarray,
    rows: np.ndarray,
    n_rows: int,
    clip: float,
    lr_v: float,
    lr_w: float,
    wd_v: float,
    wd_w: float,
    beta1: float,
    beta2: float,
    eps: float,
    correction: float,
) -> None:
    """Phase 3, per distinct feature: its gradient summed over its entries (in list order, so the result
    does not depend on the number of threads), then clip, weight decay and Adam on that row only."""
    width, k = idx.shape[1], v_table.shape[1]
    one_hot = x.shape[0] == 0
    zero = np.float32(0.0)
    b1, b2, epsilon = np.float32(beta1), np.float32(beta2), np.float32(eps)
    step_v, step_w = np.float32(lr_v * correction), np.float32(lr_w * correction)
    decay_v, decay_w, limit = np.float32(wd_v), np.float32(wd_w), np.float32(clip)
    for i in prange(n_rows):
        if i + AHEAD < n_rows:
            ahead = rows[i + AHEAD]
            for f in range(0, k, LINE):
                _prefetch(v_table, ahead, f)
                _prefetch(m_v, ahead, f)
                _prefetch(v_v, ahead, f)
        feature = rows[i]
        grad = grads[i]
        for f in range(k):
            grad[f] = zero
        grad_w = zero
        entry = head[feature]
        while entry >= 0:
            b = entry // width
            value = np.float32(1.0) if one_hot else x[b, entry % width]
            d = dyhat[b] * value
            grad_w += d
            for f in range(k):
                grad[f] += d * (sums[b, f] - v_table[feature, f] * value)
            entry = link[entry]
        head[feature] = -1
        if lr_w != 0.0:
            g = min(max(grad_w, -limit), limit) + decay_w * w[feature]
            m = b1 * m_w[feature] + (1 - b1) * g
            v = b2 * v_w[feature] + (1 - b2) * g * g
            m_w[feature] = m
            v_w[feature] = v
            w[feature] -= step_w * m / (np.sqrt(v) + epsilon)
        if lr_v != 0.0:
            for f in range(k):
                g = min(max(grad[f], -limit), limit) + decay_v * v_table[feature, f]
                m = b1 * m_v[feature, f] + (1 - b1) * g
                v = b2 * v_v[feature, f] + (1 - b2) * g * g
                m_v[feature, f] = m
                v_v[feature, f] = v
                v_table[feature, f] -= step_v * m / (np.sqrt(v) + epsilon)


def fm_step(
    idx: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    take: np.ndarray,
    v_table: np.ndarray,
    w: np.ndarray,
    w0: float,
    m_v: np.ndarray,
    v_v: np.ndarray,
    m_w: np.ndarray,
    v_w: np.ndarray,
    scratch: KernelScratch,
    *,
    classifier: bool,
    scale: float,
    clip: float,
    lr_v: float,
    lr_w: float,
    wd_v: float,
    wd_w: float,
    beta1: float,
    beta2: float,
    eps: float,
    correction: float,
) -> tuple[float, float]:
    """Train on the rows `take` of (idx, x, y) in place; returns (summed loss, ∂(scaled loss)/∂w0).

    `idx` (n, width) holds feature indices (`pad` = len(w) − 1 in unused slots), `x` (n, width) their
    values or a (0, 0) array for one-hot rows, `y` (n,) the labels; `scale` is the factor on the summed
    loss's gradient (1 / batch, or rescale_grad), `clip` inf for no clipping, `correction` Adam's
    √(1 − β2ᵗ) / (1 − β1ᵗ).
    """
    batch = take.shape[0]
    scratch.reserve(batch, idx, v_table.shape[1], v_table.shape[0], weighted=x.shape[0] > 0)
    idx_b, y_b = scratch.idx[:batch], scratch.y[:batch]
    x_b = scratch.x[:batch] if x.shape[0] else x
    _gather(idx, x, y, take, idx_b, x_b, y_b)
    sums, dyhat = scratch.sums[:batch], scratch.dyhat[:batch]
    loss = _forward(idx_b, x_b, y_b, v_table, w, w0, sums, dyhat, classifier, scale)
    n_rows = _distinct_rows(idx_b, v_table.shape[0] - 1, scratch.head, scratch.link, scratch.rows)
    _update_rows(
        idx_b,
        x_b,
        v_table,
        w,
        m_v,
        v_v,
        m_w,
        v_w,
        sums,
        dyhat,
        scratch.grads,
        scratch.head,
        scratch.link,
        scratch.rows,
        n_rows,
        clip,
        lr_v,
        lr_w,
        wd_v,
        wd_w,
        beta1,
        beta2,
        eps,
        correction,
    )
    return float(loss), float(dyhat.sum(dtype=np.float64))


class KernelScratch:
    """Work arrays of the kernel, grown to the largest batch seen; `head` is all −1 between steps."""

    def __init__(self) -> None:
        self.sums = np.empty((0, 0), np.float32)
        self.dyhat = np.empty(0, np.float32)
        self.grads = np.empty((0, 0), np.float32)
        self.link = np.empty(0, np.int64)
        self.rows = np.empty(0, np.int64)
        self.head = np.empty(0, np.int64)
        self.idx = np.empty((0, 0), np.int32)
        self.x = np.empty((0, 0), np.float32)
        self.y = np.empty(0, np.float32)

    def reserve(self, batch: int, idx: np.ndarray, k: int, table_rows: int, *, weighted: bool) -> None:
        """Room for a batch of `batch` rows shaped like `idx` (same width and dtype)."""
        width = idx.shape[1]
        if self.sums.shape[0] < batch or self.sums.shape[1] != k:
            self.sums = np.empty((batch, k), np.float32)
            self.dyhat = np.empty(batch, np.float32)
        if self.idx.shape[0] < batch or self.idx.shape[1] != width or self.idx.dtype != idx.dtype:
            self.idx = np.empty((batch, width), idx.dtype)
            self.y = np.empty(batch, np.float32)
        if weighted and (self.x.shape[0] < batch or self.x.shape[1] != width):
            self.x = np.empty((batch, width), np.float32)
        if self.grads.shape[0] < batch * width or self.grads.shape[1] != k:
            self.grads = np.empty((batch * width, k), np.float32)
            self.link = np.empty(batch * width, np.int64)
            self.rows = np.empty(batch * width, np.int64)
        if self.head.shape[0] != table_rows:
            self.head = np.full(table_rows, -1, np.int64)
