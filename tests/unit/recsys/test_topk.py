"""Exact top-k and similar items against a brute-force reference (a full sort of every row).

Integer-valued vectors make every float32 product exact, so the reference ranking is unambiguous and
ties are frequent: they exercise the "lower item index first" rule through every selection path.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import topk
from recsys.topk import plan, similar_items, top_k


def reference(
    queries: np.ndarray, items: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ items.astype(np.float64).T
    if exclude is not None:
        scores[exclude.toarray() != 0] = -np.inf
    n, m = scores.shape
    ids = np.full((n, k), -1, np.int64)
    vals = np.full((n, k), -np.inf, np.float32)
    for u in range(n):
        order = np.lexsort((np.arange(m), -scores[u]))[:k]
        order = order[np.isfinite(scores[u, order])]
        ids[u, : len(order)] = order
        vals[u, : len(order)] = scores[u, order]
    return ids, vals


def int_data(
    rng: np.random.Generator, n: int, m: int, d: int, low: int = -3, high: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    q = rng.integers(low, high, size=(n, d)).astype(np.float32)
    it = rng.integers(low, high, size=(m, d)).astype(np.float32)
    return q, it


def random_exclude(rng: np.random.Generator, n: int, m: int, density: float) -> sp.csr_matrix:
    return sp.csr_matrix((rng.random((n, m)) < density).astype(np.int8))


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].dtype == np.int64
    assert got[1].dtype == np.float32


@pytest.mark.parametrize(
    ("n", "m", "d", "k", "density"),
    [
        (7, 5, 3, 3, 0.0),  # tiny, direct argpartition
        (20, 300, 4, 5, 0.1),  # one level of groups
        (30, 2500, 3, 4, 0.05),  # two levels of groups
        (25, 2500, 2, 20, 0.3),  # few distinct scores: ties everywhere
        (10, 400, 5, 1, 0.0),
    ],
)
def test_matches_reference(n: int, m: int, d: int, k: int, density: float) -> None:
    rng = np.random.default_rng(n * 1000 + m)
    q, it = int_data(rng, n, m, d)
    ex = random_exclude(rng, n, m, density) if density else None
    assert_same(top_k(q, it, k, exclude=ex, threads=1), reference(q, it, k, ex))


def test_ties_go_to_the_lower_item_index() -> None:
    items = np.ones((1000, 2), np.float32)  # every item scores the same
    items[[700, 3, 999], 0] = 2.0  # three better ones
    ids, vals = top_k(np.ones((2, 2), np.float32), items, 6, threads=1)
    np.testing.assert_array_equal(ids, [[3, 700, 999, 0, 1, 2]] * 2)
    np.testing.assert_array_equal(vals, [[3, 3, 3, 2, 2, 2]] * 2)


def test_tied_group_maxima_outside_the_chosen_groups() -> None:
    # Many groups share the same maximum: the chosen groups cannot hold all tied items, so the
    # k-th score's ties must be resolved on the full row.
    rng = np.random.default_rng(3)
    q = np.array([[1.0, 0.0]], np.float32)
    items = np.column_stack([rng.integers(0, 2, 3000), np.zeros(3000)]).astype(np.float32)
    assert_same(top_k(q, items, 10, threads=1), reference(q, items, 10))


def test_excluded_items_never_returned_and_padding() -> None:
    rng = np.random.default_rng(5)
    q, it = int_data(rng, 6, 40, 3)
    ex = random_exclude(rng, 6, 40, 0.9)
    ids, vals = top_k(q, it, 30, exclude=ex, threads=1)
    dense = ex.toarray()
    for u in range(6):
        got = ids[u][ids[u] >= 0]
        assert not dense[u, got].any()
        allowed = int((dense[u] == 0).sum())
        assert len(got) == min(30, allowed)  # every allowed item, then -1 padding
        assert np.isneginf(vals[u, len(got) :]).all()
    assert_same((ids, vals), reference(q, it, 30, ex))


def test_k_larger_than_catalog_and_k_zero() -> None:
    rng = np.random.default_rng(6)
    q, it = int_data(rng, 4, 6, 3)
    ids, vals = top_k(q, it, 10, threads=1)
    assert ids.shape == (4, 10)
    assert (ids[:, 6:] == -1).all()
    assert np.isneginf(vals[:, 6:]).all()
    assert_same((ids, vals), reference(q, it, 10))
    ids0, vals0 = top_k(q, it, 0)
    assert ids0.shape == (4, 0)
    assert vals0.shape == (4, 0)


def test_empty_exclusions_and_no_queries() -> None:
    rng = np.random.default_rng(7)
    q, it = int_data(rng, 5, 50, 3)
    empty = sp.csr_matrix((5, 50), dtype=np.int8)
    assert_same(top_k(q, it, 7, exclude=empty), reference(q, it, 7))
    ids, vals = top_k(np.zeros((0, 3), np.float32), it, 7)
    assert ids.shape == (0, 7)
    assert vals.shape == (0, 7)


def test_fully_excluded_rows() -> None:
    rng = np.random.default_rng(8)
    q, it = int_data(rng, 3, 500, 3)
    ex = sp.csr_matrix(np.ones((3, 500), np.int8))
    ids, vals = top_k(q, it, 4, exclude=ex)
    assert (ids == -1).all()
    assert np.isneginf(vals).all()


@pytest.mark.parametrize("memory_bytes", [1, 2_000, 8_000])
def test_tiny_memory_forces_item_tiles(memory_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topk, "MIN_TILE", 1)  # tiles of a single item too
    rng = np.random.default_rng(9)
    q, it = int_data(rng, 9, 700, 3)
    ex = random_exclude(rng, 9, 700, 0.2)
    p = plan(9, 700, 5, 1, memory_bytes, ex.nnz / 9)
    assert p.tile < 700  # tiling really happens
    got = top_k(q, it, 5, exclude=ex, threads=1, memory_bytes=memory_bytes)
    assert_same(got, reference(q, it, 5, ex))


def test_plan_bounds_block_rows_by_memory() -> None:
    p = plan(100_000, 26_744, 100, 2, 64 * topk.MiB)
    assert p.tile == 26_744
    assert p.workers == 2
    assert 1 <= p.block_rows <= topk.MAX_BLOCK_ROWS
    assert p.block_rows * topk._row_bytes(26_744, 100) * 2 <= 64 * topk.MiB
    small = plan(100_000, 26_744, 100, 2, 4 * topk.MiB)
    assert small.block_rows < p.block_rows
    huge = plan(10, 50_000_000, 100, 1, 64 * topk.MiB)  # one row of scores alone is 200 MB
    assert huge.block_rows == 1
    assert topk.MIN_TILE <= huge.tile < 50_000_000
    assert huge.tile * 4 <= 64 * topk.MiB
    tiny = plan(10, 5_000, 10, 1, 1)
    assert tiny.tile == topk.MIN_TILE


def test_threads_give_identical_results() -> None:
    rng = np.random.default_rng(10)
    q = rng.standard_normal((300, 16)).astype(np.float32)
    it = rng.standard_normal((2000, 16)).astype(np.float32)
    ex = random_exclude(rng, 300, 2000, 0.02)
    one = top_k(q, it, 10, exclude=ex, threads=1, memory_bytes=2 * topk.MiB)
    two = top_k(q, it, 10, exclude=ex, threads=2, memory_bytes=2 * topk.MiB)
    assert plan(300, 2000, 10, 2, 2 * topk.MiB).workers == 2
    assert_same(one, two)


def test_float_data_close_to_reference() -> None:
    rng = np.random.default_rng(11)
    q = rng.standard_normal((50, 33)).astype(np.float32)
    it = rng.standard_normal((3000, 33)).astype(np.float32)
    ids, vals = top_k(q, it, 25)
    full = q @ it.T
    for u in range(50):
        want = np.sort(full[u])[::-1][:25]
        np.testing.assert_allclose(vals[u], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(full[u, ids[u]], vals[u], rtol=1e-5, atol=1e-5)
        assert len(set(ids[u].tolist())) == 25


def test_bad_inputs() -> None:
    q = np.ones((2, 3), np.float32)
    it = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="columns"):
        top_k(q, np.ones((4, 2), np.float32), 1)
    with pytest.raises(ValueError, match="2-D"):
        top_k(np.ones(3, np.float32), it, 1)
    with pytest.raises(ValueError, match="exclude has shape"):
        top_k(q, it, 1, exclude=sp.csr_matrix((2, 5)))
    with pytest.raises(ValueError, match="k must be"):
        top_k(q, it, -1)
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.full((2, 3), np.nan, np.float32), it, 1)
    with pytest.raises(ValueError, match="threads"):
        top_k(q, it, 1, threads=0)
    with pytest.raises(ValueError, match="memory_bytes"):
        top_k(q, it, 1, memory_bytes=0)


# --- similar items --------------------------------------------------------------------------------------


def cosine_reference(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    v = vectors.astype(np.float64)
    norms = np.linalg.norm(v, axis=1)
    unit = np.divide(v, norms[:, None], out=np.zeros_like(v), where=norms[:, None] > 0)
    return reference(unit, unit, k, sp.csr_matrix(np.eye(len(v), dtype=np.int8)))


def test_similar_items_cosine_and_self_excluded() -> None:
    rng = np.random.default_rng(12)
    vectors = rng.standard_normal((400, 8)).astype(np.float32)
    ids, sims = similar_items(vectors, 10, threads=1)
    ref_ids, ref_sims = cosine_reference(vectors, 10)
    assert (ids != np.arange(400)[:, None]).all()
    np.testing.assert_allclose(sims, ref_sims, rtol=1e-5, atol=1e-6)
    # Same lists except where two neighbours are closer than float32 rounding.
    agree = (ids == ref_ids).mean()
    assert agree > 0.99


def test_similar_items_zero_vectors_and_duplicates() -> None:
    vectors = np.array([[1, 0], [0, 0], [2, 0], [0, 3], [1, 0], [0, 0]], np.float32)
    ids, sims = similar_items(vectors, 5, threads=1)
    assert not np.isnan(sims).any()
    np.testing.assert_array_equal(ids[0], [2, 4, 1, 3, 5])  # cosine 1, 1, then 0s by index
    np.testing.assert_array_equal(sims[0], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(ids[1], [0, 2, 3, 4, 5])  # a zero vector: all 0, by index
    np.testing.assert_array_equal(sims[1], [0, 0, 0, 0, 0])


def test_similar_items_subset_and_padding() -> None:
    vectors = np.eye(3, dtype=np.float32)
    ids, sims = similar_items(vectors, 4, items=np.array([2, 0]))
    np.testing.assert_array_equal(ids, [[0, 1, -1, -1], [1, 2, -1, -1]])
    assert np.isneginf(sims[:, 2:]).all()
    with pytest.raises(ValueError, match="indices"):
        similar_items(vectors, 2, items=np.array([3]))


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_ties_and_exclusions(seed: int) -> None:
    # Small value ranges (many ties), dense exclusions (rows short of candidates) and catalogs long enough
    # for one or two levels of groups, against the full sort.
    rng = np.random.default_rng(100 + seed)
    n, m, d = int(rng.integers(1, 40)), int(rng.integers(50, 4000)), int(rng.integers(1, 4))
    k = int(rng.integers(1, 30))
    q, it = int_data(rng, n, m, d, low=-1, high=int(rng.integers(1, 4)))
    ex = random_exclude(rng, n, m, float(rng.choice([0.0, 0.5, 0.99])))
    memory = int(rng.choice([topk.DEFAULT_MEMORY_BYTES, 20_000]))  # 20 kB: tiles of MIN_TILE items
    got = top_k(q, it, k, exclude=ex, threads=int(rng.integers(1, 3)), memory_bytes=memory)
    assert_same(got, reference(q, it, k, ex))
