"""Exact top-k by inner product, in bounded memory: "the k best items for every user" at catalog scale.

`top_k(queries, items, k)` returns, per query row, the k items with the largest `query · item`, best
first, ties broken by the lower item index, excluded items never returned, and -1 / -inf padding when
fewer than k candidates remain. `similar_items(vectors, k)` does the same for cosine similarity between
items, the item itself excluded.

How it stays exact and fast:

- Queries go in blocks of rows: one float32 matrix multiply (BLAS) per block gives the block's scores,
  excluded items are set to -inf, then a partial selection picks the k best. Block rows follow from
  `memory_bytes` and the item count, so memory is bounded whatever the catalog size; a catalog so large
  that one row of scores does not fit is tiled over items and the per-tile top-k lists are merged.
- The selection is hierarchical, because `argpartition` over a whole row costs several times the
  multiply: the row is cut into `GROUP` interleaved strips, an elementwise max over the strips gives one
  maximum per group of `GROUP` items, the k best groups are chosen (recursively, the same way), and
  only the members of those groups that reach the smallest chosen maximum (about k per row, not
  k·GROUP) go through `argpartition`. Every item better than the k-th best lies in one of the k best
  groups, so the result is exact; the rare rows whose k-th score is tied with an item left outside are
  redone on the full row, which keeps "lower item index first" among ties. The selection runs on
  `SELECT_ROWS` rows at a time so their scores stay in cache from the maxima to the gathers.
- Blocks run on Python threads (numpy and BLAS release the GIL), with BLAS limited to one thread
  meanwhile so the two levels of threading do not fight; measured faster on 2 cores than one Python
  thread with a multi-threaded BLAS (benchmarks/topk_speed.py). The BLAS limit is process-wide while
  `top_k` runs.

Scores are float32 sums as BLAS computes them; a brute-force reference agrees on the ranking whenever it
uses the same float32 product (tests/unit/recsys/test_topk.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

MiB = 1 << 20
DEFAULT_MEMORY_BYTES = 256 * MiB
GROUP = 8  # items per group in the hierarchical selection (tuned in benchmarks/topk_speed.py)
MAX_BLOCK_ROWS = 512  # larger blocks gain nothing and leave the other threads idle at the end
SELECT_ROWS = 32  # rows selected at once (their scores, ~3.4 MB at 26,744 items, stay in cache)
MIN_TILE = 256  # items per tile at the least, however small memory_bytes is


def top_k(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    threads: int | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """The k items with the largest inner product for each query: (int64 (n, k) indices, float32 scores).

    `exclude` (optional, shape (n_queries, n_items), CSR) names per query the items never to return:
    every stored entry counts, whatever its value. `threads=None` uses every CPU. `memory_bytes` bounds
    the working memory of all threads together (the two (n, k) result arrays come on top). Query and item
    values must be finite.
    """
    q = _as_matrix(queries, "queries")
    it = _as_matrix(items, "items")
    if q.shape[1] != it.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} columns but items have {it.shape[1]}")
    n, m = q.shape[0], it.shape[0]
    mask = _as_exclude(exclude, n, m)
    return _run(q, m, k, mask, threads, memory_bytes, _dot_scorer(q, it))


def similar_items(
    item_vectors: np.ndarray,
    k: int,
    *,
    items: np.ndarray | None = None,
    threads: int | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar items of each item (or of the item indices in `items`), itself excluded.

    Vectors are L2-normalised first; a zero vector has similarity 0 with everything (never NaN), so such
    items come last, in index order. Returns int64 (len, k) indices and float32 similarities, best first,
    ties broken by the lower index, -1 / -inf padding when the catalog has fewer than k other items.
    """
    vectors = _as_matrix(item_vectors, "item_vectors")
    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors), where=norms[:, None] > 0)
    m = unit.shape[0]
    rows = np.arange(m, dtype=np.int64) if items is None else np.asarray(items, dtype=np.int64).ravel()
    if len(rows) and (rows.min() < 0 or rows.max() >= m):
        raise ValueError(f"items must be indices in [0, {m}); got {rows.min()}..{rows.max()}")
    self_mask = sp.csr_matrix(
        (np.ones(len(rows), np.int8), rows, np.arange(len(rows) + 1, dtype=np.int64)), shape=(len(rows), m)
    )
    queries = unit[rows]
    return _run(queries, m, k, self_mask, threads, memory_bytes, _dot_scorer(queries, unit))


# --- planning and threads -------------------------------------------------------------------------------

Scorer = Callable[[int, int, int, int, np.ndarray], None]  # (row0, row1, col0, col1, out) fills out


@dataclass(frozen=True)
class _Plan:
    block_rows: int
    tile: int  # items per tile; == n_items when a whole row of scores fits
    workers: int


def _dot_scorer(q: np.ndarray, items: np.ndarray) -> Scorer:
    def score(r0: int, r1: int, c0: int, c1: int, out: np.ndarray) -> None:
        np.matmul(q[r0:r1], items[c0:c1].T, out=out)

    return score


def _row_bytes(n_items: int, kk: int) -> int:
    """Working bytes per query row of a block: its scores, the group maxima, candidates, the merge."""
    return 4 * _padded(n_items, kk) + 16 * (n_items // GROUP + 1) + 48 * GROUP * kk + 96 * kk


def plan(n: int, m: int, k: int, threads: int | None, memory_bytes: int, nnz_per_row: float = 0.0) -> _Plan:
    """Block rows, item tile and worker count for n queries over m items within `memory_bytes`."""
    if memory_bytes <= 0:
        raise ValueError(f"memory_bytes must be positive; got {memory_bytes}")
    wanted = (os.cpu_count() or 1) if threads is None else threads
    if wanted < 1:
        raise ValueError(f"threads must be at least 1; got {threads}")
    kk = max(1, min(k, m))
    per_thread = max(1, memory_bytes // wanted)
    per_row = _row_bytes(m, kk) + int(24 * nnz_per_row)
    if per_row <= per_thread:
        rows = min(per_thread // per_row, MAX_BLOCK_ROWS, max(n, 1))
        # Give every worker something to do when the queries are few.
        rows = max(1, min(rows, -(-n // wanted))) if n else 1
        tile = m
    else:
        rows = 1
        tile = (per_thread - 96 * kk - int(24 * nnz_per_row)) // (4 + 16 // GROUP + 1)
        # Below this floor the per-tile merges cost more than the memory saved: the bound is then exceeded.
        tile = min(max(tile, MIN_TILE), m)
    blocks = -(-n // rows) if n else 0
    return _Plan(block_rows=int(rows), tile=int(tile), workers=max(1, min(wanted, blocks)))


def _run(
    q: np.ndarray,
    m: int,
    k: int,
    mask: sp.csr_matrix | None,
    threads: int | None,
    memory_bytes: int,
    scorer: Scorer,
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a non-negative integer; got {k!r}")
    k = int(k)
    n = q.shape[0]
    ids = np.full((n, k), -1, np.int64)
    vals = np.full((n, k), -np.inf, np.float32)
    kk = min(k, m)
    nnz_per_row = mask.nnz / max(n, 1) if mask is not None else 0.0
    p = plan(n, m, k, threads, memory_bytes, nnz_per_row)
    if n == 0 or kk == 0:
        return ids, vals
    local = threading.local()
    buf_size = p.block_rows * _padded(p.tile, kk)

    def do_block(r0: int) -> None:
        r1 = min(r0 + p.block_rows, n)
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty(buf_size, np.float32)
        bi, bv = _block_top_k(r0, r1, m, kk, mask, scorer, p.tile, buf)
        ids[r0:r1, :kk] = bi
        vals[r0:r1, :kk] = bv

    starts = range(0, n, p.block_rows)
    if p.workers == 1:
        for r0 in starts:
            do_block(r0)
    else:
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(p.workers) as pool:
            for _ in pool.map(do_block, starts):
                pass
    return ids, vals


def _block_top_k(
    r0: int,
    r1: int,
    m: int,
    kk: int,
    mask: sp.csr_matrix | None,
    scorer: Scorer,
    tile: int,
    buf: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-kk of query rows r0..r1 over all items, tile by tile, merged; -inf entries become -1."""
    b = r1 - r0
    best_i = np.full((b, kk), -1, np.int64)
    best_v = np.full((b, kk), -np.inf, np.float32)
    if mask is not None:
        lo, hi = mask.indptr[r0], mask.indptr[r1]
        ex_rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(mask.indptr[r0 : r1 + 1]))
        ex_cols = mask.indices[lo:hi].astype(np.int64, copy=False)
    for c0 in range(0, m, tile):
        c1 = min(c0 + tile, m)
        kt = min(kk, c1 - c0)
        width = _padded(c1 - c0, kt)
        # Padding columns score -inf, so every level of groups divides evenly.
        scores = buf[: b * width].reshape(b, width)
        scorer(r0, r1, c0, c1, scores[:, : c1 - c0])
        scores[:, c1 - c0 :] = -np.inf
        if mask is not None:
            inside = (ex_cols >= c0) & (ex_cols < c1) if tile < m else slice(None)
            scores.reshape(-1)[ex_rows[inside] * width + ex_cols[inside] - c0] = -np.inf
        levels = _levels(c1 - c0, kt)
        ti = np.empty((b, kt), np.int64)
        tv = np.empty((b, kt), np.float32)
        # Select a few rows at a time: their scores stay in cache from the group maxima to the gathers.
        for s0 in range(0, b, SELECT_ROWS):
            s1 = min(s0 + SELECT_ROWS, b)
            ti[s0:s1], tv[s0:s1] = _exact_top(scores[s0:s1], kt, levels)
        ti += c0
        if c0 == 0 and c1 == m:
            best_i, best_v = ti, tv
        else:
            best_i, best_v = _merge(best_i, best_v, ti, tv, kk)
    best_i[np.isneginf(best_v)] = -1
    return best_i, best_v


def _merge(
    ai: np.ndarray, av: np.ndarray, bi: np.ndarray, bv: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best kk of two exact lists (score descending, index ascending)."""
    ci, cv = np.concatenate([ai, bi], axis=1), np.concatenate([av, bv], axis=1)
    order = np.lexsort((ci, -cv), axis=1)[:, :kk]
    return np.take_along_axis(ci, order, axis=1), np.take_along_axis(cv, order, axis=1)


# --- selection ------------------------------------------------------------------------------------------


def _levels(n: int, kk: int) -> int:
    """How many levels of groups pay off: while a row is much longer than the candidates of k groups."""
    levels = 0
    while n > 2 * GROUP * kk:
        n = -(-n // GROUP)
        levels += 1
    return levels


def _padded(n: int, kk: int) -> int:
    """n rounded up so that every level of groups divides evenly."""
    unit: int = GROUP ** _levels(n, kk)
    return -(-n // unit) * unit


def _exact_top(scores: np.ndarray, kk: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of each row's kk best, sorted (score descending, index ascending); exact.

    `scores` is C-contiguous with a width divisible by GROUP ** levels."""
    if levels:
        maxima = _group_max(scores)
        groups = _select(maxima, kk, levels - 1)
        floor = _gather(maxima, groups).min(axis=1)  # the kk-th largest group maximum
        cand = _expand(scores, groups)
        part = _top_above(cand, kk, floor)
        sel, top = _columns(groups, part, maxima.shape[1]), _gather(cand, part)
        kth = top.min(axis=1)
        # An item tied with the k-th best may sit among unchosen candidates, or in an unchosen group whose
        # maximum equals the k-th score: only possible when that is `floor`, as every group with a larger
        # maximum is chosen.
        tied = _count(cand, kth) > _count(top, kth)
        rows = np.flatnonzero((kth == floor) & ~tied)
        if len(rows):
            chosen = _gather(maxima[rows], groups[rows])
            tied[rows] = _count(maxima[rows], floor[rows]) > _count(chosen, floor[rows])
    else:
        sel = _argtop(scores, kk)
        top = _gather(scores, sel)
        kth = top.min(axis=1)
        tied = _count(scores, kth) > _count(top, kth)
    tied &= kth > -np.inf
    for row in np.flatnonzero(tied):
        sel[row], top[row] = _exact_row(scores[row], kk, kth[row])
    return _sort(sel, top)


def _sort(sel: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by score descending, equal scores by index ascending."""
    order = np.argsort(-top, axis=1)
    sel, top = _gather(sel, order), _gather(top, order)
    ties = np.flatnonzero((top[:, 1:] == top[:, :-1]).any(axis=1))
    if len(ties):
        order = np.lexsort((sel[ties], -top[ties]), axis=1)
        sel[ties] = np.take_along_axis(sel[ties], order, axis=1)
        top[ties] = np.take_along_axis(top[ties], order, axis=1)
    return sel, top


def _exact_row(row: np.ndarray, kk: int, kth: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The kk best of one row with ties at the k-th score resolved by the lower index."""
    above = np.flatnonzero(row > kth)
    at = np.flatnonzero(row == kth)[: kk - len(above)]
    sel = np.concatenate([above, at])
    return sel, row[sel]


def _select(vals: np.ndarray, kk: int, levels: int) -> np.ndarray:
    """kk column indices per row holding every value above the row's kk-th largest (any among ties)."""
    if not levels:
        return _argtop(vals, kk)
    maxima = _group_max(vals)
    groups = _select(maxima, kk, levels - 1)
    part = _top_above(_expand(vals, groups), kk, _gather(maxima, groups).min(axis=1))
    return _columns(groups, part, maxima.shape[1])


def _count(vals: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per row, how many entries equal that row's `value`."""
    counts: np.ndarray = np.count_nonzero(vals == value[:, None], axis=1)
    return counts


def _top_above(cand: np.ndarray, kk: int, floor: np.ndarray) -> np.ndarray:
    """`_argtop(cand, kk)`, looking only at values >= floor (each row has at least kk of them).

    The kk chosen group maxima are all >= floor and few other candidates are, so the partial selection
    runs on about kk values per row instead of GROUP * kk."""
    b, n = cand.shape
    keep = cand >= floor[:, None]
    counts = np.count_nonzero(keep, axis=1)
    width = int(counts.max())
    if 2 * width > n:
        return _argtop(cand, kk)
    flat = np.flatnonzero(keep)
    rows = flat // n
    starts = np.cumsum(counts) - counts
    slots = rows * width + np.arange(len(flat)) - np.repeat(starts, counts)
    where = np.zeros(b * width, np.int64)
    vals = np.full(b * width, -np.inf, np.float32)
    where[slots] = flat - rows * n
    vals[slots] = cand.reshape(-1)[flat]
    return _gather(where.reshape(b, width), _argtop(vals.reshape(b, width), kk))


def _group_max(vals: np.ndarray) -> np.ndarray:
    """Per row, the maximum of each group {j, j + w, ..., j + (GROUP - 1) w} (w = width / GROUP)."""
    b, n = vals.shape
    maxima: np.ndarray = vals.reshape(b, GROUP, n // GROUP).max(axis=1)
    return maxima


def _expand(vals: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The values of the chosen groups' members: (b, GROUP * kk), member s of group p at s * kk + p."""
    b, n = vals.shape
    base = groups + (n * np.arange(b, dtype=np.int64))[:, None]
    offsets = (n // GROUP) * np.arange(GROUP, dtype=np.int64)
    flat = (base[:, None, :] + offsets[None, :, None]).reshape(b, -1)
    out: np.ndarray = np.take(vals.reshape(-1), flat)
    return out


def _columns(groups: np.ndarray, positions: np.ndarray, width: int) -> np.ndarray:
    """The columns of positions in `_expand`'s output (group p's member s is column group + s * width)."""
    kk = groups.shape[1]
    strip, member = np.divmod(positions, kk)
    out: np.ndarray = _gather(groups, member) + width * strip
    return out


def _gather(vals: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """vals[r, cols[r, j]] for every r, j (a flat `take`: much faster than take_along_axis)."""
    b, n = vals.shape
    flat = cols + (n * np.arange(b, dtype=np.int64))[:, None]
    out: np.ndarray = np.take(np.ascontiguousarray(vals).reshape(-1), flat)
    return out


def _argtop(vals: np.ndarray, kk: int) -> np.ndarray:
    """Column indices of the kk largest per row (unordered; any among ties at the boundary)."""
    n = vals.shape[1]
    return np.argpartition(vals, n - kk, axis=1)[:, n - kk :]


# --- input checks ---------------------------------------------------------------------------------------


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _as_exclude(exclude: sp.spmatrix | sp.sparray | None, n: int, m: int) -> sp.csr_matrix | None:
    if exclude is None:
        return None
    mask = sp.csr_matrix(exclude)
    if mask.shape != (n, m):
        raise ValueError(f"exclude has shape {mask.shape}; expected (n_queries, n_items) = ({n}, {m})")
    return mask if mask.nnz else None
