"""The FM step: hand-written gradients against autograd, the numba kernel against the torch ops, lazy Adam
as MXNet defines it, and every hyperparameter doing what its name says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.fm.hyperparameters import FmHyperparameters
from training.fm.model import (
    BETA1,
    BETA2,
    FmOptimizer,
    FmParameters,
    FmRows,
    init_parameters,
    loss_terms,
    scores,
)

D, K, WIDTH = 20, 4, 3


def rows(n: int = 64, seed: int = 0, *, values: bool = False, pad: bool = True) -> FmRows:
    """Random rows; some slots padded; optional non-unit values."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, D, (n, WIDTH))
    if pad:
        idx[rng.random((n, WIDTH)) < 0.2] = D
    x = torch.from_numpy(rng.normal(size=(n, WIDTH)).astype(np.float32)) if values else None
    y = torch.from_numpy(rng.integers(0, 2, n).astype(np.float32))
    return FmRows(torch.from_numpy(idx.astype(np.int32)), x, y)


def hyper(**changes: object) -> FmHyperparameters:
    base: dict[str, object] = {
        "feature_dim": D,
        "num_factors": K,
        "factors_init_sigma": 0.3,
        "linear_init_sigma": 0.3,
    }
    return FmHyperparameters(**{**base, **changes})  # type: ignore[arg-type]


def params(hp: FmHyperparameters, seed: int = 1) -> FmParameters:
    return init_parameters(hp, torch.Generator().manual_seed(seed))


def brute_force(p: FmParameters, row_idx: np.ndarray, row_x: np.ndarray) -> float:
    """ŷ = w0 + Σ wᵢxᵢ + Σᵢ<ⱼ ⟨vᵢ, vⱼ⟩xᵢxⱼ over the row's entries, pairs spelled out."""
    entries = [(int(i), float(v)) for i, v in zip(row_idx, row_x, strict=True) if i != D]
    total = float(p.w0[0]) + sum(float(p.w[i]) * v for i, v in entries)
    for a in range(len(entries)):
        for b in range(a + 1, len(entries)):
            (i, vi), (j, vj) = entries[a], entries[b]
            total += float(p.V[i] @ p.V[j]) * vi * vj
    return total


@pytest.mark.parametrize("values", [False, True])
def test_scores_equal_the_pairwise_sum(values: bool) -> None:
    batch = rows(16, values=values)
    p = params(hyper())
    got = scores(p, batch.idx.long(), batch.x).numpy()
    x = batch.x.numpy() if batch.x is not None else np.ones(batch.idx.shape, np.float32)
    expected = [brute_force(p, batch.idx[i].numpy(), x[i]) for i in range(16)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def autograd_gradients(hp: FmHyperparameters, p: FmParameters, batch: FmRows) -> dict[str, torch.Tensor]:
    """Gradients of the batch's mean loss by autograd, through the plain `scores` function."""
    leaves = FmParameters(
        p.w0.clone().requires_grad_(), p.w.clone().requires_grad_(), p.V.clone().requires_grad_()
    )
    loss, _ = loss_terms(scores(leaves, batch.idx.long(), batch.x), batch.y, hp.predictor_type)
    loss.mean().backward()
    return {"w0": leaves.w0.grad, "w": leaves.w.grad, "V": leaves.V.grad}  # type: ignore[dict-item]


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("predictor_type", ["binary_classifier", "regressor"])
@pytest.mark.parametrize("values", [False, True])
def test_one_step_is_adam_on_the_autograd_gradient(kernel: bool, predictor_type: str, values: bool) -> None:
    """Adam's first step moves a weight by u = lr·√(1−β2)·g / (√(1−β2)·|g| + ε) (m = (1−β1)g,
    v = (1−β2)g², bias correction √(1−β2)/(1−β1)); inverted, the step reveals the gradient g it used."""
    eps, lr = 1e-2, 1.0
    hp = hyper(
        predictor_type=predictor_type,
        eps=eps,
        bias_lr=lr,
        linear_lr=lr,
        factors_lr=lr,
        bias_wd=0.0,
        linear_wd=0.0,
        factors_wd=0.0,
    )
    batch = rows(48, values=values)
    before = params(hp)
    expected = autograd_gradients(hp, before, batch)
    after = params(hp)
    FmOptimizer(after, hp, use_kernel=kernel).step(batch, torch.arange(48))
    root = math.sqrt(1 - BETA2)
    assert (1 - BETA1) * math.sqrt(1 - BETA2) / (1 - BETA1) == pytest.approx(root)
    for name in ("w0", "w", "V"):
        step = (getattr(before, name) - getattr(after, name)).double()
        used = step * eps / (lr * root - root * step.abs())
        rows_compared = slice(None) if name == "w0" else slice(0, D)  # the padding row D never trains
        np.testing.assert_allclose(
            used[rows_compared].numpy(),
            expected[name][rows_compared].numpy(),
            rtol=1e-3,
            atol=1e-6,
            err_msg=name,
        )
        assert name == "w0" or not step[D:].any()
    assert float(expected["V"].abs().max()) > 1e-3  # the check is not vacuous


@pytest.mark.parametrize("values", [False, True])
@pytest.mark.parametrize("predictor_type", ["binary_classifier", "regressor"])
def test_the_kernel_and_the_torch_ops_train_alike(values: bool, predictor_type: str) -> None:
    hp = hyper(predictor_type=predictor_type, clip_gradient=0.05, factors_lr=0.05, linear_lr=0.05)
    batch = rows(300, seed=3, values=values)
    trained = []
    for kernel in (True, False):
        p = params(hp)
        optimizer = FmOptimizer(p, hp, use_kernel=kernel)
        order = np.random.default_rng(0).permutation(300)
        for start in range(0, 300, 32):
            optimizer.step(batch, torch.from_numpy(order[start : start + 32]))
        trained.append((p, optimizer.take_loss()))
    (a, loss_a), (b, loss_b) = trained
    for name in ("w0", "w", "V"):
        # float32 sums in another order; Adam magnifies differences of gradients close to 0
        np.testing.assert_allclose(getattr(a, name).numpy(), getattr(b, name).numpy(), rtol=1e-3, atol=2e-5)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)


@pytest.mark.parametrize("kernel", [True, False])
def test_lazy_updates_touch_only_the_batch_rows(kernel: bool) -> None:
    hp = hyper(linear_wd=0.5, factors_wd=0.5)
    p = params(hp)
    untouched = [3, 7, 11]
    idx = torch.tensor([[0, 1, D], [1, 2, 4]], dtype=torch.int32)
    batch = FmRows(idx, None, torch.tensor([1.0, 0.0]))
    w_before, v_before = p.w.clone(), p.V.clone()
    optimizer = FmOptimizer(p, hp, use_kernel=kernel)
    optimizer.step(batch, torch.arange(2))
    assert torch.equal(p.w[untouched], w_before[untouched])  # not even decayed
    assert torch.equal(p.V[untouched], v_before[untouched])
    assert not torch.equal(p.V[[0, 1, 2, 4]], v_before[[0, 1, 2, 4]])
    assert torch.equal(p.V[D], torch.zeros(K))  # the padding row never trains
    assert float(p.w[D]) == 0.0
    moments = optimizer.m_v[[0, 1, 2, 4]].clone()
    optimizer.step(
        FmRows(torch.tensor([[5, 6, D]], dtype=torch.int32), None, torch.tensor([1.0])), torch.arange(1)
    )
    assert torch.equal(optimizer.m_v[[0, 1, 2, 4]], moments)  # old momentum does not keep moving them


@pytest.mark.parametrize("kernel", [True, False])
def test_learning_rate_zero_keeps_a_block_and_constant_init(kernel: bool) -> None:
    hp = hyper(
        linear_lr=0.0,
        bias_init_method="constant",
        bias_init_value=0.25,
        linear_init_method="uniform",
        linear_init_scale=0.5,
        factors_init_method="constant",
        factors_init_value=0.125,
    )
    p = params(hp)
    assert float(p.w0[0]) == 0.25
    assert torch.all(p.V[:D] == 0.125)
    assert float(p.w[:D].abs().max()) <= 0.5
    assert float(p.w[:D].std()) > 0.05
    linear = p.w.clone()
    optimizer = FmOptimizer(p, hp, use_kernel=kernel)
    for seed in range(3):
        optimizer.step(rows(32, seed), torch.arange(32))
    assert torch.equal(p.w, linear)
    assert not torch.all(p.V[:D] == 0.125)
    assert float(p.w0[0]) != 0.25


@pytest.mark.parametrize("kernel", [True, False])
def test_weight_decay_pulls_toward_zero(kernel: bool) -> None:
    """clip_gradient=0 zeroes the loss gradient, so only the decay term wd·w acts: Adam's first step then
    moves every touched weight by lr toward zero."""
    hp = hyper(clip_gradient=0.0, linear_wd=1.0, factors_wd=1.0, linear_lr=0.01, factors_lr=0.01)
    p = params(hp)
    before = p.V.clone()
    FmOptimizer(p, hp, use_kernel=kernel).step(
        FmRows(torch.tensor([[0, 1, 2]], dtype=torch.int32), None, torch.tensor([1.0])), torch.arange(1)
    )
    assert torch.all(p.V[:3].abs() < before[:3].abs())
    np.testing.assert_allclose(
        (before[:3] - p.V[:3]).numpy(), (0.01 * np.sign(before[:3].numpy())), rtol=1e-3
    )


def revealed_gradient(before: torch.Tensor, after: torch.Tensor, lr: float, eps: float) -> np.ndarray:
    """The gradient behind Adam's first step u = lr·√(1−β2)·g / (√(1−β2)·|g| + ε), solved for g."""
    root = math.sqrt(1 - BETA2)
    step = (before - after).double()
    return (step * eps / (lr * root - root * step.abs())).numpy()


def test_rescale_grad_replaces_the_batch_mean() -> None:
    """rescale_grad = 1 gives the gradient of the summed loss: n times the default (the batch mean)."""
    base = hyper(
        eps=1e-2, bias_lr=1.0, linear_lr=1.0, factors_lr=1.0, bias_wd=0.0, linear_wd=0.0, factors_wd=0.0
    )
    batch = rows(40)
    used = []
    for hp in (base, base.with_overrides(rescale_grad=1.0)):
        p = params(hp)
        start = p.V.clone()
        FmOptimizer(p, hp).step(batch, torch.arange(40))
        used.append(revealed_gradient(start, p.V, 1.0, 1e-2))
    np.testing.assert_allclose(used[1], 40 * used[0], rtol=1e-3, atol=1e-5)
    assert np.abs(used[0]).max() > 1e-3
