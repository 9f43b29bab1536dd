"""Ordering, seen-item filtering and the blend of precomputed and real-time scores (pure Python).

Every list the API returns is ordered by (score descending, item id ascending), so equal scores always
come back in the same order.

The real-time blend, for a user with recent events:

    candidates = precomputed list ∪ the best fold-in items, minus the items the user consumed
    p(i) = the precomputed score, min-max scaled to [0, 1] over the precomputed list (0 if i is not in it)
    q(i) = the fold-in score u·v_i + b_i, min-max scaled to [0, 1] over the candidates (0 without a vector)
    score(i) = w·q(i) + (1 − w)·p(i)        (w = ServingSettings.realtime_weight, 0.5 by default)

For a user without a precomputed list (new since training), score(i) = q(i). A constant list scales to 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from recsys.serving.table import ScoredList

Scored = tuple[str, float]
SCORE_DECIMALS = 6


def ordered(pairs: Iterable[Scored]) -> list[Scored]:
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def best(scored: ScoredList, k: int, exclude: frozenset[str] | set[str] = frozenset()) -> list[Scored]:
    """The list minus excluded items, in the deterministic order, first k."""
    pairs = ((i, s) for i, s in zip(scored.item_ids, scored.scores, strict=True) if i not in exclude)
    return ordered(pairs)[:k]


def _scaled(values: dict[str, float]) -> dict[str, float]:
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    if high == low:
        return dict.fromkeys(values, 1.0)
    return {i: (v - low) / (high - low) for i, v in values.items()}


def blend(
    precomputed: ScoredList | None,
    fold_in_best: Sequence[Scored],
    fold_in_score: Callable[[str], float | None],
    exclude: frozenset[str] | set[str],
    k: int,
    weight: float,
) -> list[Scored]:
    """The real-time answer (see the module docstring for the formula)."""
    p_raw: dict[str, float] = {}
    if precomputed is not None:
        p_raw = {
            i: s for i, s in zip(precomputed.item_ids, precomputed.scores, strict=True) if i not in exclude
        }
    candidates = list(p_raw)
    candidates += [i for i, _ in fold_in_best if i not in exclude and i not in p_raw]
    q_raw = {i: score for i in candidates if (score := fold_in_score(i)) is not None}
    p, q = _scaled(p_raw), _scaled(q_raw)
    if precomputed is None:
        scores = {i: q.get(i, 0.0) for i in candidates}
    else:
        scores = {i: weight * q.get(i, 0.0) + (1.0 - weight) * p.get(i, 0.0) for i in candidates}
    return ordered(scores.items())[:k]


def rounded(score: float) -> float:
    return round(score, SCORE_DECIMALS)
