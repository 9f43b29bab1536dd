"""Ordering, seen-item filtering and the real-time blend, on hand-made numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.serving.ranking import best, blend, ordered
from recsys.serving.table import ScoredList


def test_ties_are_broken_by_item_id_whatever_the_input_order() -> None:
    pairs = [("b", 1.0), ("c", 2.0), ("a", 1.0), ("d", 1.0)]
    assert ordered(pairs) == [("c", 2.0), ("a", 1.0), ("b", 1.0), ("d", 1.0)]
    assert ordered(reversed(pairs)) == ordered(pairs)


@given(st.lists(st.tuples(st.text(max_size=3), st.floats(-1, 1, allow_nan=False)), unique_by=lambda p: p[0]))
def test_order_does_not_depend_on_input_order(pairs: list[tuple[str, float]]) -> None:
    assert ordered(pairs) == ordered(sorted(pairs, reverse=True))


def test_best_removes_seen_items_then_takes_k() -> None:
    scored = ScoredList(("a", "b", "c", "d"), (0.9, 0.8, 0.7, 0.6))
    assert best(scored, 2, {"a"}) == [("b", 0.8), ("c", 0.7)]
    assert best(scored, 10, {"a", "b", "c", "d"}) == []


def test_blend_scales_both_scores_and_weights_them() -> None:
    precomputed = ScoredList(("a", "b", "c"), (3.0, 2.0, 1.0))  # p: a=1, b=0.5, c=0
    fold_in = {"a": 0.0, "b": 1.0, "c": 2.0, "x": 4.0}  # over candidates a,b,c,x: q = 0, .25, .5, 1
    result = blend(precomputed, [("x", 4.0)], fold_in.get, set(), k=4, weight=0.5)
    assert [i for i, _ in result] == ["a", "x", "b", "c"]  # a and x tie at 0.5: the id decides
    assert dict(result) == pytest.approx({"a": 0.5, "x": 0.5, "b": 0.375, "c": 0.25})


def test_blend_weight_1_is_pure_fold_in_and_0_pure_precomputed() -> None:
    precomputed = ScoredList(("a", "b"), (2.0, 1.0))
    fold_in = {"a": 0.0, "b": 1.0}
    assert [i for i, _ in blend(precomputed, [], fold_in.get, set(), 2, 1.0)] == ["b", "a"]
    assert [i for i, _ in blend(precomputed, [], fold_in.get, set(), 2, 0.0)] == ["a", "b"]


def test_blend_without_a_precomputed_list_is_the_scaled_fold_in() -> None:
    fold_in = {"x": 3.0, "y": 1.0, "z": 2.0}
    result = blend(None, [("x", 3.0), ("z", 2.0), ("y", 1.0)], fold_in.get, {"z"}, 5, 0.5)
    assert result == [("x", 1.0), ("y", 0.0)]  # z consumed; scaled over the candidates left


def test_items_without_a_vector_get_fold_in_zero() -> None:
    precomputed = ScoredList(("a", "b"), (1.0, 1.0))  # a constant list scales to 1
    result = blend(precomputed, [], {"a": 5.0}.get, set(), 2, 0.5)
    assert result == [("a", 1.0), ("b", 0.5)]
