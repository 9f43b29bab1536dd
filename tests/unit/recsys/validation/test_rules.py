"""Each rule of the CSV contract, on a small file made by the test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recsys.validation import ValidationReport

Check = Callable[..., ValidationReport]
HEADER = b"user_id,item_id,timestamp,rating\n"


def reasons(report: ValidationReport) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.column, e.reason) for e in report.errors]


def test_valid_file_exits_zero(check: Check) -> None:
    report = check(HEADER + b"u1,i1,1537799250,4.5\nu2,i2,1537799251,\n")
    assert (report.exit_code, report.rows_total, report.rows_valid, report.accepted) == (0, 2, 2, True)
    assert report.errors == []


def test_bom_and_crlf_are_accepted(check: Check) -> None:
    report = check(
        b"\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,29,3,1260759179\r\n"
    )
    assert (report.exit_code, report.rows_valid) == (0, 2)
    assert report.columns == {
        "userId": "user_id",
        "movieId": "item_id",
        "rating": "rating",
        "timestamp": "timestamp",
    }


def test_header_names_are_case_insensitive_and_trimmed(check: Check) -> None:
    report = check(b"USERID , Item_Id,TimeStamp\nu,i,1\n")
    assert report.exit_code == 0


def test_quoted_commas_and_quotes(check: Check) -> None:
    report = check(
        b'item_id,title,genres\n1,"American President, The (1995)",Comedy|Drama\n'
        b'2,"She said ""hi""",\n3,plain,\n',
        "catalog",
    )
    assert (report.exit_code, report.rows_valid) == (0, 3)


@pytest.mark.parametrize(
    "timestamp",
    [
        b"1537799250",
        b"1537799250.125",
        b"2018-09-24",
        b"2018-09-24T14:27:30",
        b"2018-09-24 14:27",
        b"2018-09-24T14:27:30Z",
        b"2018-09-24T14:27:30+05:30",
        b"2018-09-24T14:27:30.123-08:00",
        b"20180924T142730Z",
    ],
)
def test_iso_and_epoch_timestamps(check: Check, timestamp: bytes) -> None:
    assert check(HEADER + b"u,i," + timestamp + b",1\n").exit_code == 0


@pytest.mark.parametrize(
    "timestamp",
    [
        b"yesterday",
        b"2018-02-30",
        b"2018-13-01T00:00:00",
        b"1537799250000",
        b"-5",
        b"2018-09-24T25:00",
        b"0x10",
    ],
)
def test_bad_timestamp(check: Check, timestamp: bytes) -> None:
    report = check(HEADER + b"u,i," + timestamp + b",1\n")
    assert report.exit_code == 1
    [(line, column, reason)] = reasons(report)
    assert (line, column) == (2, "timestamp")
    assert "not a timestamp" in reason


def test_missing_timestamp(check: Check) -> None:
    assert reasons(check(HEADER + b"u,i,,1\n")) == [(2, "timestamp", "missing timestamp")]


@pytest.mark.parametrize("rating", [b"NaN", b"nan", b"inf", b"-Infinity", b"1e999", b"four", b"1_0"])
def test_rating_must_be_a_finite_number(check: Check, rating: bytes) -> None:
    [(line, column, reason)] = reasons(check(HEADER + b"u,i,1," + rating + b"\n"))
    assert (line, column) == (2, "rating")
    assert "finite number" in reason


@pytest.mark.parametrize("rating", [b"", b"4", b"-1.5", b"+3", b"4.", b".5", b"2e0"])
def test_good_ratings(check: Check, rating: bytes) -> None:
    assert check(HEADER + b"u,i,1," + rating + b"\n").exit_code == 0


@pytest.mark.parametrize("value", [b"", b"   "])
def test_empty_id(check: Check, value: bytes) -> None:
    assert reasons(check(HEADER + value + b",i,1,1\n")) == [(2, "user_id", "empty user_id")]


def test_id_length_limit(check: Check) -> None:
    assert check(HEADER + b"u" * 256 + b",i,1,1\n").exit_code == 0
    [(line, column, reason)] = reasons(check(HEADER + b"u" * 257 + b",i,1,1\n"))
    assert (line, column) == (2, "user_id")
    assert "257 characters" in reason


def test_id_with_control_character(check: Check) -> None:
    [(_, column, reason)] = reasons(check(HEADER + b"u\x01,i,1,1\n"))
    assert column == "user_id"
    assert "control character" in reason


def test_short_and_long_rows(check: Check) -> None:
    report = check(HEADER + b"u,i,1\nu,i,1,1\nu,i,1,1,extra\n")
    assert reasons(report) == [
        (2, None, "expected 4 fields, found 3"),
        (4, None, "expected 4 fields, found 5"),
    ]
    assert (report.rows_total, report.rows_valid) == (3, 1)


def test_several_errors_in_one_file(check: Check) -> None:
    report = check(HEADER + b"u,i,1,1\n,i,1,NaN\nu,,x,1\nu,i,1,1\n")
    assert [(line, column) for line, column, _ in reasons(report)] == [
        (3, "user_id"),
        (3, "rating"),
        (4, "item_id"),
        (4, "timestamp"),
    ]
    assert (report.rows_total, report.rows_valid, report.exit_code) == (4, 2, 1)


def test_non_utf8_byte_is_reported_at_its_line(check: Check) -> None:
    report = check(HEADER + b"u,i,1,1\nu\xe9,i,1,1\nu,i,1,1\n")
    assert [(line, reason) for line, _, reason in reasons(report)] == [
        (3, "not UTF-8: byte 0xe9 at position 2")
    ]
    assert report.rows_valid == 2


def test_field_over_the_size_limit(check: Check) -> None:
    big = b"x" * 2_000_000
    report = check(b"item_id,title\n1,ok\n2," + big + b"\n3,fine\n", "catalog")
    [(line, column, reason)] = reasons(report)
    assert (line, column) == (3, "title")
    assert "2,000,000 characters" in reason
    assert report.rows_valid == 2


def test_unterminated_quote_reports_its_start_and_goes_on(check: Check) -> None:
    report = check(b'item_id,title\n1,ok\n2,"never closed\n3,next\n4,last\n', "catalog")
    assert [(line, reason.split(":")[0]) for line, _, reason in reasons(report)] == [
        (3, "unterminated quoted field")
    ]
    assert report.rows_valid == 3  # lines 2, 4, 5


def test_text_after_closing_quote(check: Check) -> None:
    [(line, _, reason)] = reasons(check(b'item_id,title\n1,"a"b\n', "catalog"))
    assert line == 2
    assert reason.startswith("malformed quoted field")


def test_multiline_quoted_field_keeps_physical_line_numbers(check: Check) -> None:
    report = check(b'item_id,title\n1,"two\nlines"\n2,"three\nphysical\nlines"\n,bad\n', "catalog")
    assert reasons(report) == [(7, "item_id", "empty item_id")]
    assert report.rows_valid == 2


def test_duplicate_catalog_id_is_an_error_at_the_later_line(check: Check) -> None:
    report = check(b"item_id,title\n1,a\n2,b\n1,again\n", "catalog")
    assert reasons(report) == [(4, "item_id", "duplicate item_id '1' (first at line 2)")]
    assert report.rows_valid == 2


def test_blank_lines_are_skipped(check: Check) -> None:
    report = check(HEADER + b"u,i,1,1\n\n\r\nu,i,1,1\n")
    assert (report.exit_code, report.rows_total) == (0, 2)


def test_catalog_keeps_extra_columns_and_transactions_ignore_them(check: Check) -> None:
    catalog = check(b"movieId,title,genres,year\n1,a,Drama,1995\n", "catalog")
    assert catalog.exit_code == 0
    assert catalog.ignored_columns == []
    transactions = check(HEADER.rstrip(b"\n") + b",source\nu,i,1,1,web\n")
    assert transactions.exit_code == 0
    assert transactions.ignored_columns == ["source"]


# --- unusable files (exit 2) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (b"", "catalog", "empty file"),
        (b"\xef\xbb\xbf\r\n", "catalog", "empty file"),
        (b"user_id,item_id\nu,i\n", "transactions", "missing required column(s) for transactions: timestamp"),
        (b"title\nx\n", "catalog", "missing required column(s) for catalog: item_id"),
        (b"userId,user_id,item_id,timestamp\n", "transactions", "duplicate column"),
        (b"item_id,Title,TITLE\n1,a,b\n", "catalog", "duplicate column"),
        (b"item_id,\n1,a\n", "catalog", "header cell 2 is empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "catalog", "not a text file"),
        (b"\xff\xfe\xfa\xc3\x28garbage\n1\n", "catalog", "header is not UTF-8"),
        (b"item_id,title\n", "catalog", "no data rows"),
        (b"user_id;item_id;timestamp\nu;i;1\n", "transactions", "separated by commas"),
    ],
)
def test_unusable_files(check: Check, content: bytes, kind: str, expected: str) -> None:
    report = check(content, kind)
    assert report.exit_code == 2
    assert not report.accepted
    [error] = report.errors
    assert error.line == 1
    assert expected in error.reason


def test_error_list_is_capped(write: Callable[[bytes, str], object]) -> None:
    from recsys.validation import validate_file

    path = write(HEADER + b",i,1,1\n" * 50, "many.csv")
    report = validate_file(path, "transactions", max_errors=10)  # type: ignore[arg-type]
    assert (len(report.errors), report.errors_truncated, report.rows_valid) == (10, 40, 0)
    assert not report.accepted
    assert report.exit_code == 1
