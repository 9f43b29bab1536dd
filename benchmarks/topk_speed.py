"""Exact top-k for every user at MovieLens 20M shape, next to the bare matrix multiply of the same size.

138,493 users × 26,744 items, 64 factors + 1 (the FM layout: user [v_u, 1], item [v_i, w_i]), k = 100,
random float32 factors, and an exclusion matrix of about 100 seen items per user drawn with Zipf-like
popularity (duplicates collapse, so slightly fewer). Each variant runs in a fresh interpreter (its own
peak RSS, `ru_maxrss`, which includes the ~200 MB of inputs; `rss_after_setup_mb` is the level before
the timed part), in rounds, so that load from other work on the machine hits every variant alike; the
ratio uses the best time of each.

- `matmul_blocked_threads`: the scores of every user in the blocks `top_k` uses (same rows, same memory
  bound), on Python threads with one BLAS thread each — exactly top_k's multiply, nothing selected.
- `matmul_blocked_blas`: the same blocks on one Python thread, BLAS using every core.
- `matmul_one_shot` (only with --one-shot: 14.8 GB of scores): one `Q @ I.T`.
- `top_k_threads`: `recsys.topk.top_k(threads=None)` (Python threads, one BLAS thread each).
- `top_k_one_thread_blas`: `top_k(threads=1)`: one Python thread, BLAS using every core.
- `similar_items`: cosine top-k of every item (26,744 × 26,744).

Goal (issue "Factorization machines", Speed): top-k ≤ 2× the multiply.

    python benchmarks/topk_speed.py [--users 138493] [--rounds 3] [--one-shot]
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from _common import OUT, machine, run_measured

SETUP = """
import numpy as np, scipy.sparse as sp
from recsys import topk
users, items, factors, k, seen = {users}, {items}, {factors}, {k}, {seen}
rng = np.random.default_rng(42)
Q = np.hstack([rng.standard_normal((users, factors), dtype=np.float32) * 0.3,
               np.ones((users, 1), np.float32)])
I = np.hstack([rng.standard_normal((items, factors), dtype=np.float32) * 0.3,
               rng.standard_normal((items, 1), dtype=np.float32)])
popularity = 1.0 / (np.arange(items) + 10.0) ** 0.8
popularity /= popularity.sum()
draws = rng.choice(items, size=users * seen, p=popularity).astype(np.int32)
X = sp.csr_matrix((np.ones(users * seen, np.int8), draws, np.arange(0, users * seen + 1, seen)),
                  shape=(users, items))
X.sum_duplicates()
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
result = {{"seen_per_user": round(X.nnz / users, 1), "rss_after_setup_mb": rss_mb()}}
"""

VARIANTS = {
    "matmul_blocked_threads": """
from concurrent.futures import ThreadPoolExecutor
from threadpoolctl import threadpool_limits
p = topk.plan(users, items, k, None, topk.DEFAULT_MEMORY_BYTES, X.nnz / users)
import threading
local = threading.local()
def block(r0):
    buf = getattr(local, "buf", None)
    if buf is None:
        buf = local.buf = np.empty((p.block_rows, items), np.float32)
    r1 = min(r0 + p.block_rows, users)
    np.matmul(Q[r0:r1], I.T, out=buf[: r1 - r0])
t, c = time.perf_counter(), time.process_time()
with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(p.workers) as pool:
    list(pool.map(block, range(0, users, p.block_rows)))
result.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c)
result.update(block_rows=p.block_rows, workers=p.workers)
""",
    "matmul_blocked_blas": """
p = topk.plan(users, items, k, 1, topk.DEFAULT_MEMORY_BYTES, X.nnz / users)
buf = np.empty((p.block_rows, items), np.float32)
t, c = time.perf_counter(), time.process_time()
for r0 in range(0, users, p.block_rows):
    r1 = min(r0 + p.block_rows, users)
    np.matmul(Q[r0:r1], I.T, out=buf[: r1 - r0])
result.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c, block_rows=p.block_rows)
""",
    "matmul_one_shot": """
t, c = time.perf_counter(), time.process_time()
S = Q @ I.T
result.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c)
""",
    "top_k_threads": """
t, c = time.perf_counter(), time.process_time()
ids, vals = topk.top_k(Q, I, k, exclude=X)
result.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c)
p = topk.plan(users, items, k, None, topk.DEFAULT_MEMORY_BYTES, X.nnz / users)
result.update(block_rows=p.block_rows, workers=p.workers)
# Spot check against a full sort of a few rows (float32 scores of the same product).
rows = rng.choice(users, 20, replace=False)
ok = True
for r in rows:
    s = Q[r] @ I.T
    s[X[r].indices] = -np.inf
    want = np.lexsort((np.arange(items), -s))[:k]
    ok &= bool(np.allclose(vals[r], s[want], rtol=1e-5, atol=1e-5))
    ok &= not set(ids[r].tolist()) & set(X[r].indices.tolist())
result["spot_check_ok"] = ok
""",
    "top_k_one_thread_blas": """
t, c = time.perf_counter(), time.process_time()
ids, vals = topk.top_k(Q, I, k, exclude=X, threads=1)
result.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c)
""",
    "similar_items": """
t, c = time.perf_counter(), time.process_time()
ids, sims = topk.similar_items(I[:, :-1], k)
result.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - c, items=items)
""",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seen", type=int, default=100, help="seen items drawn per user")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one-shot", action="store_true", help="also the full Q @ I.T (users × items × 4 B)")
    parser.add_argument("--only", help="comma-separated variants")
    args = parser.parse_args()
    setup = SETUP.format(users=args.users, items=args.items, factors=args.factors, k=args.k, seen=args.seen)
    names = [n for n in VARIANTS if n != "matmul_one_shot" or args.one_shot]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            runs[name].append(run_measured(setup + VARIANTS[name], one_core=False))
    variants: dict[str, Any] = {}
    for name, results in runs.items():
        times = [r["seconds"] for r in results]
        cpu = [r["cpu_seconds"] for r in results]
        skip = ("seconds", "cpu_seconds", "peak_rss_mb", "rss_after_setup_mb")
        summary = {k: v for k, v in results[0].items() if k not in skip}
        variants[name] = {
            **summary,
            "seconds_best": round(min(times), 3),
            "seconds_median": round(statistics.median(times), 3),
            "seconds_all": [round(t, 3) for t in times],
            "cpu_seconds_best": round(min(cpu), 3),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "rss_after_setup_mb": max(r["rss_after_setup_mb"] for r in results),
        }
        if "spot_check_ok" in summary:
            variants[name]["spot_check_ok"] = all(r["spot_check_ok"] for r in results)
    multiplies = [v["seconds_best"] for n, v in variants.items() if n.startswith("matmul_blocked")]
    ratios: dict[str, float] = {}
    if multiplies:
        best_multiply = min(multiplies)
        for name in ("top_k_threads", "top_k_one_thread_blas"):
            if name in variants:
                ratios[f"{name}/best_blocked_matmul"] = round(
                    variants[name]["seconds_best"] / best_multiply, 2
                )
        if "top_k_threads" in variants and "matmul_blocked_threads" in variants:
            top, mm = variants["top_k_threads"], variants["matmul_blocked_threads"]
            ratios["top_k_threads/matmul_blocked_threads"] = round(
                top["seconds_best"] / mm["seconds_best"], 2
            )
            # CPU time is less disturbed by other work on a shared machine than wall time.
            ratios["cpu_time:top_k_threads/matmul_blocked_threads"] = round(
                top["cpu_seconds_best"] / mm["cpu_seconds_best"], 2
            )
    report = {
        "benchmark": "topk_speed",
        "shape": {"users": args.users, "items": args.items, "dim": args.factors + 1, "k": args.k},
        "variants": variants,
        "ratios": ratios,
        "goal": {"top_k/matmul": 2.0},
        "machine": machine(),
    }
    text = json.dumps(report, indent=2)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "topk_speed.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
