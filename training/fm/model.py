"""The factorization machine in PyTorch: parameters, scores, and the training step with lazy Adam.

ŷ(x) = w0 + Σᵢ wᵢxᵢ + Σᵢ<ⱼ ⟨vᵢ, vⱼ⟩xᵢxⱼ, computed in O(nk) as
w0 + Σᵢ wᵢxᵢ + ½ Σ_f [(Σᵢ vᵢ_f xᵢ)² − Σᵢ vᵢ_f² xᵢ²] (SageMaker's model, reference/sagemaker-fm.md §3.5). The
binary classifier minimises the log loss of σ(ŷ), the regressor the squared loss ½(ŷ − y)² (MXNet's
LinearRegressionOutput, whose gradient is ŷ − y).

Rows are sparse: `FmRows` holds padded feature indices `idx` (n, width) — unused slots hold `feature_dim`,
the index of an extra all-zero row that never trains — their values `x` (None: every value is 1, as in
one-hot rows) and the labels. Nothing of size (batch, feature_dim) is ever built: a step gathers the rows
it needs and its gradient is written by hand (no autograd graph), which is what makes it fast and lazy.
Two implementations of the same step: a fused numba kernel on the CPU (`kernels.fm_step`) and torch ops
on CUDA (`_torch_step`, also the reference the tests hold the kernel and autograd against).

Optimiser semantics (SageMaker's FM runs MXNet's Adam with row-sparse gradients; we do the same):

- the gradient is that of the batch's mean loss, i.e. MXNet's `rescale_grad = 1 / batch size` on the
  summed loss; `rescale_grad`, when set, replaces that factor (gradient of the sum × rescale_grad);
- then `clip_gradient` clips each element to [−c, c], then weight decay adds `wd · weight` (coupled L2, as
  MXNet's `adam_update`: grad = clip(rescale · grad) + wd · weight);
- Adam with β1 = 0.9, β2 = 0.999, ε = `eps` (default 1e-8), bias-corrected with the step count t:
  weight −= lr · √(1 − β2ᵗ) / (1 − β1ᵗ) · m / (√v + ε);
- lazy, as MXNet's `lazy_update` of row_sparse weights: only the rows of w and V that occur in the batch are
  updated — their moments, their weight decay and their weights; a row that does not occur is untouched,
  neither decayed nor moved by its old momentum. The bias w0 is in every row and updates every step. A
  block with learning rate 0 never changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training.fm.hyperparameters import FmHyperparameters

BETA1, BETA2, DEFAULT_EPS = 0.9, 0.999, 1e-8


@dataclass
class FmParameters:
    """w0 (1,), w (feature_dim + 1,), V (feature_dim + 1, num_factors); the last row is the padding row."""

    w0: torch.Tensor
    w: torch.Tensor
    V: torch.Tensor

    @property
    def feature_dim(self) -> int:
        return int(self.w.shape[0]) - 1


@dataclass
class FmRows:
    """Training or test rows: padded feature indices, optional values (None: all ones), labels."""

    idx: torch.Tensor  # (n, width) int32 or int64; `feature_dim` in unused slots
    x: torch.Tensor | None  # (n, width) float32, or None for one-hot rows
    y: torch.Tensor  # (n,) float32

    def __len__(self) -> int:
        return int(self.idx.shape[0])

    def to(self, device: torch.device) -> FmRows:
        x = None if self.x is None else self.x.to(device)
        return FmRows(self.idx.to(device), x, self.y.to(device))


def _init(
    shape: tuple[int, ...], hp: FmHyperparameters, block: str, generator: torch.Generator
) -> torch.Tensor:
    method = getattr(hp, f"{block}_init_method")
    if method == "constant":
        return torch.full(shape, float(getattr(hp, f"{block}_init_value")), dtype=torch.float32)
    if method == "uniform":
        scale = float(getattr(hp, f"{block}_init_scale"))
        return (torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1) * scale
    sigma = float(getattr(hp, f"{block}_init_sigma"))
    return torch.randn(shape, generator=generator, dtype=torch.float32) * sigma


def init_parameters(hp: FmHyperparameters, generator: torch.Generator) -> FmParameters:
    """Parameters drawn as the hyperparameters say (bias, linear and factors each by its own method)."""
    d, k = hp.feature_dim, hp.num_factors
    w0 = _init((1,), hp, "bias", generator)
    w = torch.cat([_init((d,), hp, "linear", generator), torch.zeros(1)])
    factors = torch.cat([_init((d, k), hp, "factors", generator), torch.zeros(1, k)])
    return FmParameters(w0, w, factors)


def scores(params: FmParameters, idx: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    """Raw scores ŷ (B,) of padded rows (before the classifier's sigmoid)."""
    flat = idx.reshape(-1)
    gathered = params.V.index_select(0, flat).view(*idx.shape, -1)
    linear = params.w.index_select(0, flat).view(idx.shape)
    if x is not None:
        gathered = gathered * x.unsqueeze(-1)
        linear = linear * x
    total = gathered.sum(1)
    pairwise = 0.5 * ((total * total).sum(1) - (gathered * gathered).sum((1, 2)))
    return params.w0 + linear.sum(1) + pairwise


def loss_terms(yhat: torch.Tensor, y: torch.Tensor, predictor_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-row loss, its derivative by ŷ): log loss of σ(ŷ), or ½ (ŷ − y)²."""
    if predictor_type == "binary_classifier":
        return torch.nn.functional.softplus(yhat) - y * yhat, torch.sigmoid(yhat) - y
    diff = yhat - y
    return 0.5 * diff * diff, diff


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


class FmOptimizer:
    """Adam state for the three blocks, and the training step (numba kernel on CPU, torch ops elsewhere)."""

    def __init__(
        self, params: FmParameters, hp: FmHyperparameters, *, use_kernel: bool | None = None
    ) -> None:
        self.params, self.hp = params, hp
        self.t = 0
        self.m_w0, self.v_w0 = torch.zeros_like(params.w0), torch.zeros_like(params.w0)
        self.m_w, self.v_w = torch.zeros_like(params.w), torch.zeros_like(params.w)
        self.m_v, self.v_v = torch.zeros_like(params.V), torch.zeros_like(params.V)
        self.eps = DEFAULT_EPS if hp.eps is None else hp.eps
        self.clip = math.inf if hp.clip_gradient is None else hp.clip_gradient
        on_cpu = params.V.device.type == "cpu"
        self.use_kernel = on_cpu and numba_available() if use_kernel is None else use_kernel
        if self.use_kernel and not on_cpu:
            raise ValueError("the numba kernel trains CPU tensors only")
        self._loss_sum: float | torch.Tensor = 0.0
        self._scratch: Any = None  # the kernel's work arrays (kernels.KernelScratch), made on first use
        self._touched = torch.zeros(params.w.shape[0], dtype=torch.bool, device=params.V.device)

    def _scale(self, batch: int) -> float:
        return self.hp.rescale_grad if self.hp.rescale_grad is not None else 1.0 / batch

    def _correction(self) -> float:
        return math.sqrt(1 - BETA2**self.t) / (1 - BETA1**self.t)

    def step(self, rows: FmRows, order: torch.Tensor) -> None:
        """Train on the rows `order` of `rows` (all on the parameters' device); the summed loss adds up
        in `take_loss` (no device sync per step)."""
        self.t += 1
        if self.use_kernel:
            loss, dw0 = self._kernel_step(rows, order)
            self._loss_sum = self._loss_sum + loss
            self._adam_bias(torch.tensor([dw0], dtype=torch.float32))
        else:
            loss_t, dw0_t = self._torch_step(rows, order)
            self._loss_sum = self._loss_sum + loss_t
            self._adam_bias(dw0_t.reshape(1))

    def take_loss(self) -> float:
        """The loss summed over the steps since the last call."""
        total, self._loss_sum = self._loss_sum, 0.0
        return float(total)

    def _adam_bias(self, grad: torch.Tensor) -> None:
        hp = self.hp
        if hp.bias_lr == 0:
            return
        w0 = self.params.w0
        grad = grad.to(w0.device).clamp(-self.clip, self.clip).add_(w0, alpha=hp.bias_wd)
        self.m_w0.mul_(BETA1).add_(grad, alpha=1 - BETA1)
        self.v_w0.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
        w0.addcdiv_(self.m_w0, self.v_w0.sqrt().add_(self.eps), value=-hp.bias_lr * self._correction())

    def _kernel_step(self, rows: FmRows, order: torch.Tensor) -> tuple[float, float]:
        from training.fm.kernels import KernelScratch, fm_step

        p, hp = self.params, self.hp
        if self._scratch is None:
            self._scratch = KernelScratch()
        x = np.zeros((0, 0), np.float32) if rows.x is None else rows.x.numpy()
        return fm_step(
            rows.idx.numpy(),
            x,
            rows.y.numpy(),
            order.numpy(),
            p.V.numpy(),
            p.w.numpy(),
            float(p.w0[0]),
            self.m_v.numpy(),
            self.v_v.numpy(),
            self.m_w.numpy(),
            self.v_w.numpy(),
            self._scratch,
            classifier=hp.predictor_type == "binary_classifier",
            scale=self._scale(len(order)),
            clip=self.clip,
            lr_v=hp.factors_lr,
            lr_w=hp.linear_lr,
            wd_v=hp.factors_wd,
            wd_w=hp.linear_wd,
            beta1=BETA1,
            beta2=BETA2,
            eps=self.eps,
            correction=self._correction(),
        )

    def _torch_step(self, rows: FmRows, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same step as the kernel, in torch ops (CUDA, and the reference for the tests)."""
        p, hp = self.params, self.hp
        idx = rows.idx.index_select(0, order).long()
        x = None if rows.x is None else rows.x.index_select(0, order)
        y = rows.y.index_select(0, order)
        batch, width = idx.shape
        flat = idx.reshape(-1)
        gathered = p.V.index_select(0, flat).view(batch, width, -1)
        linear = p.w.index_select(0, flat).view(batch, width)
        if x is not None:
            gathered = gathered * x.unsqueeze(-1)
            linear = linear * x
        total = gathered.sum(1)
        yhat = p.w0 + linear.sum(1) + 0.5 * ((total * total).sum(1) - (gathered * gathered).sum((1, 2)))
        loss, dyhat = loss_terms(yhat, y, hp.predictor_type)
        dyhat = dyhat * self._scale(batch)

        # ∂ŷ/∂w_j = x_j and ∂ŷ/∂v_j = x_j (Σᵢ vᵢxᵢ − v_j x_j) per entry, summed per distinct feature.
        grad_v = (total.unsqueeze(1) - gathered).mul_(dyhat.view(batch, 1, 1))
        grad_w = dyhat.unsqueeze(1).expand(batch, width)
        if x is not None:
            grad_v.mul_(x.unsqueeze(-1))
            grad_w = grad_w * x
        pad = p.feature_dim
        self._touched[flat] = True
        self._touched[pad] = False
        touched = self._touched.nonzero().squeeze(1)
        self._touched[touched] = False
        position = torch.full_like(p.w, -1, dtype=torch.long)
        position[touched] = torch.arange(len(touched), device=flat.device)
        where = position[flat]
        keep = where >= 0
        sum_w = torch.zeros(len(touched), device=flat.device).index_add_(
            0, where[keep], grad_w.reshape(-1)[keep]
        )
        sum_v = torch.zeros(len(touched), p.V.shape[1], device=flat.device).index_add_(
            0, where[keep], grad_v.reshape(batch * width, -1)[keep]
        )
        self._adam_rows(p.w, self.m_w, self.v_w, touched, sum_w, hp.linear_lr, hp.linear_wd)
        self._adam_rows(p.V, self.m_v, self.v_v, touched, sum_v, hp.factors_lr, hp.factors_wd)
        return loss.sum(), dyhat.sum()

    def _adam_rows(
        self,
        param: torch.Tensor,
        m_all: torch.Tensor,
        v_all: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        lr: float,
        wd: float,
    ) -> None:
        if lr == 0 or rows.numel() == 0:
            return
        weight = param.index_select(0, rows)
        grad = grad.clamp(-self.clip, self.clip).add_(weight, alpha=wd)
        m = m_all.index_select(0, rows).mul_(BETA1).add_(grad, alpha=1 - BETA1)
        v = v_all.index_select(0, rows).mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
        weight.addcdiv_(m, v.sqrt().add_(self.eps), value=-lr * self._correction())
        param.index_copy_(0, rows, weight)
        m_all.index_copy_(0, rows, m)
        v_all.index_copy_(0, rows, v)
