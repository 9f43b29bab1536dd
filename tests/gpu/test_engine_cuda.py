"""The engine on CUDA: the fused kernel and whole-epoch CUDA graphs change nothing but speed."""

from __future__ import annotations

import pytest
import torch

from training.dsstne.engine import Engine, LayerSpec, NetworkSpec, TrainSettings, xavier_weights
from training.dsstne.layout import SparseRows
from training.dsstne.losses import SparseLoss, output_delta_

WIDTH = 256
CUDA = torch.device("cuda")


def rows(n_rows: int, seed: int) -> SparseRows:
    g = torch.Generator().manual_seed(seed)
    lists = [
        sorted(
            set(torch.randint(0, 200, (int(torch.randint(1, 30, (), generator=g)),), generator=g).tolist())
        )
        for _ in range(n_rows)
    ]
    return SparseRows.from_lists(lists, WIDTH)


@pytest.mark.parametrize(
    "loss", [SparseLoss("smce", 1.0, 0.0, 1.0, 1.0), SparseLoss("smce"), SparseLoss("crossentropy")]
)
def test_fused_output_kernel_matches_torch(loss: SparseLoss) -> None:
    torch.manual_seed(0)
    batch = 64
    z = torch.randn(batch + 1, WIDTH, device=CUDA) * 4
    positions = torch.randint(0, batch * WIDTH, (500,), device=CUDA).unique()
    valid = torch.ones(len(positions), device=CUDA)
    results = []
    for fused in (False, True):
        error = torch.zeros((), device=CUDA)
        delta = output_delta_(z.clone(), positions, valid, loss, error, fused=fused)
        results.append((delta.clone(), error))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-2)


def train(settings: TrainSettings, device: torch.device, epochs: int = 3) -> tuple[Engine, list[float]]:
    spec = NetworkSpec(
        WIDTH,
        (LayerSpec(32, "sigmoid", (0.5, 2.0)), LayerSpec(WIDTH)),
        SparseLoss("smce", 1.0, 0.0, 1.0, 1.0),
    )
    data = rows(300, seed=1).to(device)
    engine = Engine(spec, xavier_weights(spec, torch.Generator().manual_seed(2), device), settings, device)
    return engine, [engine.train_epoch(data, data).error for _ in range(epochs)]


def test_cuda_graphs_and_fusion_give_the_cpu_result() -> None:
    # GIVEN no denoising (so no random numbers), the same weights and batches (the last one short)
    settings = TrainSettings(alpha=0.5, batch=64, shuffle=False)
    cpu, cpu_errors = train(settings, torch.device("cpu"))
    gpu, gpu_errors = train(settings, CUDA)
    assert gpu._use_graphs
    assert gpu._fused
    # THEN the same errors and weights, up to the order of floating-point atomics
    assert gpu_errors == pytest.approx(cpu_errors, rel=1e-4)
    for a, b in zip(gpu.weights.w + gpu.weights.b, cpu.weights.w + cpu.weights.b, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-5)


def test_graph_replay_follows_new_layouts_when_shuffling() -> None:
    settings = TrainSettings(alpha=0.5, batch=64, shuffle=True)
    eager, eager_errors = train(TrainSettings(alpha=0.5, batch=64, shuffle=True, cuda_graphs=False), CUDA)
    graphed, graphed_errors = train(settings, CUDA)
    assert graphed._use_graphs
    assert not eager._use_graphs
    assert graphed_errors == pytest.approx(eager_errors, rel=1e-4)


def test_bf16_with_graphs_and_fusion_follows_the_fp32_curve() -> None:
    # GIVEN the same network, weights and batches in fp32 and in bf16 mixed precision, on CUDA
    _, fp32_errors = train(TrainSettings(alpha=0.5, batch=64, shuffle=False), CUDA)
    bf16, bf16_errors = train(TrainSettings(alpha=0.5, batch=64, shuffle=False, precision="bf16"), CUDA)
    assert bf16._use_graphs
    assert bf16._fused
    # THEN the loss curve within the engine's stated bound (tests/unit/.../test_precision.py), fp32 weights
    assert bf16_errors == pytest.approx(fp32_errors, rel=0.03)
    assert {t.dtype for t in bf16.weights.w + bf16.weights.b} == {torch.float32}
