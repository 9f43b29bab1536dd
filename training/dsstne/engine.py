"""The training engine: DSSTNE's sparse autoencoder math, fast on a GPU, exact on a CPU.

A network is a sparse input layer, dense hidden layers and a dense output layer over the catalog
(DSSTNE's weights are [n_in, n_out]: z = x·W + b). One training step is written out by hand rather than
through autograd, because DSSTNE's semantics make it cheap to do so and fast to run:

- the input is never densified: z = b + Σ_i x_i·w[i] (EmbeddingBag), and its weight update touches only
  the rows of the batch's nonzeros (plus the L2 decay, one pass);
- the output delta and error are computed in one fused pass (`losses.output_delta_`), and the output
  weight update is one GEMM with the decay folded in (W ← (1 − αλ)·W − (α/B)·hᵀδ);
- on CUDA a whole epoch (every minibatch at static shapes, see `layout`) is captured once as a CUDA
  graph and replayed: no host work and no host–device synchronisation inside it.

The math follows dsstne.md §5: deltas per example, gradients are batch means, the SGD update
w ← w − α(ḡ + λw + λ₁·sgn w), biases without regularisation, denoising as inverted dropout on the sparse
input (DSSTNE's dense-path semantics), the KL sparseness penalty on "Sparse" hidden layers.

Precision (`TrainSettings.precision`): "fp32" (the default, DSSTNE's arithmetic), "tf32" (fp32 GEMMs on
tensor cores with 10-bit-mantissa inputs) or "bf16", mixed precision: the GEMMs of the dense layers take
bf16 inputs (fp32 accumulation) and the output layer's pre-activations and deltas — the one tensor as
wide as the catalog — are stored in bf16, halving its memory traffic; the weights (master copy), the
optimizer state, the hidden activations and deltas, the input layer's sparse gather and update, the
loss and its sum stay in fp32, and every update is applied to the fp32 weights. The step is written by
hand, not through autograd, so these casts are explicit rather than left to `torch.autocast` (which
does not reach `out=` and in-place GEMMs). Pick bf16 for speed on a GPU with bf16 tensor cores (Ampere
or later) when a small change in the loss curve is acceptable (measured on CPU: at most 0.7 % per
epoch on the tests' small networks, which bound it at 3 %; 0.006 % over 5 epochs of the MovieLens
sample); keep fp32 to reproduce DSSTNE's numbers. A learning rate at which fp32 itself oscillates
magnifies any rounding, bf16's included.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from recsys import contracts
from training.dsstne.layout import BatchLayout, SparseRows, epoch_layouts, layout
from training.dsstne.losses import SparseLoss, output_delta_

ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")
PRECISIONS = contracts.DSSTNE_PRECISIONS


class DivergenceError(RuntimeError):
    """Training produced a non-finite error: stop rather than write a broken network."""


@dataclass(frozen=True)
class LayerSpec:
    """A fully connected layer after the input: its width, activation and sparseness penalty (p, β)."""

    width: int
    activation: str = "sigmoid"
    sparseness: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not supported by the engine")


@dataclass(frozen=True)
class NetworkSpec:
    input_width: int
    layers: tuple[LayerSpec, ...]  # hidden layers, then the output layer (sigmoid)
    loss: SparseLoss
    denoising: float = 0.0  # probability of dropping each input nonzero while training

    def __post_init__(self) -> None:
        if len(self.layers) < 2:
            raise ValueError("the engine needs at least one hidden layer between input and output")
        if self.layers[-1].activation != "sigmoid":
            raise ValueError("the output layer must be a sigmoid layer for sparse-target losses")
        if not 0.0 <= self.denoising < 1.0:
            raise ValueError(f"denoising probability must be in [0, 1), got {self.denoising}")


@dataclass(frozen=True)
class TrainSettings:
    """DSSTNE `train` flags (defaults as its CLI) and the engine's own switches."""

    alpha: float = 0.025
    l2: float = 1e-4  # -lambda
    l1: float = 0.0  # -lambda1
    optimizer: str = "sgd"  # DSSTNE's train CLI is hard-wired to SGD; "adam" is DSSTNE's mode 6
    mu: float = 0.9  # -mu: Adam's β1
    mu1: float = 0.999  # -mu1: Adam's β2
    decay: float = 0.0  # config "Decay": α_step = α / (1 + decay · step)
    batch: int = 1024
    shuffle: bool = True  # config "ShuffleIndices"
    precision: str = "fp32"  # "fp32"; "tf32" (tensor-core GEMMs, 10-bit mantissa inputs); "bf16" (mixed)
    cuda_graphs: bool = True  # capture each epoch as one CUDA graph (CUDA only, constant α only)
    fused: bool = True  # the Triton output kernel (CUDA only)
    seed: int = 12134  # DSSTNE's FIXED_SEED

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be 'fp32', 'tf32' or 'bf16', got {self.precision!r}")
        if self.batch < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch}")


@dataclass
class Weights:
    """One [n_in, n_out] matrix and one bias per layer after the input, in order."""

    w: list[torch.Tensor]
    b: list[torch.Tensor]

    def clone(self) -> Weights:
        return Weights([t.clone() for t in self.w], [t.clone() for t in self.b])

    def copy_(self, other: Weights) -> None:
        for mine, theirs in zip(self.w + self.b, other.w + other.b, strict=True):
            mine.copy_(theirs)


@dataclass
class EpochStats:
    epoch: int
    error: float  # DSSTNE's "average training error": Σ batch errors / examples
    regularization: float  # 0.5·λ·Σw² + λ₁·Σ|w| at the end of the epoch
    seconds: float
    examples_per_second: float
    steps: int
    gpu_peak_bytes: int | None = None


def xavier_weights(spec: NetworkSpec, generator: torch.Generator, device: torch.device | str) -> Weights:
    """DSSTNE's default initialisation: half-width Xavier uniform, zero bias (dsstne.md §4.3)."""
    widths = [spec.input_width] + [layer.width for layer in spec.layers]
    w, b = [], []
    for n_in, n_out in itertools.pairwise(widths):
        half = 0.5 * math.sqrt(6.0 / (n_in + n_out))
        w.append(((torch.rand(n_in, n_out, generator=generator) * 2 - 1) * half).to(device))
        b.append(torch.zeros(n_out, device=device))
    return Weights(w, b)


def _activate(z: torch.Tensor, name: str) -> torch.Tensor:
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.relu(z)
    return z


def _derivative(a: torch.Tensor, name: str) -> torch.Tensor:
    """f′ written in terms of the activation, as DSSTNE's backprop kernels do."""
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).to(a.dtype)
    return torch.ones_like(a)


class Engine:
    """Trains one network in place on one device."""

    def __init__(
        self,
        spec: NetworkSpec,
        weights: Weights,
        settings: TrainSettings,
        device: torch.device | str,
        group: dist.ProcessGroup | None = None,
        parallel: str = "data",
    ) -> None:
        """Train with the other ranks of a torch.distributed `group`, if given, in one of two ways.

        parallel="data": each rank takes a share of every minibatch; gradients are summed over ranks.
        parallel="model": every rank takes whole minibatches but holds only its slice of the output
        layer's columns (DSSTNE's model parallelism, for catalogs too wide for one GPU); the hidden
        layer's delta is summed over ranks. Ranks must then draw the same random numbers (same seed).
        """
        if parallel not in ("data", "model"):
            raise ValueError(f"parallel must be 'data' or 'model', got {parallel!r}")
        self.group = group
        self.world = dist.get_world_size(group) if group is not None else 1
        self.rank = dist.get_rank(group) if group is not None else 0
        self._data_parallel = self.world > 1 and parallel == "data"
        self._model_parallel = self.world > 1 and parallel == "model"
        if self._data_parallel and settings.batch % self.world:
            raise ValueError(f"batch size {settings.batch} does not split over {self.world} ranks")
        self.output_columns = (0, spec.layers[-1].width)
        if self._model_parallel:
            width = spec.layers[-1].width
            if width % self.world:
                raise ValueError(f"output width {width} does not split over {self.world} ranks")
            shard = width // self.world
            self.output_columns = (self.rank * shard, (self.rank + 1) * shard)
            lo, hi = self.output_columns
            weights = Weights(
                [*weights.w[:-1], weights.w[-1][:, lo:hi].contiguous()],
                [*weights.b[:-1], weights.b[-1][lo:hi].clone()],
            )
        self.spec = spec
        self.weights = weights
        self.settings = settings
        self.device = torch.device(device)
        self.epochs_done = 0
        self.steps_done = 0
        self._error = torch.zeros((), dtype=torch.float32, device=self.device)
        self._generator = torch.Generator(device="cpu").manual_seed(settings.seed)
        self._graphs: dict[tuple[tuple[int, ...], ...], tuple[torch.cuda.CUDAGraph, list[BatchLayout]]] = {}
        self._layouts: list[BatchLayout] = []
        self._layouts_for: tuple[int, int] | None = None  # data sets the cached layouts belong to
        self._use_graphs = (
            self.device.type == "cuda" and settings.cuda_graphs and settings.decay == 0 and self.world == 1
        )
        self._global_batch: dict[int, int] = {}  # id(local layout) -> examples in the global minibatch
        self._idle_last_batch = 0  # this rank has no example of the last minibatch (of this size)
        self._fused = self.device.type == "cuda" and settings.fused and spec.loss.fusable
        # The dtype of the dense layers' GEMM inputs and of the output buffer (logits, then deltas).
        self._mm = torch.bfloat16 if settings.precision == "bf16" else torch.float32
        self._adam: _AdamState | None = None
        if settings.optimizer == "adam":
            self._adam = _AdamState(weights, settings.mu, settings.mu1, self.device)

    # --- one minibatch ----------------------------------------------------------------------------

    def _alpha(self) -> float:
        return self.settings.alpha / (1 + self.settings.decay * self.steps_done)

    def step(self, layout: BatchLayout, i: int) -> None:
        """Forward, error, backward and SGD update for minibatch i of `layout`."""
        spec, w, bias = self.spec, self.weights.w, self.weights.b
        batch = layout.batch
        alpha = self._alpha()
        scale = -alpha / batch  # the gradient is the batch mean

        x = layout.in_valid[i]
        if spec.denoising > 0:
            keep = torch.rand(x.shape, device=x.device) >= spec.denoising
            x = x * keep * (1.0 / (1.0 - spec.denoising))
        z = F.embedding_bag(
            layout.in_index[i],
            w[0],
            layout.offsets[i],
            mode="sum",
            per_sample_weights=x,
            include_last_offset=True,
        )
        # The dense layers' weights as the GEMMs take them: the fp32 weights themselves, or one bf16
        # copy per step, made before any update (the backward pass needs the weights of the forward).
        mm = self._mm
        gemm_w = [w[0], *(t.to(mm) for t in w[1:])]
        acts = [_activate(z + bias[0], spec.layers[0].activation)]
        for layer in range(1, len(spec.layers) - 1):
            pre = torch.addmm(bias[layer].to(mm), acts[-1].to(mm), gemm_w[layer]).float()
            acts.append(_activate(pre, spec.layers[layer].activation))
        out = torch.empty(batch + 1, w[-1].shape[1], device=z.device, dtype=mm)
        out[batch].zero_()
        torch.addmm(bias[-1].to(mm), acts[-1].to(mm), gemm_w[-1], out=out[:batch])
        delta = output_delta_(
            out, layout.out_pos[i], layout.out_valid[i], spec.loss, self._error, fused=self._fused
        )

        if self._adam is not None or self._data_parallel:
            self._explicit_backward(layout, i, x, acts, delta, alpha, gemm_w)
            return
        # Backward from the output: each layer's delta, then its update (its weights are used first).
        for layer in range(len(spec.layers) - 1, 0, -1):
            below = acts[layer - 1]
            d_below = self._sum_output_shards((delta.to(mm) @ gemm_w[layer].T).float(), layer)
            penalty = spec.layers[layer - 1].sparseness
            if penalty is not None:
                d_below += self._sparseness(below, *penalty)
            d_below *= _derivative(below, spec.layers[layer - 1].activation)
            self._update_dense(w[layer], below, delta, alpha, scale)
            bias[layer].add_(delta.sum(0, dtype=torch.float32), alpha=scale)
            delta = d_below
        # The sparse input layer: decay every row, then add the gradient to the rows the batch touched.
        self._regularize(w[0], alpha)
        contribution = delta[layout.in_row[i]] * (x * scale).unsqueeze(1)
        w[0].index_add_(0, layout.in_index[i], contribution)
        bias[0].add_(delta.sum(0), alpha=scale)

    def _explicit_backward(
        self,
        layout: BatchLayout,
        i: int,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        delta: torch.Tensor,
        alpha: float,
        gemm_w: list[torch.Tensor],
    ) -> None:
        """Mean gradients of every parameter, summed over the ranks, then the optimizer's update.

        Slower than the fused SGD path (gradients are materialised, the input layer's densely), but
        it is what Adam and data-parallel training need; it gives the same updates.
        """
        spec, w, mm = self.spec, self.weights.w, self._mm
        batch = self._global_batch.get(id(layout), layout.batch)
        grads_w: list[torch.Tensor] = [torch.empty(0)] * len(w)
        grads_b: list[torch.Tensor] = [torch.empty(0)] * len(w)
        for layer in range(len(spec.layers) - 1, 0, -1):
            below = acts[layer - 1]
            # fp32 gradients (from a bf16 GEMM under "bf16"): all-reduced and applied in fp32
            grads_w[layer] = (below.T.to(mm) @ delta.to(mm)).float() / batch
            grads_b[layer] = delta.sum(0, dtype=torch.float32) / batch
            d_below = self._sum_output_shards((delta.to(mm) @ gemm_w[layer].T).float(), layer)
            penalty = spec.layers[layer - 1].sparseness
            if penalty is not None:
                d_below += self._sparseness(below, *penalty, batch=batch)
            delta = d_below * _derivative(below, spec.layers[layer - 1].activation)
        grads_w[0] = torch.zeros_like(w[0]).index_add_(
            0, layout.in_index[i], delta[layout.in_row[i]] * (x / batch).unsqueeze(1)
        )
        grads_b[0] = delta.sum(0) / batch
        self._apply(grads_w, grads_b, alpha)

    def _idle_step(self, batch: int) -> None:
        """A rank with no examples in the (last, short) global minibatch still joins every collective."""
        spec, w, b = self.spec, self.weights.w, self.weights.b
        for layer in range(len(spec.layers) - 1, 0, -1):
            if spec.layers[layer - 1].sparseness is not None:
                dist.all_reduce(
                    torch.zeros(spec.layers[layer - 1].width, device=self.device), group=self.group
                )
        self._apply([torch.zeros_like(t) for t in w], [torch.zeros_like(t) for t in b], self._alpha())

    def _sum_output_shards(self, d_below: torch.Tensor, layer: int) -> torch.Tensor:
        """With the output layer sharded, each rank holds one part of the layer below's delta."""
        if self._model_parallel and layer == len(self.spec.layers) - 1:
            dist.all_reduce(d_below, group=self.group)
        return d_below

    def _apply(self, grads_w: list[torch.Tensor], grads_b: list[torch.Tensor], alpha: float) -> None:
        """Sum the ranks' gradients, add L2/L1 on the weights (once), update with SGD or Adam."""
        s, w, bias = self.settings, self.weights.w, self.weights.b
        if self._data_parallel:
            for g in grads_w + grads_b:
                dist.all_reduce(g, group=self.group)
        for g, param in zip(grads_w, w, strict=True):
            if s.l2:
                g.add_(param, alpha=s.l2)
            if s.l1:
                g.add_(torch.sign(param), alpha=s.l1)
        if self._adam is not None:
            self._adam.step(w + bias, grads_w + grads_b, alpha)
        else:
            for param, g in zip(w + bias, grads_w + grads_b, strict=True):
                param.sub_(g, alpha=alpha)

    def _sparseness(self, a: torch.Tensor, p: float, beta: float, batch: int | None = None) -> torch.Tensor:
        """DSSTNE's KL penalty on a hidden layer, added to dE/da per row (dsstne.md §5.4).

        ρ̂ is the mean activation over the global minibatch: with several ranks, their sums are added.
        """
        if self._data_parallel:
            total = a.sum(0)
            dist.all_reduce(total, group=self.group)
            rho = (total / (batch or len(a))).clamp(1e-6, 0.999999)
        else:
            rho = a.mean(0).clamp(1e-6, 0.999999)
        return beta * (-p / rho + (1 - p) / (1 - rho))

    def _update_dense(
        self, w: torch.Tensor, a: torch.Tensor, delta: torch.Tensor, alpha: float, scale: float
    ) -> None:
        if self.settings.l1:
            w.add_(torch.sign(w), alpha=-alpha * self.settings.l1)
        if self._mm == torch.float32:
            w.addmm_(a.T, delta, beta=1 - alpha * self.settings.l2, alpha=scale)
            return
        # bf16: the gradient from a bf16 GEMM (fp32 accumulation), the update on the fp32 weights
        grad = a.T.to(self._mm) @ delta.to(self._mm)
        if self.settings.l2:
            w.mul_(1 - alpha * self.settings.l2)
        w.add_(grad, alpha=scale)

    def _regularize(self, w: torch.Tensor, alpha: float) -> None:
        if self.settings.l1:
            w.add_(torch.sign(w), alpha=-alpha * self.settings.l1)
        if self.settings.l2:
            w.mul_(1 - alpha * self.settings.l2)

    # --- epochs -----------------------------------------------------------------------------------

    def train_epoch(self, inputs: SparseRows, targets: SparseRows) -> EpochStats:
        """One pass over the data set; inputs and targets are row-aligned (as DSSTNE's -i and -o)."""
        if inputs.n_rows != targets.n_rows:
            raise ValueError(f"input and output data sets have {inputs.n_rows} and {targets.n_rows} examples")
        n = inputs.n_rows
        if self.settings.shuffle:
            order = torch.randperm(n, generator=self._generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        key = (id(inputs), id(targets))
        if self.settings.shuffle or self._layouts_for != key:
            self._layouts = self._rank_layouts(inputs, targets, order)
            self._layouts_for = key
        layouts = self._layouts
        matmul = torch.backends.cuda.matmul
        saved_flags = (matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction)
        matmul.allow_tf32 = self.settings.precision == "tf32"
        matmul.allow_bf16_reduced_precision_reduction = False  # bf16 GEMMs reduce in fp32 (split-K too)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        started = time.perf_counter()
        try:
            self._error.zero_()
            if self._use_graphs:
                self._replay(layouts)
            else:
                for part in layouts:
                    for i in range(part.n_batches):
                        self.step(part, i)
                        self.steps_done += 1
                if self._idle_last_batch:
                    self._idle_step(self._idle_last_batch)
                    self.steps_done += 1
            if self.world > 1:
                dist.all_reduce(self._error, group=self.group)
            error = float(self._error) / n  # the one synchronisation of the epoch
        finally:
            matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction = saved_flags
        seconds = time.perf_counter() - started
        if not math.isfinite(error) or not all(bool(torch.isfinite(t).all()) for t in self.weights.w):
            raise DivergenceError(
                f"epoch {self.epochs_done + 1}: training diverged (error {error}, or weights no longer "
                f"finite); lower the learning rate "
                f"(alpha={self.settings.alpha})"
            )
        self.epochs_done += 1
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        return EpochStats(
            epoch=self.epochs_done,
            error=error,
            regularization=self.regularization_error(),
            seconds=seconds,
            examples_per_second=n / seconds if seconds > 0 else float("inf"),
            steps=sum(p.n_batches for p in layouts),
            gpu_peak_bytes=peak,
        )

    def _rank_layouts(
        self, inputs: SparseRows, targets: SparseRows, order: torch.Tensor
    ) -> list[BatchLayout]:
        """This rank's share of every global minibatch (all of it on a single process)."""
        self._idle_last_batch = 0
        self._global_batch.clear()
        if self._model_parallel:
            return epoch_layouts(inputs, targets.columns(*self.output_columns), order, self.settings.batch)
        if self.world == 1:
            return epoch_layouts(inputs, targets, order, self.settings.batch)
        batch, share = self.settings.batch, self.settings.batch // self.world
        full = (len(order) // batch) * batch
        parts = []
        if full:
            mine = order[:full].view(-1, batch)[:, self.rank * share : (self.rank + 1) * share].reshape(-1)
            part = layout(inputs, targets, mine, share)
            self._global_batch[id(part)] = batch
            parts.append(part)
        rest = order[full:]
        if len(rest):
            mine = torch.tensor_split(rest, self.world)[self.rank]
            if len(mine):
                part = layout(inputs, targets, mine, len(mine))
                self._global_batch[id(part)] = len(rest)
                parts.append(part)
            else:
                self._idle_last_batch = len(rest)
        return parts

    def regularization_error(self) -> float:
        s = self.settings
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # replicated, output layer
        for layer, w in enumerate(self.weights.w):
            part = 0.5 * s.l2 * (w.double() ** 2).sum() + s.l1 * w.double().abs().sum()
            totals[int(layer == len(self.weights.w) - 1)] += part
        if self._model_parallel:
            dist.all_reduce(totals[1:], group=self.group)
        return float(totals.sum())

    def full_weights(self) -> Weights:
        """The whole network: with the output layer sharded, its columns gathered from every rank."""
        if not self._model_parallel:
            return self.weights
        w_parts = [torch.empty_like(self.weights.w[-1]) for _ in range(self.world)]
        b_parts = [torch.empty_like(self.weights.b[-1]) for _ in range(self.world)]
        dist.all_gather(w_parts, self.weights.w[-1].contiguous(), group=self.group)
        dist.all_gather(b_parts, self.weights.b[-1], group=self.group)
        return Weights(
            [*self.weights.w[:-1], torch.cat(w_parts, dim=1)], [*self.weights.b[:-1], torch.cat(b_parts)]
        )

    # --- CUDA graphs ------------------------------------------------------------------------------

    def _replay(self, layouts: list[BatchLayout]) -> None:
        """Run the epoch as captured CUDA graphs: one per layout shape, captured on first use."""
        for part in layouts:
            key = (tuple(part.in_index.shape), tuple(part.out_pos.shape))
            if key not in self._graphs:
                self._graphs[key] = (self._capture(part), [part])
            graph, static = self._graphs[key]
            if static[0] is not part:
                for mine, theirs in zip(_tensors(static[0]), _tensors(part), strict=True):
                    mine.copy_(theirs)
            graph.replay()
            self.steps_done += part.n_batches

    def _capture(self, part: BatchLayout) -> torch.cuda.CUDAGraph:
        """Capture every minibatch of `part`, after a warm-up whose effects are undone."""
        saved, error = self.weights.clone(), self._error.clone()
        adam = (
            None if self._adam is None else [t.clone() for t in self._adam.m + self._adam.v + [self._adam.t]]
        )
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for i in range(min(2, part.n_batches)):
                self.step(part, i)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.weights.copy_(saved)
        self._error.copy_(error)
        if self._adam is not None and adam is not None:
            for mine, theirs in zip(self._adam.m + self._adam.v + [self._adam.t], adam, strict=True):
                mine.copy_(theirs)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(part.n_batches):
                self.step(part, i)
        return graph

    # --- scoring ----------------------------------------------------------------------------------

    @torch.no_grad()
    def scores(self, inputs: SparseRows, rows: torch.Tensor) -> torch.Tensor:
        """Output activations [len(rows), width] for some examples, without denoising."""
        spec, w, bias = self.spec, self.weights.w, self.weights.b
        lengths = inputs.lengths()[rows]
        starts = inputs.indptr[rows]
        offsets = torch.zeros(len(rows) + 1, dtype=torch.int64, device=rows.device)
        offsets[1:] = torch.cumsum(lengths, 0)
        flat = torch.repeat_interleave(starts - offsets[:-1], lengths) + torch.arange(
            int(offsets[-1]), device=rows.device
        )
        z = F.embedding_bag(inputs.indices[flat], w[0], offsets, mode="sum", include_last_offset=True)
        a = _activate(z + bias[0], spec.layers[0].activation)
        for layer in range(1, len(spec.layers)):
            a = _activate(torch.addmm(bias[layer], a, w[layer]), spec.layers[layer].activation)
        if self._model_parallel:  # every rank scored its columns: put the rows back together
            parts = [torch.empty_like(a) for _ in range(self.world)]
            dist.all_gather(parts, a.contiguous(), group=self.group)
            a = torch.cat(parts, dim=1)
        return a


class _AdamState:
    """DSSTNE's Adam (mode 6): β1 = μ, β2 = μ1, ε = 1e-8, bias-corrected; the step count lives on the
    device so that a captured CUDA graph keeps counting."""

    def __init__(self, weights: Weights, beta1: float, beta2: float, device: torch.device) -> None:
        params = weights.w + weights.b
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.beta1, self.beta2 = beta1, beta2
        self.t = torch.zeros((), dtype=torch.float32, device=device)

    def reset(self) -> None:
        for state in self.m + self.v:
            state.zero_()
        self.t.zero_()

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor], alpha: float) -> None:
        self.t += 1
        correct1 = 1 - self.beta1**self.t
        correct2 = 1 - self.beta2**self.t
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            p.sub_(alpha * (m / correct1) / ((v / correct2).sqrt_() + 1e-8))


def _tensors(part: BatchLayout) -> list[torch.Tensor]:
    return [part.rows, part.in_index, part.in_row, part.in_valid, part.offsets, part.out_pos, part.out_valid]
