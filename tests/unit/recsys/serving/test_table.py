"""The serving table's layout: keys, compact lists, numbers DynamoDB accepts, version ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.serving import table
from recsys.serving.table import VersionError, check_version, decode_list, encode_list, number


def test_keys() -> None:
    assert table.user_key("v1", "u#1") == "v1#u#u#1"
    assert table.item_key("v1", "i") == "v1#i#i"
    assert (table.popular_key("v1"), table.version_key("v1")) == ("v1#popular", "version#v1")


@pytest.mark.parametrize(
    ("value", "text"), [(0.5, "0.5"), (1e-9, "0.000000001"), (123456789.0, "123457000"), (-2.0, "-2")]
)
def test_numbers_are_plain_with_6_significant_digits(value: float, text: str) -> None:
    assert number(value) == text
    assert encode_list("k", ["a"], [value])["scores"]["L"][0]["N"] == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        encode_list("k", ["a", "b"], [1.0, value])


@given(st.lists(st.floats(-1e30, 1e30), min_size=1, max_size=5))
def test_a_list_round_trips_within_6_significant_digits(scores: list[float]) -> None:
    ids = [f"i{n}" for n in range(len(scores))]
    decoded = decode_list(encode_list("k", ids, scores))
    assert decoded.item_ids == tuple(ids)
    assert decoded.scores == pytest.approx(scores, rel=1e-5, abs=1e-300)


@pytest.mark.parametrize("version", ["v1", "fm-20261128T0300Z", "a.b_c:d-1"])
def test_version_ids_accepted(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["", "a#b", "-v", "live", "versions", "version", "v" * 101, "a b"])
def test_version_ids_refused(version: str) -> None:
    with pytest.raises(VersionError):
        check_version(version)
