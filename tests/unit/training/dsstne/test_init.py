"""Weight initialisation (dsstne.md §4.3): each scheme's range or spread, the bias, seeding."""

from __future__ import annotations

import math
import typing

import pytest
import torch

from training.dsstne.config import WeightInitScheme
from training.dsstne.init import SCHEMES, init_weight

N_IN, N_OUT = 256, 384  # 98,304 draws: sample statistics within a few per cent


def draw(scheme: WeightInitScheme, scale: float = 1.0, bias: float = 0.0, seed: int = 12134) -> torch.Tensor:
    weight, _ = init_weight(scheme, scale, bias, N_IN, N_OUT, torch.Generator().manual_seed(seed))
    return weight


def uniform_std(low: float, high: float) -> float:
    return (high - low) / math.sqrt(12.0)


def test_every_config_scheme_is_implemented() -> None:
    assert set(SCHEMES) == set(typing.get_args(WeightInitScheme))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_shapes_dtype_and_constant_bias(scheme: WeightInitScheme) -> None:
    weight, bias = init_weight(scheme, 0.5, -10.2, 3, 5, torch.Generator().manual_seed(0))
    assert weight.shape == (3, 5)
    assert weight.dtype == bias.dtype == torch.float32
    assert bias.shape == (5,)
    assert torch.equal(bias, torch.full((5,), -10.2))


def test_xavier_is_half_the_glorot_range() -> None:
    scale = 2.0
    half = 0.5 * scale * math.sqrt(6.0 / (N_IN + N_OUT))
    weight = draw("xavier", scale)
    assert weight.abs().max().item() <= half
    assert weight.max().item() > 0.99 * half
    assert weight.min().item() < -0.99 * half
    assert abs(weight.mean().item()) < 0.02 * half
    assert weight.std().item() == pytest.approx(uniform_std(-half, half), rel=0.02)


def test_caffe_xavier_uses_the_fan_out() -> None:
    half = 0.5 * math.sqrt(3.0 / N_OUT)
    weight = draw("caffexavier", 0.5)
    assert weight.abs().max().item() <= half
    assert weight.max().item() > 0.99 * half
    assert weight.std().item() == pytest.approx(uniform_std(-half, half), rel=0.02)


def test_uniform_spans_minus_to_plus_scale() -> None:
    weight = draw("uniform", 0.3)
    assert weight.abs().max().item() <= 0.3
    assert weight.min().item() < -0.297
    assert weight.max().item() > 0.297
    assert weight.std().item() == pytest.approx(uniform_std(-0.3, 0.3), rel=0.02)


def test_unit_ball_spans_zero_to_scale() -> None:
    weight = draw("unitball", 0.4)
    assert weight.min().item() >= 0.0
    assert weight.max().item() <= 0.4
    assert weight.mean().item() == pytest.approx(0.2, rel=0.02)


def test_gaussian_std_is_the_scale() -> None:
    weight = draw("gaussian", 0.01)
    assert abs(weight.mean().item()) < 0.0002
    assert weight.std().item() == pytest.approx(0.01, rel=0.02)


def test_selu_std_is_one_over_fan_in() -> None:
    weight = draw("selu", scale=123.0)  # Scale is ignored
    assert weight.std().item() == pytest.approx(1.0 / N_IN, rel=0.02)


def test_constant_is_the_scale_everywhere() -> None:
    weight = draw("constant", 0.25)
    assert torch.equal(weight, torch.full((N_IN, N_OUT), 0.25))


def test_seeded_generator_is_deterministic() -> None:
    for scheme in ("xavier", "gaussian"):
        assert torch.equal(draw(scheme, seed=7), draw(scheme, seed=7))
        assert not torch.equal(draw(scheme, seed=7), draw(scheme, seed=8))


def test_bad_arguments() -> None:
    generator = torch.Generator()
    with pytest.raises(ValueError, match="unknown weight initialisation scheme 'he'"):
        init_weight("he", 1.0, 0.0, 2, 2, generator)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be positive"):
        init_weight("xavier", 1.0, 0.0, 0, 2, generator)
