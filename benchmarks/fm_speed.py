"""Local FM training throughput on ML-20M-shaped data, next to implicit's BPR on the same interactions.

The data: `recsys synth` with its ML-20M defaults (138,493 users, 26,744 items, 20,000,263 ratings),
turned into FM rows the way preprocessing does it, but directly in memory (no Spark): every interaction
with its label (rating ≥ 4) plus 4 negatives per positive drawn by popularity^0.75
(training/fm/sampling.py); one-hot user + item, so width 2.

The FM: SageMaker's defaults except num_factors 64 and the batch size; `--samples` rows of shuffled data
are trained after a warm-up batch (numba compiles on first use), timed by wall clock and by process CPU
time; torch and numba get `--threads` threads. implicit's BPR (64 factors) runs one epoch over the
user × item matrix of the same interactions with as many threads.

Prints one JSON object. The machine's load average is recorded: other work on the same cores lowers
every figure.

    python benchmarks/fm_speed.py [--samples 20000000] [--batch 10000] [--threads 2] [--also-threads 1]
                                  [--device cpu|cuda]
                                  [--synth-dir DIR] [--users N --items M --interactions K] [--no-bpr]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pa_csv
from _common import machine


def load_synth(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, float]:
    """(user index, item index, rating) of the synthetic interactions, and how long making them took."""
    from recsys.synth import TRANSACTIONS_FILE, SynthConfig, synthesize

    folder = args.synth_dir or Path(tempfile.mkdtemp(prefix="fm_speed_"))
    started = time.perf_counter()
    try:
        path = folder / TRANSACTIONS_FILE
        if not path.exists():
            config = SynthConfig(users=args.users, items=args.items, interactions=args.interactions, seed=0)
            synthesize(folder, config)
        table = pa_csv.read_csv(
            path, convert_options=pa_csv.ConvertOptions(include_columns=["user_id", "item_id", "rating"])
        )
    finally:
        if args.synth_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    _, users = np.unique(table.column("user_id").to_numpy(), return_inverse=True)
    _, items = np.unique(table.column("item_id").to_numpy(), return_inverse=True)
    ratings = table.column("rating").to_numpy().astype(np.float32)
    return (
        users.astype(np.int64),
        items.astype(np.int64),
        ratings,
        int(users.max()) + 1,
        int(items.max()) + 1,
        time.perf_counter() - started,
    )


def fm_rows(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int
) -> tuple[Any, float]:
    """FM rows as preprocessing makes them: each interaction labelled, plus 4 negatives per positive."""
    import torch

    from training.fm.model import FmRows
    from training.fm.sampling import labels_of, sample_negatives

    started = time.perf_counter()
    labels = labels_of(ratings)
    neg_users, neg_items = sample_negatives(users, items, labels > 0, n_items, per_positive=4, seed=42)
    idx = np.empty((users.size + neg_users.size, 2), np.int32)
    idx[: users.size, 0], idx[users.size :, 0] = users, neg_users
    idx[: users.size, 1], idx[users.size :, 1] = n_users + items, n_users + neg_items
    y = np.concatenate([labels, np.zeros(neg_users.size, np.float32)])
    rows = FmRows(torch.from_numpy(idx), None, torch.from_numpy(y))
    return rows, time.perf_counter() - started


def train_fm(rows: Any, feature_dim: int, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    import torch

    from training.fm import kernels  # noqa: F401  (sets numba's thread pool before numba starts it)
    from training.fm.hyperparameters import FmHyperparameters
    from training.fm.local import resolve_device
    from training.fm.model import FmOptimizer, FmParameters, init_parameters

    torch.set_num_threads(threads)
    if args.device == "cpu":
        import numba

        numba.set_num_threads(threads)
    device = resolve_device(args.device)
    hp = FmHyperparameters(feature_dim=feature_dim, num_factors=64, mini_batch_size=args.batch, epochs=1)
    p = init_parameters(hp, torch.Generator().manual_seed(0))
    params = FmParameters(p.w0.to(device), p.w.to(device), p.V.to(device))
    optimizer = FmOptimizer(params, hp)
    data = rows.to(device)
    n = min(args.samples, len(data))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(data))[: n + args.batch]).to(device)
    optimizer.step(data, order[-args.batch :])  # warm-up: numba compiles (or loads its cache), CUDA starts
    optimizer.take_loss()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    load_before = os.getloadavg()
    cpu_started, started = time.process_time(), time.perf_counter()
    for start in range(0, n, args.batch):
        optimizer.step(data, order[start : min(start + args.batch, n)])
    loss = optimizer.take_loss() / n
    sync()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "device": str(device),
        "kernel": "numba (training/fm/kernels.py)" if optimizer.use_kernel else "torch ops",
        "threads": threads,
        "batch": args.batch,
        "num_factors": 64,
        "samples": n,
        "seconds": round(wall, 3),
        "samples_per_second": round(n / wall),
        "cpu_seconds": round(cpu, 3),
        "samples_per_cpu_second": round(n / cpu),
        "mean_loss": loss,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "goal_samples_per_second": 2_000_000,
        "goal_met": n / wall >= 2_000_000,
    }


def bpr_epoch(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, threads: int
) -> dict[str, Any]:
    """One epoch of implicit's BPR (64 factors) over the same interactions (binary user × item)."""
    import scipy.sparse as sp
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    matrix = sp.csr_matrix((np.ones(users.size, np.float32), (users, items)), shape=(n_users, n_items))
    model = BayesianPersonalizedRanking(factors=64, iterations=1, num_threads=threads, random_state=0)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    wall = time.perf_counter() - started
    return {
        "factors": 64,
        "threads": threads,
        "epoch_seconds": round(wall, 3),
        "triples_per_second": round(matrix.nnz / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--interactions", type=int, default=20_000_263)
    parser.add_argument("--synth-dir", type=Path, help="keep (or reuse) the synthetic files here")
    parser.add_argument(
        "--samples", type=int, default=20_000_000, help="rows to time (after one warm-up batch)"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="mini_batch_size")
    parser.add_argument("--threads", type=int, default=2, help="torch, numba and implicit threads")
    parser.add_argument("--also-threads", type=int, nargs="*", default=[], help="more FM runs with these")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--no-bpr", dest="bpr", action="store_false")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    users, items, ratings, n_users, n_items, synth_seconds = load_synth(args)
    rows, rows_seconds = fm_rows(users, items, ratings, n_users, n_items)
    report: dict[str, Any] = {
        "benchmark": "fm_speed",
        "data": {
            "users": n_users,
            "items": n_items,
            "interactions": int(users.size),
            "fm_rows": len(rows),
            "positives": int(rows.y.sum()),
            "synth_and_load_seconds": round(synth_seconds, 1),
            "rows_build_seconds": round(rows_seconds, 1),
        },
        "fm": train_fm(rows, n_users + n_items, args, args.threads),
    }
    if args.also_threads:
        report["fm_other_threads"] = [train_fm(rows, n_users + n_items, args, t) for t in args.also_threads]
    if args.bpr:
        report["implicit_bpr"] = bpr_epoch(users, items, n_users, n_items, args.threads)
        fm_epoch = len(rows) / report["fm"]["samples_per_second"]
        report["fm_epoch_seconds_estimated"] = round(fm_epoch, 1)
        report["fm_epoch_over_bpr_epoch"] = round(fm_epoch / report["implicit_bpr"]["epoch_seconds"], 2)
    report["machine"] = machine()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
