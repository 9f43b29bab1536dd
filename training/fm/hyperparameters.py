"""SageMaker FM hyperparameters: names, defaults and meanings of the built-in algorithm, in one place.

The SageMaker backend sends them (as strings) in CreateTrainingJob; the local trainer reads the very same
object, so a setting means the same thing on both. Defaults are the service's documented ones
(../shared/reference/sagemaker-fm.md §3.1), except that `epochs` is always sent: the service default is 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

PREDICTOR_TYPES = ("binary_classifier", "regressor")
INIT_METHODS = ("normal", "uniform", "constant")
BLOCKS = ("bias", "linear", "factors")


class HyperparameterError(ValueError):
    """A hyperparameter that SageMaker would refuse; the message names it."""


@dataclass(frozen=True, kw_only=True)
class FmHyperparameters:
    """The built-in algorithm's hyperparameters (same names as the service's)."""

    feature_dim: int
    num_factors: int = 64
    predictor_type: str = "binary_classifier"
    epochs: int = 1
    mini_batch_size: int = 1000
    bias_lr: float = 0.1
    linear_lr: float = 0.001
    factors_lr: float = 0.0001
    bias_wd: float = 0.01
    linear_wd: float = 0.001
    factors_wd: float = 0.00001
    bias_init_method: str = "normal"
    bias_init_sigma: float = 0.01
    bias_init_scale: float | None = None
    bias_init_value: float | None = None
    linear_init_method: str = "normal"
    linear_init_sigma: float = 0.01
    linear_init_scale: float | None = None
    linear_init_value: float | None = None
    factors_init_method: str = "normal"
    factors_init_sigma: float = 0.001
    factors_init_scale: float | None = None
    factors_init_value: float | None = None
    clip_gradient: float | None = None
    eps: float | None = None
    rescale_grad: float | None = None

    def __post_init__(self) -> None:
        for name in ("feature_dim", "num_factors", "epochs", "mini_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise HyperparameterError(f"{name}: expected a whole number > 0, got {value!r}")
        if self.predictor_type not in PREDICTOR_TYPES:
            raise HyperparameterError(
                f"predictor_type: expected one of {PREDICTOR_TYPES}, got {self.predictor_type!r}"
            )
        for block in BLOCKS:
            for suffix in ("lr", "wd", "init_sigma", "init_scale"):
                _check_number(self, f"{block}_{suffix}", minimum=0.0)
            _check_number(self, f"{block}_init_value", minimum=None)
            method = getattr(self, f"{block}_init_method")
            if method not in INIT_METHODS:
                raise HyperparameterError(
                    f"{block}_init_method: expected one of {INIT_METHODS}, got {method!r}"
                )
            needed = {"uniform": "init_scale", "constant": "init_value"}.get(method)
            if needed and getattr(self, f"{block}_{needed}") is None:
                raise HyperparameterError(f"{block}_init_method={method} needs {block}_{needed}")
        for name in ("clip_gradient", "eps", "rescale_grad"):
            _check_number(self, name, minimum=None)

    def with_overrides(self, **values: Any) -> FmHyperparameters:
        """A copy with some values replaced (validated again)."""
        return replace(self, **values)

    def to_sagemaker(self) -> dict[str, str]:
        """CreateTrainingJob's HyperParameters: every value a string, unset optional ones left out.

        `epochs` and `mini_batch_size` are always present, so the job never falls back to one epoch.
        """
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            out[name] = value if isinstance(value, str) else _format_number(value)
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "hyperparameters") -> FmHyperparameters:
        """Parse strings (SageMaker's meta.json, CLI `name=value`) or plain values; unknown names fail."""
        types = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise HyperparameterError(f"{source}: unknown hyperparameter(s) {', '.join(unknown)}")
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            kind = str(types[name])
            try:
                if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none")):
                    parsed[name] = None
                elif kind.startswith("int"):
                    parsed[name] = _parse_int(raw)
                elif kind.startswith("float"):
                    parsed[name] = float(raw)
                else:
                    parsed[name] = str(raw)
            except (TypeError, ValueError) as exc:
                raise HyperparameterError(f"{source}: {name}={raw!r} is not a {kind.split()[0]}") from exc
        if "feature_dim" not in parsed:
            raise HyperparameterError(f"{source}: feature_dim is required")
        return cls(**parsed)


def _check_number(hp: FmHyperparameters, name: str, *, minimum: float | None) -> None:
    value = getattr(hp, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HyperparameterError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise HyperparameterError(f"{name}: expected >= {minimum:g}, got {value!r}")


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int):
        return raw
    number = float(raw)
    if not number.is_integer():
        raise ValueError(raw)
    return int(number)


def _format_number(value: float) -> str:
    """Shortest text that reads back to the same value: `64`, `0.001`, `1e-05`."""
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
