"""A plain PyTorch version of the same network: autograd, a dense target, torch.optim.SGD.

It is what the engine is measured against (benchmarks/dsstne_gpu.py) and the ground truth of its
tests: same data, same initial weights, same DSSTNE semantics, written the obvious way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.dsstne.engine import NetworkSpec, Weights, _activate
from training.dsstne.layout import BatchLayout
from training.dsstne.losses import MIN_ERROR, SparseLoss


def batch_error(z: torch.Tensor, target: torch.Tensor, loss: SparseLoss) -> torch.Tensor:
    """DSSTNE's error summed over the batch, from pre-activations and a dense 0/1 target."""
    a = torch.sigmoid(z)
    if loss.name == "smce":
        zero = torch.where(
            a > loss.zero_target, -loss.zero_scale * torch.log((1 - a).clamp_min(MIN_ERROR)), 0.0
        )
        one = torch.where(a < loss.one_target, -loss.one_scale * torch.log(a.clamp_min(MIN_ERROR)), 0.0)
    elif loss.name == "crossentropy":
        zero = -torch.log((1 - a).clamp_min(MIN_ERROR))
        one = -torch.log(a.clamp_min(MIN_ERROR))
    else:
        zero, one = 0.5 * a * a, 0.5 * (a - 1) ** 2
    return torch.where(target > 0, one, zero).sum()


class ReferenceTrainer:
    """DSSTNE's step with autograd: loss = E/B + Σ β·KL(p‖ρ̂), L2 on weights only; SGD or Adam."""

    def __init__(
        self, spec: NetworkSpec, weights: Weights, alpha: float, l2: float, optimizer: str = "sgd"
    ) -> None:
        self.spec = spec
        self.w = [t.clone().requires_grad_(True) for t in weights.w]
        self.b = [t.clone().requires_grad_(True) for t in weights.b]
        groups = [{"params": self.w, "weight_decay": l2}, {"params": self.b, "weight_decay": 0.0}]
        self.optimizer: torch.optim.Optimizer = (
            torch.optim.Adam(groups, lr=alpha, betas=(0.9, 0.999), eps=1e-8)
            if optimizer == "adam"
            else torch.optim.SGD(groups, lr=alpha)
        )

    def weights(self) -> Weights:
        return Weights([t.detach().clone() for t in self.w], [t.detach().clone() for t in self.b])

    def step(self, layout: BatchLayout, i: int, keep: torch.Tensor | None = None) -> torch.Tensor:
        """One minibatch; `keep` (0/1 per input nonzero) applies denoising as the engine does."""
        spec, batch = self.spec, layout.batch
        x = layout.in_valid[i]
        if keep is not None:
            x = x * keep / (1.0 - spec.denoising)
        z = F.embedding_bag(
            layout.in_index[i],
            self.w[0],
            layout.offsets[i],
            mode="sum",
            per_sample_weights=x,
            include_last_offset=True,
        )
        acts = [_activate(z + self.b[0], spec.layers[0].activation)]
        for layer in range(1, len(spec.layers) - 1):
            acts.append(_activate(acts[-1] @ self.w[layer] + self.b[layer], spec.layers[layer].activation))
        logits = acts[-1] @ self.w[-1] + self.b[-1]
        target = torch.zeros(batch * spec.layers[-1].width + 1, device=logits.device)
        target[layout.out_pos[i]] = layout.out_valid[i]
        error = batch_error(logits, target[:-1].view(batch, -1), spec.loss)
        objective = error / batch
        for layer, a in enumerate(acts):
            penalty = spec.layers[layer].sparseness
            if penalty is not None:
                p, beta = penalty
                rho = a.mean(0).clamp(1e-6, 0.999999)
                objective = (
                    objective
                    + beta * (p * torch.log(p / rho) + (1 - p) * torch.log((1 - p) / (1 - rho))).sum()
                )
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        self.optimizer.step()
        return error.detach()  # a tensor: reading it would synchronise with the device
