"""Multi-process training (torch.distributed, gloo on CPU, 2 processes) gives the one-process result:
data parallel (a share of every minibatch per rank) and model parallel (output columns per rank)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.dsstne.engine import Engine, LayerSpec, NetworkSpec, TrainSettings, Weights, xavier_weights
from training.dsstne.layout import SparseRows
from training.dsstne.losses import SparseLoss

WIDTH = 128
SPEC = NetworkSpec(
    WIDTH,
    (LayerSpec(16, "sigmoid", (0.5, 2.0)), LayerSpec(WIDTH)),
    SparseLoss("smce", 1.0, 0.0, 1.0, 1.0),
)


def data(n_rows: int) -> SparseRows:
    g = torch.Generator().manual_seed(7)
    rows = [
        sorted(set(torch.randint(0, 90, (int(torch.randint(1, 12, (), generator=g)),), generator=g).tolist()))
        for _ in range(n_rows)
    ]
    return SparseRows.from_lists(rows, WIDTH)


def train(
    settings: TrainSettings, n_rows: int, group: dist.ProcessGroup | None = None, parallel: str = "data"
) -> tuple[Weights, list[float]]:
    start = xavier_weights(SPEC, torch.Generator().manual_seed(1), "cpu")
    engine = Engine(SPEC, start, settings, "cpu", group=group, parallel=parallel)
    rows = data(n_rows)
    errors = [engine.train_epoch(rows, rows).error for _ in range(3)]
    return engine.full_weights(), errors


SCENARIOS = [  # (parallel, examples, optimizer); data with 49: the last minibatch has one example
    ("data", 50, "sgd"),
    ("data", 49, "sgd"),
    ("data", 50, "adam"),
    ("model", 49, "sgd"),
    ("model", 50, "adam"),
]


def settings_for(optimizer: str) -> TrainSettings:
    return TrainSettings(
        alpha=0.3 if optimizer == "sgd" else 0.01, batch=8, shuffle=True, optimizer=optimizer
    )


def _rank(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        results = []
        for parallel, n_rows, optimizer in SCENARIOS:
            weights, errors = train(settings_for(optimizer), n_rows, dist.group.WORLD, parallel)
            results.append({"w": weights.w, "b": weights.b, "errors": errors})
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_like_one_process(tmp_path: Path) -> None:
    # GIVEN two gloo ranks, each with half of every minibatch WHEN they train 3 epochs (shuffled)
    out = str(tmp_path / "rank")
    mp.start_processes(_rank, args=(2, str(tmp_path / "store"), out), nprocs=2, start_method="spawn")
    per_rank = [torch.load(f"{out}.{rank}") for rank in range(2)]
    # THEN every rank holds the weights and errors of one process training on whole minibatches
    for index, (_, n_rows, optimizer) in enumerate(SCENARIOS):
        expected, expected_errors = train(settings_for(optimizer), n_rows)
        for results in per_rank:
            got = results[index]
            assert got["errors"] == pytest.approx(expected_errors, rel=1e-5)
            for mine, theirs in zip(got["w"] + got["b"], expected.w + expected.b, strict=True):
                torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


def test_batch_must_split_over_the_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 3)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 0)
    weights = xavier_weights(SPEC, torch.Generator().manual_seed(0), "cpu")
    with pytest.raises(ValueError, match="does not split over 3 ranks"):
        Engine(SPEC, weights, TrainSettings(batch=8), "cpu", group=object())  # type: ignore[arg-type]
