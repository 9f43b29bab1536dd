"""Fused GPU kernels (Triton). Imported only on CUDA; the engine falls back to plain torch elsewhere."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 4096


@triton.jit
def _zero_pass(z_ptr, err_ptr, n, threshold, delta_scale, error_scale, min_error, BLOCK: tl.constexpr):  # noqa: N803
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    z = tl.load(z_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
    a = tl.sigmoid(z)
    active = (a > threshold) & inside
    delta = tl.where(active, delta_scale * a, 0.0)
    error = tl.where(active, -error_scale * tl.log(tl.maximum(1.0 - a, min_error)), 0.0)
    tl.store(z_ptr + offsets, delta.to(z_ptr.dtype.element_ty), mask=inside)
    tl.atomic_add(err_ptr, tl.sum(error, axis=0))


def fused_zero_pass_(
    z: torch.Tensor, error_sum: torch.Tensor, threshold: float, delta_scale: float, error_scale: float
) -> None:
    """One read and one write of the output: sigmoid, zero-target delta (in place) and summed error."""
    n = z.numel()
    grid = (triton.cdiv(n, _BLOCK),)
    _zero_pass[grid](z, error_sum, n, threshold, delta_scale, error_scale, 1e-12, BLOCK=_BLOCK)
