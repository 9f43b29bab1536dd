"""Ids and k: what the API accepts, and the 400 it gives otherwise (naming the field)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.contracts import MAX_ID_LENGTH, MAX_TOP_K
from recsys.serving.validation import DEFAULT_K, BadRequestError, check_id, parse_k, path_id


@pytest.mark.parametrize(("raw", "expected"), [(None, DEFAULT_K), ("1", 1), ("100", 100), ("010", 10)])
def test_k_accepted(raw: str | None, expected: int) -> None:
    assert parse_k(raw) == expected


@pytest.mark.parametrize(
    "raw", ["0", "101", "abc", "", " 5", "5 ", "-1", "+5", "1.0", "1e2", "٣", "5,6", "99999"]
)
def test_k_rejected(raw: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_k(raw)
    assert caught.value.field == "k"
    assert caught.value.status == 400


@given(st.text(max_size=8))
def test_k_is_accepted_exactly_when_it_is_a_decimal_from_1_to_max(raw: str) -> None:
    valid = raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_TOP_K
    try:
        assert parse_k(raw) == int(raw)
        assert valid
    except BadRequestError:
        assert not valid


@pytest.mark.parametrize("value", ["u1", "a b", "é", "x" * MAX_ID_LENGTH, "movie/1?#%"])
def test_ids_accepted(value: str) -> None:
    assert check_id(value, "user_id") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_ID_LENGTH + 1), "257 characters"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("tab\there", "control character"),
        ("del\x7f", "control character"),
    ],
)
def test_ids_rejected_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(BadRequestError, match=reason) as caught:
        check_id(value, "user_id")
    assert caught.value.field == "user_id"


def test_path_ids_are_percent_decoded_as_utf8() -> None:
    assert path_id("caf%C3%A9%2F1", "item_id", percent_encoded=True) == "café/1"
    assert path_id("caf%C3%A9", "item_id", percent_encoded=False) == "caf%C3%A9"  # HTTP API: already decoded
    with pytest.raises(BadRequestError, match="UTF-8"):
        path_id("%FF%FE", "item_id", percent_encoded=True)
    with pytest.raises(BadRequestError, match="control character"):
        path_id("a%0Ab", "item_id", percent_encoded=True)
    with pytest.raises(BadRequestError, match="longer"):
        path_id("%41" * 4000, "item_id", percent_encoded=True)


def test_error_bodies_are_json_ready_and_carry_retry_after() -> None:
    from recsys.serving.validation import UnavailableError

    error = UnavailableError("busy", retry_after_s=3)
    assert (error.status, error.body(), error.headers()) == (
        503,
        {"error": "unavailable", "message": "busy"},
        {"Retry-After": "3"},
    )
