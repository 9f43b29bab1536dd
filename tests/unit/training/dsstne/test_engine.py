"""The engine's hand-written step against autograd, DSSTNE's loss formulas, and the epoch loop."""

from __future__ import annotations

import pytest
import torch

from training.dsstne.engine import (
    DivergenceError,
    Engine,
    LayerSpec,
    NetworkSpec,
    TrainSettings,
    Weights,
    xavier_weights,
)
from training.dsstne.layout import SparseRows, epoch_layouts
from training.dsstne.losses import SparseLoss, output_delta_
from training.dsstne.reference import ReferenceTrainer, batch_error

WIDTH = 128
MOVIELENS_SMCE = SparseLoss("smce", one_target=1.0, zero_target=0.0, one_scale=1.0, zero_scale=1.0)


def random_rows(n_rows: int, n_items: int, seed: int) -> SparseRows:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_rows):
        length = int(torch.randint(1, 15, (), generator=g))
        rows.append(sorted(set(torch.randint(0, n_items, (length,), generator=g).tolist())))
    return SparseRows.from_lists(rows, WIDTH)


def run_both(spec: NetworkSpec, settings: TrainSettings, data: SparseRows) -> tuple[Engine, ReferenceTrainer]:
    """One epoch of the engine and of the autograd reference from the same weights and masks."""
    start = xavier_weights(spec, torch.Generator().manual_seed(3), "cpu")
    engine = Engine(spec, start.clone(), settings, "cpu")
    reference = ReferenceTrainer(spec, start.clone(), settings.alpha, settings.l2, settings.optimizer)
    for part in epoch_layouts(data, data, torch.arange(data.n_rows), settings.batch):
        for i in range(part.n_batches):
            torch.manual_seed(100 + i)
            engine.step(part, i)
            torch.manual_seed(100 + i)
            keep = None
            if spec.denoising > 0:
                keep = (torch.rand(part.in_valid[i].shape) >= spec.denoising).float()
            reference.step(part, i, keep)
    return engine, reference


def assert_same_weights(a: Weights, b: Weights) -> None:
    for mine, theirs in zip(a.w + a.b, b.w + b.b, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize(
    ("layers", "loss", "denoising"),
    [
        ((LayerSpec(16, "sigmoid", (0.5, 2.0)), LayerSpec(WIDTH)), MOVIELENS_SMCE, 0.0),  # DSSTNE's sample
        ((LayerSpec(16, "sigmoid", (0.5, 2.0)), LayerSpec(WIDTH)), MOVIELENS_SMCE, 0.2),  # with denoising
        ((LayerSpec(16), LayerSpec(WIDTH)), SparseLoss("smce"), 0.0),  # SMCE margins 0.9 / 0.1
        ((LayerSpec(12, "tanh"), LayerSpec(8, "relu"), LayerSpec(WIDTH)), SparseLoss("crossentropy"), 0.0),
        ((LayerSpec(16, "relu"), LayerSpec(WIDTH)), SparseLoss("l2"), 0.0),
    ],
)
def test_engine_step_equals_autograd_sgd(
    layers: tuple[LayerSpec, ...], loss: SparseLoss, denoising: float
) -> None:
    # GIVEN 50 examples in batches of 8 (the last one short) WHEN both train one epoch THEN same weights
    spec = NetworkSpec(input_width=WIDTH, layers=layers, loss=loss, denoising=denoising)
    settings = TrainSettings(alpha=0.3, l2=1e-3, batch=8, shuffle=False)
    engine, reference = run_both(spec, settings, random_rows(50, 40, seed=1))
    assert_same_weights(engine.weights, reference.weights())


def test_engine_adam_equals_torch_adam() -> None:
    # DSSTNE's Adam (mode 6) with L2 coupled into the gradient is torch.optim.Adam(weight_decay=λ).
    spec = NetworkSpec(
        WIDTH, (LayerSpec(16, "sigmoid", (0.5, 0.5)), LayerSpec(WIDTH)), MOVIELENS_SMCE, denoising=0.3
    )
    settings = TrainSettings(alpha=0.01, l2=1e-3, batch=8, shuffle=False, optimizer="adam")
    engine, reference = run_both(spec, settings, random_rows(50, 40, seed=6))
    assert_same_weights(engine.weights, reference.weights())


@pytest.mark.parametrize(
    "loss",
    [MOVIELENS_SMCE, SparseLoss("smce"), SparseLoss("crossentropy"), SparseLoss("l2")],
)
def test_output_delta_is_the_gradient_of_the_error(loss: SparseLoss) -> None:
    # GIVEN output pre-activations and sparse targets (padding included)
    torch.manual_seed(0)
    batch, width = 3, 16
    z = torch.randn(batch, width, dtype=torch.float64) * 3
    positions = torch.tensor([0 * width + 2, 1 * width + 5, 1 * width + 6, 2 * width + 15, batch * width])
    valid = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    target = torch.zeros(batch * width + 1, dtype=torch.float64)
    target[positions] = valid
    # WHEN the engine computes deltas in place
    buffer = torch.cat([z, torch.full((1, width), float("nan"), dtype=torch.float64)])
    error = torch.zeros((), dtype=torch.float64)
    delta = output_delta_(buffer, positions, valid, loss, error)
    # THEN they are dE/dz of the reference error, and the errors agree
    zz = z.clone().requires_grad_(True)
    expected_error = batch_error(zz, target[:-1].view(batch, width), loss)
    expected_error.backward()
    assert zz.grad is not None
    torch.testing.assert_close(delta, zz.grad)
    torch.testing.assert_close(error, expected_error.detach())


@pytest.mark.parametrize("name", ["crossentropy", "l2"])
def test_delta_boost_scales_the_deltas_not_the_error(name: str) -> None:
    z = torch.tensor([[-1.0, 0.5, 2.0, 0.0]], dtype=torch.float64)
    positions, valid = torch.tensor([1, 4]), torch.tensor([1.0, 0.0], dtype=torch.float64)

    def run(loss: SparseLoss) -> tuple[torch.Tensor, torch.Tensor]:
        error = torch.zeros((), dtype=torch.float64)
        buffer = torch.cat([z, torch.zeros(1, 4, dtype=torch.float64)])
        return output_delta_(buffer, positions, valid, loss, error).clone(), error

    plain_delta, plain_error = run(SparseLoss(name))
    boosted_delta, boosted_error = run(SparseLoss(name, boost_one=3.0, boost_zero=0.5))
    torch.testing.assert_close(boosted_error, plain_error)
    torch.testing.assert_close(boosted_delta[0, 1], 3.0 * plain_delta[0, 1])
    torch.testing.assert_close(boosted_delta[0, [0, 2, 3]], 0.5 * plain_delta[0, [0, 2, 3]])


def test_reference_error_gradient_matches_finite_differences() -> None:
    # The ground truth itself is checked: central differences in float64 (SMCE with its margins).
    torch.manual_seed(1)
    z = (torch.randn(2, 6, dtype=torch.float64) * 2).requires_grad_(True)
    target = torch.zeros(2, 6, dtype=torch.float64)
    target[0, 1] = target[1, 4] = 1
    loss = SparseLoss("smce")
    batch_error(z, target, loss).backward()
    assert z.grad is not None
    eps = 1e-6
    for r in range(2):
        for c in range(6):
            up, down = z.detach().clone(), z.detach().clone()
            up[r, c] += eps
            down[r, c] -= eps
            numeric = (batch_error(up, target, loss) - batch_error(down, target, loss)) / (2 * eps)
            assert abs(float(numeric) - float(z.grad[r, c])) < 1e-6


def naive_layout(data: SparseRows, order: list[int], batch: int) -> list[tuple[list[int], list[int]]]:
    """Per batch: the input indices in order, and the flat target positions."""
    out = []
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        flat, positions = [], []
        for r, row in enumerate(rows):
            items = data.indices[data.indptr[row] : data.indptr[row + 1]].tolist()
            flat += items
            positions += [r * data.width + i for i in items]
        out.append((flat, positions))
    return out


def test_layout_packs_each_batch_in_order_with_inert_padding() -> None:
    data = random_rows(23, 30, seed=2)
    order = torch.randperm(23, generator=torch.Generator().manual_seed(4))
    parts = epoch_layouts(data, data, order, 5)
    assert [(p.batch, p.n_batches) for p in parts] == [(5, 4), (3, 1)]
    expected = naive_layout(data, order.tolist(), 5)
    got = []
    for part in parts:
        for i in range(part.n_batches):
            real = part.in_valid[i] > 0
            got.append((part.in_index[i][real].tolist(), part.out_pos[i][part.out_valid[i] > 0].tolist()))
            assert (part.out_pos[i][part.out_valid[i] == 0] == part.batch * data.width).all()
            assert int(part.offsets[i][-1]) == part.in_index.shape[1]
            bags = torch.bucketize(torch.arange(part.in_index.shape[1]), part.offsets[i][1:], right=True)
            assert (bags[real] == part.in_row[i][real]).all()  # EmbeddingBag sees each nonzero in its row
    assert got == expected


def test_unique_drops_repeated_targets() -> None:
    rows = SparseRows.from_lists([[3, 1, 3], [], [2, 2]], WIDTH).unique()
    assert rows.indptr.tolist() == [0, 2, 2, 3]
    assert rows.indices.tolist() == [1, 3, 2]


def planted_rows(n_rows: int, seed: int) -> SparseRows:
    """Two tastes: even rows like items 0..9, odd rows like items 10..19."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for r in range(n_rows):
        base = 0 if r % 2 == 0 else 10
        rows.append(sorted(set((base + torch.randint(0, 10, (6,), generator=g)).tolist())))
    return SparseRows.from_lists(rows, WIDTH)


def test_training_lowers_the_error_and_learns_the_tastes() -> None:
    spec = NetworkSpec(
        WIDTH, (LayerSpec(8, "sigmoid", (0.5, 0.1)), LayerSpec(WIDTH)), MOVIELENS_SMCE, denoising=0.2
    )
    data = planted_rows(64, seed=5)
    engine = Engine(
        spec,
        xavier_weights(spec, torch.Generator().manual_seed(0), "cpu"),
        TrainSettings(alpha=1.0, batch=16),
        "cpu",
    )
    torch.manual_seed(0)
    errors = [engine.train_epoch(data, data).error for _ in range(30)]
    assert errors[-1] < 0.5 * errors[0]
    scores = engine.scores(data, torch.tensor([0, 1]))
    assert scores.shape == (2, WIDTH)
    assert float(scores[0, :10].mean()) > float(scores[0, 10:20].mean())  # an even row prefers 0..9
    assert float(scores[1, 10:20].mean()) > float(scores[1, :10].mean())


def test_divergence_is_an_error_not_a_broken_network() -> None:
    spec = NetworkSpec(WIDTH, (LayerSpec(8), LayerSpec(WIDTH)), MOVIELENS_SMCE)
    weights = xavier_weights(spec, torch.Generator().manual_seed(0), "cpu")
    engine = Engine(spec, weights, TrainSettings(alpha=1e30, batch=16), "cpu")
    data = planted_rows(32, seed=1)

    def train_five_epochs() -> None:
        for _ in range(5):
            engine.train_epoch(data, data)

    with pytest.raises(DivergenceError, match="diverged"):
        train_five_epochs()


def test_mismatched_input_and_output_sets_are_refused() -> None:
    spec = NetworkSpec(WIDTH, (LayerSpec(8), LayerSpec(WIDTH)), MOVIELENS_SMCE)
    engine = Engine(
        spec, xavier_weights(spec, torch.Generator().manual_seed(0), "cpu"), TrainSettings(), "cpu"
    )
    with pytest.raises(ValueError, match="32 and 31 examples"):
        engine.train_epoch(planted_rows(32, 0), planted_rows(31, 0))


def test_columns_restricts_and_renumbers_a_shard() -> None:
    rows = SparseRows.from_lists([[0, 5, 9], [], [4, 5]], 10).columns(4, 8)
    assert rows.width == 4
    assert rows.indptr.tolist() == [0, 1, 1, 3]
    assert rows.indices.tolist() == [1, 0, 1]
