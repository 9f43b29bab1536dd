"""The publish gate: which candidate model (if any) replaces the live one.

A candidate is published only if it
- beats the popularity baseline by `margin`, relative: value >= popularity × (1 + margin), and > it;
- is not worse than the live model by more than `tolerance`, absolute: value >= live − tolerance;
- was evaluated at all: a candidate whose output folder could not be read (passed in `failed`, or
  with its metric missing or not a finite number) is rejected with that reason.
Of the candidates that pass, the best on `metric` wins (ties: the name that sorts first, so the
decision is reproducible). No winner means the live model stays; `reason` says why in one line, and
`rejected` gives each refused candidate's reason. The state machine's Gate step and `recsys demo`
both call `decide`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_METRIC = "precision@10"
DEFAULT_MARGIN = 0.10
DEFAULT_TOLERANCE = 0.02


class GateSettingsError(ValueError):
    """The metric, margin or tolerance is unusable (the popularity baseline lacks the metric, …)."""


@dataclass(frozen=True)
class GateDecision:
    winner: str | None
    reason: str
    rejected: dict[str, str] = field(default_factory=dict)  # candidate → why it was not published


def _value(metrics: Mapping[str, float] | None, metric: str) -> float | None:
    if not metrics or metric not in metrics:
        return None
    try:
        value = float(metrics[metric])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def decide(
    candidates: Mapping[str, Mapping[str, float]],
    popularity: Mapping[str, float],
    live: Mapping[str, float] | None,
    *,
    metric: str = DEFAULT_METRIC,
    margin: float = DEFAULT_MARGIN,
    tolerance: float = DEFAULT_TOLERANCE,
    failed: Mapping[str, str] | None = None,
) -> GateDecision:
    """The gate's verdict over `candidates` (name → metrics); `failed`: name → why it has no metrics."""
    if not math.isfinite(margin) or margin < 0 or not math.isfinite(tolerance) or tolerance < 0:
        raise GateSettingsError(f"margin and tolerance must be finite and >= 0 (got {margin}, {tolerance})")
    baseline = _value(popularity, metric)
    if baseline is None:
        raise GateSettingsError(f"the popularity baseline has no finite {metric!r}")
    bar = baseline * (1 + margin)
    live_value = _value(live, metric)
    floor = None if live_value is None else live_value - tolerance

    rejected: dict[str, str] = {}
    passed: dict[str, float] = {}
    for name, why in sorted((failed or {}).items()):
        rejected[name] = f"output unusable: {why}"
    for name in sorted(candidates):
        if name in rejected:
            continue
        value = _value(candidates[name], metric)
        if value is None:
            rejected[name] = f"no finite {metric} (evaluation failed or output unreadable)"
        elif value < bar or value <= baseline:
            rejected[name] = (
                f"{metric} {value:.4f} does not beat popularity {baseline:.4f} by {margin:.0%} "
                f"(needs >= {bar:.4f})"
            )
        elif floor is not None and value < floor:
            rejected[name] = (
                f"{metric} {value:.4f} is worse than the live model's {live_value:.4f} by more than "
                f"{tolerance:.4f}"
            )
        else:
            passed[name] = value

    if not passed:
        details = "; ".join(f"{n}: {r}" for n, r in rejected.items()) or "no candidates"
        return GateDecision(None, f"nothing published, the live model stays ({details})", rejected)
    winner = min(passed, key=lambda n: (-passed[n], n))
    others = [n for n in passed if n != winner]
    for name in others:
        rejected[name] = f"{metric} {passed[name]:.4f} is below {winner}'s {passed[winner]:.4f}"
    live_part = "no live model" if live_value is None else f"live {live_value:.4f}"
    reason = (
        f"{winner}: {metric} {passed[winner]:.4f} beats popularity {baseline:.4f} by "
        f"{(passed[winner] / baseline - 1) if baseline > 0 else math.inf:.0%} ({live_part})"
    )
    return GateDecision(winner, reason, rejected)
