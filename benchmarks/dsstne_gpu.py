"""DSSTNE engine speed against a plain PyTorch version of the same network, in one process.

Data: `recsys synth` with its ML-20M-shaped defaults (138,493 users, 26,744 items, 20,000,263
interactions), users' items as both input and output (an autoencoder); or, with --data sample, the
bundled ml-latest-small. Network and training: DSSTNE's MovieLens sample config (128 sigmoid hidden
units with sparseness penalty p = 0.5, β = 2; denoising 0.2; ScaledMarginalCrossEntropy 1/0/1/1;
ShuffleIndices false) with DSSTNE's train defaults (SGD, α = 0.025, λ = 1e-4), batch 256, 10 epochs.

Runs, from the same initial weights: the plain version (`training/dsstne/reference.py`: autograd,
dense targets, torch.optim.SGD, a Python loop per step) and the engine in fp32, in tf32 and in bf16
mixed precision (bf16 GEMMs and output buffer, fp32 weights and loss), then the engine at batch 1024.
Reports the wall time of the 10 epochs (first epoch includes CUDA-graph capture), the per-epoch average
training error of each and its largest relative gap to the plain fp32 version's (the goal: within 1 %),
and peak GPU memory. Prints one JSON object. On a CPU (a quick check with --data sample) it runs the
plain version and the engine in fp32 and bf16.

    python benchmarks/dsstne_gpu.py [--device cuda|cpu] [--data synth|sample] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a bare checkout too

from training.dsstne.engine import Engine, LayerSpec, NetworkSpec, TrainSettings, Weights, xavier_weights
from training.dsstne.layout import SparseRows, epoch_layouts
from training.dsstne.losses import SparseLoss
from training.dsstne.reference import ReferenceTrainer

REPO = Path(__file__).resolve().parent.parent


def load_rows(which: str, device: torch.device) -> tuple[SparseRows, dict[str, Any]]:
    """Each user's items as one CSR row, width rounded up to a multiple of 128 as DSSTNE does."""
    from recsys.loaders import load_interactions

    started = time.perf_counter()
    if which == "sample":
        data = load_interactions(REPO / "data" / "sample" / "ml-latest-small")
    else:
        from recsys.synth import SynthConfig, synthesize

        folder = Path(tempfile.mkdtemp(prefix="dsstne_bench_"))
        synthesize(folder, SynthConfig(), progress=False)
        data = load_interactions(folder)
    order = np.lexsort((data.item, data.user))
    counts = np.bincount(data.user, minlength=data.n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    width = -(-data.n_items // 128) * 128
    rows = SparseRows(torch.from_numpy(indptr), torch.from_numpy(data.item[order].astype(np.int64)), width)
    rows = rows.to(device).unique()
    info = {
        "data": which,
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        "width": width,
        "prepare_seconds": round(time.perf_counter() - started, 1),
    }
    return rows, info


def movielens_spec(width: int) -> NetworkSpec:
    return NetworkSpec(
        input_width=width,
        layers=(LayerSpec(128, "sigmoid", sparseness=(0.5, 2.0)), LayerSpec(width, "sigmoid")),
        loss=SparseLoss("smce", one_target=1.0, zero_target=0.0, one_scale=1.0, zero_scale=1.0),
        denoising=0.2,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_plain(
    spec: NetworkSpec, start: Weights, rows: SparseRows, batch: int, epochs: int, device: torch.device
) -> dict[str, Any]:
    trainer = ReferenceTrainer(spec, start, alpha=0.025, l2=1e-4)
    parts = epoch_layouts(rows, rows, torch.arange(rows.n_rows, device=device), batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    errors, times = [], []
    sync(device)
    for _ in range(epochs):
        started = time.perf_counter()
        total = torch.zeros((), device=device)
        for part in parts:
            for i in range(part.n_batches):
                keep = (torch.rand(part.in_valid[i].shape, device=device) >= spec.denoising).float()
                total += trainer.step(part, i, keep)
        errors.append(float(total) / rows.n_rows)
        times.append(time.perf_counter() - started)
    return _summary("plain fp32 (autograd, dense target, torch.optim.SGD)", errors, times, device)


def run_engine(
    spec: NetworkSpec,
    start: Weights,
    rows: SparseRows,
    settings: TrainSettings,
    epochs: int,
    device: torch.device,
) -> dict[str, Any]:
    engine = Engine(spec, start.clone(), settings, device)
    errors, times = [], []
    peak = 0
    sync(device)
    for _ in range(epochs):
        stats = engine.train_epoch(rows, rows)
        errors.append(stats.error)
        times.append(stats.seconds)
        peak = max(peak, stats.gpu_peak_bytes or 0)
    label = f"engine {settings.precision}" + (" + CUDA graphs" if engine._use_graphs else "")
    label += " + fused output kernel" if engine._fused else ""
    result = _summary(label, errors, times, device)
    result["peak_gpu_mb"] = round(peak / 2**20) if device.type == "cuda" else None
    return result


def _summary(label: str, errors: list[float], times: list[float], device: torch.device) -> dict[str, Any]:
    result: dict[str, Any] = {
        "implementation": label,
        "seconds_total": round(sum(times), 3),
        "seconds_first_epoch": round(times[0], 3),
        "seconds_per_later_epoch": round(sum(times[1:]) / max(len(times) - 1, 1), 4),
        "epoch_errors": [round(e, 4) for e in errors],
    }
    if device.type == "cuda":
        result.setdefault("peak_gpu_mb", round(torch.cuda.max_memory_allocated(device) / 2**20))
    return result


def curve_gap(errors: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / abs(b) for a, b in zip(errors, reference, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", choices=["synth", "sample"], default="synth")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-plain", action="store_true", help="engine runs only")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(torch.get_num_threads(), 1))

    rows, info = load_rows(args.data, device)
    spec = movielens_spec(rows.width)
    start = xavier_weights(spec, torch.Generator().manual_seed(12134), device)
    runs: dict[str, Any] = {}
    torch.manual_seed(0)
    if not args.skip_plain:
        runs["plain_fp32_b256"] = run_plain(spec, start, rows, 256, args.epochs, device)
    variants = {"engine_fp32_b256": TrainSettings(batch=256, shuffle=False)}
    if device.type == "cuda":
        variants["engine_tf32_b256"] = TrainSettings(batch=256, shuffle=False, precision="tf32")
        variants["engine_tf32_eager_b256"] = TrainSettings(
            batch=256, shuffle=False, precision="tf32", cuda_graphs=False
        )
        variants["engine_bf16_b256"] = TrainSettings(batch=256, shuffle=False, precision="bf16")
        variants["engine_tf32_b1024"] = TrainSettings(batch=1024, shuffle=False, precision="tf32")
        variants["engine_bf16_b1024"] = TrainSettings(batch=1024, shuffle=False, precision="bf16")
    else:
        variants["engine_bf16_b256"] = TrainSettings(batch=256, shuffle=False, precision="bf16")
        variants["engine_fp32_b1024"] = TrainSettings(batch=1024, shuffle=False)
    for name, settings in variants.items():
        torch.manual_seed(0)
        try:
            runs[name] = run_engine(spec, start, rows, settings, args.epochs, device)
        except Exception as exc:  # record it and go on: one device session must bring back every figure
            runs[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    if "plain_fp32_b256" in runs:
        plain = runs["plain_fp32_b256"]
        for name, run in runs.items():
            if name.endswith("_b256") and name != "plain_fp32_b256" and "error" not in run:
                run["loss_curve_max_relative_gap_vs_plain"] = round(
                    curve_gap(run["epoch_errors"], plain["epoch_errors"]), 5
                )
                run["speedup_vs_plain"] = round(plain["seconds_total"] / run["seconds_total"], 2)

    machine: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    print(
        json.dumps(
            {
                "benchmark": "dsstne_gpu",
                "epochs": args.epochs,
                **info,
                "runs": runs,
                "goal_seconds_b256": 1.0,
                "machine": machine,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
