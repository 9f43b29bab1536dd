"""Output keys: deterministic per source version, safe, and apart for different sources."""

from __future__ import annotations

from datetime import date

import pytest

from recsys.csv_contract import Kind
from recsys.ingest import layout


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("catalog/movies.csv", Kind.CATALOG),
        ("transactions/2026/01/ratings.csv", Kind.TRANSACTIONS),
        ("Transactions/ratings.csv", None),
        ("quarantine/transactions/ratings.csv", None),
        ("ratings.csv", None),
    ],
)
def test_kind_from_prefix(key: str, kind: Kind | None) -> None:
    assert layout.kind_for_key(key) is kind


def test_curated_key_layout() -> None:
    key = layout.curated_key(Kind.TRANSACTIONS, date(2026, 11, 28), "transactions/2026/my file.csv", "v1.a")
    prefix = "curated/ingest/kind=transactions/ingest_date=2026-11-28/2026__my_file.csv-"
    assert key.startswith(prefix)
    assert key.endswith("-v1.a.parquet")
    assert key == layout.curated_key(
        Kind.TRANSACTIONS, date(2026, 11, 28), "transactions/2026/my file.csv", "v1.a"
    )


def test_keys_that_flatten_alike_stay_apart() -> None:
    names = {
        layout.safe_name(k) for k in ("transactions/a/b.csv", "transactions/a_b.csv", "transactions/a__b.csv")
    }
    assert len(names) == 3


def test_long_and_odd_keys_give_bounded_safe_names() -> None:
    name = layout.safe_name("catalog/" + "é/?*" * 400)
    assert len(name) <= layout.MAX_NAME_CHARS + 9
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def test_version_tags() -> None:
    assert layout.version_tag("3HL4kqtJ", '"abc"') == "3HL4kqtJ"
    assert layout.version_tag("null", "abc") == "etag-abc"  # written while versioning was off
    assert layout.version_tag(None, '"abc-2"') == "etag-abc-2"
    with pytest.raises(ValueError, match="version id or an ETag"):
        layout.version_tag(None, None)


def test_quarantine_keys_keep_the_original_key() -> None:
    assert layout.quarantine_key("transactions/a b.csv") == "quarantine/transactions/a b.csv"
    assert layout.errors_key("transactions/a b.csv") == "quarantine/transactions/a b.csv.errors.json"
