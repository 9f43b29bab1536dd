"""DSSTNE's weight initialisation (`NNWeight::Randomize`, reference: dsstne.md §4.3).

Every incoming weight matrix of a layer is drawn by the scheme of that (output) layer's `WeightInit`,
with n_in / n_out the layer strides including DSSTNE's 128-padding (the caller passes them). DSSTNE
draws from cuRAND seeded with 12134; bit-exact replication is impossible, so these draws match DSSTNE's
distributions, not its numbers. Uniform schemes are written as DSSTNE's kernel computes them,
`s · u − s / 2` with u ~ U(0, 1), which is why Xavier spans only half the usual Glorot range.

Constant: the spec (and DSSTNE's comment) says every weight = Scale, which is what this module does.
DSSTNE's kernel actually writes −Scale (`kScaleAndBias` subtracts its bias argument); the sign is kept
as documented because a Constant init is used for tests, not for training, and users read the docs.
"""

from __future__ import annotations

import math

import torch

from training.dsstne.config import WeightInitScheme

SCHEMES: tuple[WeightInitScheme, ...] = (
    "xavier",
    "caffexavier",
    "gaussian",
    "uniform",
    "unitball",
    "constant",
    "selu",
)


def init_weight(
    scheme: WeightInitScheme,
    scale: float,
    bias: float,
    n_in: int,
    n_out: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one weight matrix W [n_in, n_out] (float32, z = x·W + b) and its bias b [n_out].

    `scheme` is a canonical name from `training.dsstne.config` (lower case); `scale` and `bias` are the
    layer's WeightInit Scale and Bias. Tensors are made on the generator's device.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"weight shape must be positive, got n_in={n_in}, n_out={n_out}")
    device = generator.device
    shape = (n_in, n_out)

    def uniform(low: float, high: float) -> torch.Tensor:
        # DSSTNE's form: u ~ U(0, 1) scaled by the width and shifted by the low end.
        u = torch.rand(shape, generator=generator, dtype=torch.float32, device=device)
        return u * (high - low) + low

    def normal(std: float) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=torch.float32, device=device) * std

    if scheme == "xavier":
        half = 0.5 * scale * math.sqrt(6.0 / (n_in + n_out))
        weight = uniform(-half, half)
    elif scheme == "caffexavier":
        half = scale * math.sqrt(3.0 / n_out)
        weight = uniform(-half, half)
    elif scheme == "uniform":
        weight = uniform(-scale, scale)
    elif scheme == "gaussian":
        weight = normal(scale)
    elif scheme == "unitball":
        weight = uniform(0.0, scale)
    elif scheme == "selu":
        weight = normal(1.0 / n_in)  # std 1/n_in as DSSTNE has it (not the usual 1/sqrt(n_in))
    elif scheme == "constant":
        weight = torch.full(shape, scale, dtype=torch.float32, device=device)
    else:
        raise ValueError(
            f"unknown weight initialisation scheme {scheme!r} (expected one of {', '.join(SCHEMES)})"
        )
    return weight, torch.full((n_out,), bias, dtype=torch.float32, device=device)
