"""DSSTNE's error functions for sparse Boolean targets: error and output delta in two passes.

The output is dense over the catalog but the targets are sparse, so each loss is written as DSSTNE
computes it (reference: dsstne.md §5.5): a pass over every unit with the zero-target formula, then a
fix-up at the few positive units that removes their zero term and adds the one-target term. Deltas are
dE/dz through the output sigmoid, per example (not divided by the batch size); the error is the sum
over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MIN_ERROR = 1e-12  # DSSTNE clamps the argument of each logarithm here


@dataclass(frozen=True)
class SparseLoss:
    """One error function with its parameters, for a sigmoid output layer."""

    name: str  # "smce" (ScaledMarginalCrossEntropy), "crossentropy" or "l2"
    one_target: float = 0.9
    zero_target: float = 0.1
    one_scale: float = 1.0
    zero_scale: float = 1.0
    boost_one: float = 1.0  # DeltaBoost, for crossentropy and l2
    boost_zero: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in ("smce", "crossentropy", "l2"):
            raise ValueError(f"unsupported error function for a sparse sigmoid output: {self.name!r}")

    # Each pass returns (delta, error); `a` is the output activation σ(z).

    def zero_terms(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target 0, elementwise."""
        if self.name == "smce":
            active = a > self.zero_target
            delta = torch.where(active, self.zero_scale * a, 0.0)
            error = torch.where(active, -self.zero_scale * torch.log((1 - a).clamp_min(MIN_ERROR)), 0.0)
        elif self.name == "crossentropy":
            delta = self.boost_zero * a
            error = -torch.log((1 - a).clamp_min(MIN_ERROR))
        else:  # l2
            delta = self.boost_zero * a * a * (1 - a)
            error = 0.5 * a * a
        return delta, error

    def one_terms(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target 1, elementwise."""
        if self.name == "smce":
            active = a < self.one_target
            delta = torch.where(active, self.one_scale * (a - 1), 0.0)
            error = torch.where(active, -self.one_scale * torch.log(a.clamp_min(MIN_ERROR)), 0.0)
        elif self.name == "crossentropy":
            delta = self.boost_one * (a - 1)
            error = -torch.log(a.clamp_min(MIN_ERROR))
        else:  # l2
            delta = self.boost_one * (a - 1) * a * (1 - a)
            error = 0.5 * (a - 1) * (a - 1)
        return delta, error

    @property
    def fusable(self) -> bool:
        """The zero pass has the form δ = s·a·[a > t], e = −s'·ln(max(ε, 1 − a))·[a > t]."""
        return self.name in ("smce", "crossentropy")

    def fused_constants(self) -> tuple[float, float, float]:
        """(threshold, delta scale, error scale) of the zero pass, for the fused kernel."""
        if self.name == "smce":
            return self.zero_target, self.zero_scale, self.zero_scale
        return float("-inf"), self.boost_zero, 1.0


def output_delta_(
    z: torch.Tensor,
    out_pos: torch.Tensor,
    out_valid: torch.Tensor,
    loss: SparseLoss,
    error_sum: torch.Tensor,
    *,
    fused: bool = False,
) -> torch.Tensor:
    """Turn the output pre-activations into deltas, in place, and add the batch error to `error_sum`.

    `z` is a [batch + 1, width] buffer whose last row is scratch: padding positions of `out_pos` point
    there and `out_valid` masks them out. Returns the [batch, width] delta view.
    """
    batch = z.shape[0] - 1
    flat = z.view(-1)
    compute = torch.promote_types(z.dtype, torch.float32)  # at least fp32 for the loss arithmetic
    a_pos = torch.sigmoid(flat[out_pos].to(compute))
    body = z[:batch]
    if fused and loss.fusable:
        from training.dsstne.kernels import fused_zero_pass_

        threshold, delta_scale, error_scale = loss.fused_constants()
        fused_zero_pass_(body, error_sum, threshold, delta_scale, error_scale)
    else:
        delta, error = loss.zero_terms(torch.sigmoid(body.to(compute)))
        error_sum += error.sum()
        body.copy_(delta)
    _, zero_error = loss.zero_terms(a_pos)
    one_delta, one_error = loss.one_terms(a_pos)
    # where, not a product: the scratch cell behind padding positions may hold anything, even NaN
    error_sum += torch.where(out_valid > 0, one_error - zero_error, 0.0).sum()
    flat[out_pos] = one_delta.to(z.dtype)
    return body
