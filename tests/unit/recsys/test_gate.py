"""The publish gate: margin over popularity (relative), tolerance against the live model (absolute),
the best candidate wins, unreadable candidates are rejected with their reason."""

from __future__ import annotations

import math

import pytest

from recsys.gate import GateSettingsError, decide

POP = {"precision@10": 0.10}


def test_best_candidate_that_beats_popularity_wins() -> None:
    d = decide({"fm": {"precision@10": 0.12}, "autoencoder": {"precision@10": 0.15}}, POP, None)
    assert d.winner == "autoencoder"
    assert "fm" in d.rejected
    assert "below autoencoder" in d.rejected["fm"]
    assert "no live model" in d.reason


def test_margin_is_relative_to_popularity() -> None:
    assert decide({"fm": {"precision@10": 0.1099}}, POP, None).winner is None
    assert decide({"fm": {"precision@10": 0.1101}}, POP, None).winner == "fm"
    assert decide({"fm": {"precision@10": 0.1099}}, POP, None, margin=0.05).winner == "fm"


def test_not_worse_than_live_by_more_than_tolerance() -> None:
    live = {"precision@10": 0.20}
    low = decide({"fm": {"precision@10": 0.17}}, POP, live)
    assert low.winner is None
    assert "worse than the live model" in low.rejected["fm"]
    assert "live model stays" in low.reason
    assert decide({"fm": {"precision@10": 0.185}}, POP, live).winner == "fm"


def test_corrupt_or_unevaluated_candidates_are_rejected() -> None:
    d = decide(
        {"fm": {"precision@10": math.nan}, "autoencoder": {"precision@10": 0.3}, "x": {}},
        POP,
        None,
        failed={"autoencoder": "recommendations/part-0.parquet: not Parquet"},
    )
    assert d.winner is None
    assert d.rejected["autoencoder"].startswith("output unusable: recommendations/part-0.parquet")
    assert "no finite precision@10" in d.rejected["fm"]
    assert "x" in d.rejected


def test_other_metric_and_ties_are_deterministic() -> None:
    cands = {"b": {"ndcg@10": 0.3}, "a": {"ndcg@10": 0.3}}
    assert decide(cands, {"ndcg@10": 0.1}, None, metric="ndcg@10").winner == "a"


def test_zero_popularity_needs_a_positive_value() -> None:
    assert decide({"fm": {"precision@10": 0.0}}, {"precision@10": 0.0}, None).winner is None
    assert decide({"fm": {"precision@10": 0.01}}, {"precision@10": 0.0}, None).winner == "fm"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(GateSettingsError, match="popularity"):
        decide({"fm": {"precision@10": 0.2}}, {}, None)
    with pytest.raises(GateSettingsError, match="margin"):
        decide({"fm": {"precision@10": 0.2}}, POP, None, margin=-0.1)
