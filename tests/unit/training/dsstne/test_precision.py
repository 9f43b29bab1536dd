"""Mixed precision (bf16): the loss curve of fp32 within a stated tolerance, fp32 weights and files."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from training.dsstne import engine as engine_module
from training.dsstne.engine import Engine, LayerSpec, NetworkSpec, TrainSettings, xavier_weights
from training.dsstne.layout import SparseRows
from training.dsstne.losses import SparseLoss, output_delta_

WIDTH = 128
MOVIELENS_SMCE = SparseLoss("smce", one_target=1.0, zero_target=0.0, one_scale=1.0, zero_scale=1.0)
# bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 0.2 %) in the GEMM inputs and the output
# buffer. On these networks the per-epoch error moves by 0.7 % at most (measured); 3 % is the bound.
CURVE_TOLERANCE = 0.03
EPOCHS = 6


def mixed_rows(n_rows: int, seed: int) -> SparseRows:
    """Two tastes (items 0..9 and 10..19) plus a few random items over 60, so the error keeps moving."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for r in range(n_rows):
        base = 0 if r % 2 == 0 else 10
        taste = (base + torch.randint(0, 10, (5,), generator=g)).tolist()
        rows.append(sorted(set(taste + torch.randint(20, 60, (3,), generator=g).tolist())))
    return SparseRows.from_lists(rows, WIDTH)


def curve(spec: NetworkSpec, settings: TrainSettings, data: SparseRows) -> tuple[list[float], Engine]:
    start = xavier_weights(spec, torch.Generator().manual_seed(0), "cpu")
    engine = Engine(spec, start, settings, "cpu")
    torch.manual_seed(0)  # the same denoising draws for both precisions
    return [engine.train_epoch(data, data).error for _ in range(EPOCHS)], engine


@pytest.mark.parametrize(
    ("layers", "loss", "denoising", "optimizer", "alpha"),
    [
        # DSSTNE's MovieLens sample: sparseness penalty and denoising, the fused SGD step
        ((LayerSpec(16, "sigmoid", (0.5, 2.0)), LayerSpec(WIDTH)), MOVIELENS_SMCE, 0.2, "sgd", 0.5),
        # two hidden layers (a bf16 GEMM between hidden layers), cross-entropy
        (
            (LayerSpec(12, "tanh"), LayerSpec(8, "relu"), LayerSpec(WIDTH)),
            SparseLoss("crossentropy"),
            0.0,
            "sgd",
            0.1,  # a stable rate: at 0.3 fp32 itself oscillates and any rounding moves the curve
        ),
        # Adam: the explicit-gradient path
        ((LayerSpec(16, "sigmoid", (0.5, 0.5)), LayerSpec(WIDTH)), MOVIELENS_SMCE, 0.2, "adam", 0.01),
    ],
    ids=["movielens-sgd", "two-hidden-crossentropy", "adam"],
)
def test_bf16_loss_curve_stays_within_tolerance_of_fp32(
    layers: tuple[LayerSpec, ...], loss: SparseLoss, denoising: float, optimizer: str, alpha: float
) -> None:
    # GIVEN one network, start and data WHEN trained in fp32 and in bf16
    spec = NetworkSpec(WIDTH, layers, loss, denoising=denoising)
    data = mixed_rows(64, seed=3)
    common: dict[str, Any] = {"alpha": alpha, "batch": 16, "optimizer": optimizer}
    fp32, fp32_engine = curve(spec, TrainSettings(**common), data)
    bf16, bf16_engine = curve(spec, TrainSettings(precision="bf16", **common), data)
    # THEN bf16 learns as fp32 does: every epoch's error within the tolerance, and it went down
    gaps = [abs(b - a) / a for a, b in zip(fp32, bf16, strict=True)]
    assert max(gaps) < CURVE_TOLERANCE, (fp32, bf16)
    assert bf16[-1] < 0.7 * bf16[0]
    # AND it really ran in bf16 (not the fp32 arithmetic again)
    assert any(
        not torch.equal(a, b) for a, b in zip(fp32_engine.weights.w, bf16_engine.weights.w, strict=True)
    )


def test_bf16_keeps_weights_and_optimizer_state_fp32_and_the_output_buffer_bf16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[torch.dtype] = []
    real = output_delta_

    def spy(z: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(z.dtype)
        return real(z, *args, **kwargs)

    monkeypatch.setattr(engine_module, "output_delta_", spy)
    spec = NetworkSpec(WIDTH, (LayerSpec(8, "sigmoid", (0.5, 0.5)), LayerSpec(WIDTH)), MOVIELENS_SMCE)
    data = mixed_rows(32, seed=1)
    for optimizer in ("sgd", "adam"):
        settings = TrainSettings(alpha=0.01, batch=16, optimizer=optimizer, precision="bf16")
        engine = Engine(spec, xavier_weights(spec, torch.Generator().manual_seed(0), "cpu"), settings, "cpu")
        stats = engine.train_epoch(data, data)
        assert isinstance(stats.error, float)
        assert {t.dtype for t in engine.weights.w + engine.weights.b} == {torch.float32}
        assert engine._error.dtype == torch.float32  # the loss sum
        if engine._adam is not None:
            assert {t.dtype for t in engine._adam.m + engine._adam.v} == {torch.float32}
        scores = engine.scores(data, torch.arange(4))
        assert scores.dtype == torch.float32
    assert set(seen) == {torch.bfloat16}


@pytest.mark.parametrize("precision", ["fp16", "BF16", "auto", ""])
def test_an_unknown_precision_is_a_clear_error(precision: str) -> None:
    with pytest.raises(ValueError, match=r"precision must be 'fp32', 'tf32' or 'bf16', got"):
        TrainSettings(precision=precision)


def test_default_precision_is_fp32() -> None:
    assert TrainSettings().precision == "fp32"
