"""Every kind of CSV the validator knows ends in the right place: curated, quarantine, or both.

Each case checks the whole accounting: the manifest counts, the curated rows, and the quarantine bytes
(the header and each rejected record as uploaded, or the whole file), so no row can go missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from recsys.csv_contract import Kind
from recsys.ingest.curated import SCHEMAS
from recsys.ingest.manifest import Status

if TYPE_CHECKING:
    from tests.unit.recsys.ingest.conftest import Lake

TX = b"user_id,item_id,timestamp,rating\n"
CAT = b"item_id,title,genres\n"


@dataclass(frozen=True)
class Case:
    content: bytes
    kind: Kind
    status: Status
    valid: int
    bad_lines: tuple[int, ...] = ()  # start lines of the records quarantined (each one physical line)
    whole_file: bool = False


CASES = {
    "good": Case(TX + b"u1,i1,1537799250,4.5\nu2,i2,1537799251,\n", Kind.TRANSACTIONS, Status.ACCEPTED, 2),
    "bom-crlf-movielens-names": Case(
        b"\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,29,3,1260759179\r\n",
        Kind.TRANSACTIONS,
        Status.ACCEPTED,
        2,
    ),
    "iso-timestamps": Case(
        TX + b"u,i,2018-09-24T14:27:30Z,1\nu,i,2018-09-24,2\nu,i,20180924T142730Z,3\n",
        Kind.TRANSACTIONS,
        Status.ACCEPTED,
        3,
    ),
    "blank-lines": Case(TX + b"u,i,1,1\n\n\r\nu,i,1,1\n", Kind.TRANSACTIONS, Status.ACCEPTED, 2),
    "no-final-newline": Case(TX + b"u,i,1,1\nu,i,2,2", Kind.TRANSACTIONS, Status.ACCEPTED, 2),
    "quoted-multiline-catalog": Case(
        CAT + b'1,"American President, The (1995)",Comedy|Drama\n2,"two\nlines",\n3,"say ""hi""",\n',
        Kind.CATALOG,
        Status.ACCEPTED,
        3,
    ),
    "bad-values": Case(
        TX + b"u1,i1,1,1\n,i,1,1\nu,,1,1\nu,i,yesterday,1\nu,i,1,four\nu,i,1537799250000,1\nu9,i9,9,9\n",
        Kind.TRANSACTIONS,
        Status.PARTIAL,
        2,
        (3, 4, 5, 6, 7),
    ),
    "field-counts": Case(
        TX + b"u,i,1\nu,i,1,1\nu,i,1,1,extra\n", Kind.TRANSACTIONS, Status.PARTIAL, 1, (2, 4)
    ),
    "control-character": Case(TX + b"u\x01,i,1,1\nu,i,1,1\n", Kind.TRANSACTIONS, Status.PARTIAL, 1, (2,)),
    "non-utf8-row-crlf": Case(
        TX.replace(b"\n", b"\r\n") + b"u,i,1,1\r\nu\xe9,i,1,1\r\nu,i,1,1\r\n",
        Kind.TRANSACTIONS,
        Status.PARTIAL,
        2,
        (3,),
    ),
    "unterminated-quote": Case(
        b'item_id,title\n1,ok\n2,"never closed\n3,next\n4,last\n', Kind.CATALOG, Status.PARTIAL, 3, (3,)
    ),
    "text-after-quote": Case(b'item_id,title\n1,"a"b\n2,c\n', Kind.CATALOG, Status.PARTIAL, 1, (2,)),
    "duplicate-catalog-id": Case(
        b"item_id,title\n1,a\n2,b\n1,again\n", Kind.CATALOG, Status.PARTIAL, 2, (4,)
    ),
    "huge-field": Case(
        b"item_id,title\n1,ok\n2," + b"x" * 1_100_000 + b"\n3,fine\n", Kind.CATALOG, Status.PARTIAL, 2, (3,)
    ),
    "every-row-bad": Case(TX + b",i,1,1\nu,,1,1\n", Kind.TRANSACTIONS, Status.REJECTED, 0, (2, 3)),
    "bom-only": Case(b"\xef\xbb\xbf\r\n", Kind.CATALOG, Status.REJECTED, 0, whole_file=True),
    "header-only": Case(CAT, Kind.CATALOG, Status.REJECTED, 0, whole_file=True),
    "missing-column": Case(b"user_id,item_id\nu,i\n", Kind.TRANSACTIONS, Status.REJECTED, 0, whole_file=True),
    "duplicate-column": Case(
        b"userId,user_id,item_id,timestamp\nu,u,i,1\n", Kind.TRANSACTIONS, Status.REJECTED, 0, whole_file=True
    ),
    "empty-header-cell": Case(b"item_id,\n1,a\n", Kind.CATALOG, Status.REJECTED, 0, whole_file=True),
    "semicolons": Case(
        b"user_id;item_id;timestamp\nu;i;1\n", Kind.TRANSACTIONS, Status.REJECTED, 0, whole_file=True
    ),
    "not-text-elf": Case(
        b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, Kind.CATALOG, Status.REJECTED, 0, whole_file=True
    ),
    "header-not-utf8": Case(
        b"\xff\xfe\xfa\xc3\x28garbage\n1\n", Kind.CATALOG, Status.REJECTED, 0, whole_file=True
    ),
}


def physical_line(content: bytes, number: int) -> bytes:
    return content.splitlines(keepends=True)[number - 1]


@pytest.mark.parametrize("name", list(CASES))
def test_each_validator_case_lands_in_the_right_place(lake: Lake, name: str) -> None:
    case = CASES[name]
    prefix = "catalog/" if case.kind is Kind.CATALOG else "transactions/"
    obj = lake.upload(f"{prefix}cases/{name}.csv", case.content)

    result = lake.ingest(obj)

    assert result.status is case.status
    assert result.rows_valid == case.valid
    assert result.rows_total == result.rows_valid + result.rows_quarantined
    if case.valid:
        table = lake.curated(result)
        assert table.schema == SCHEMAS[case.kind]
        assert table.num_rows == case.valid
    else:
        assert result.curated_key is None
        assert lake.keys("recsys-test-curated") == []
    item = lake.manifest_item(obj.key, obj.version_id)
    assert (item["status"], item["rows_valid"], item["rows_quarantined"]) == (
        case.status.value,
        case.valid,
        result.rows_quarantined,
    )
    if case.status is Status.ACCEPTED:
        assert lake.keys("recsys-test-ingest", "quarantine/") == []
        return
    if case.whole_file:
        assert lake.quarantined(obj.key) == case.content
    else:
        header = case.content.splitlines(keepends=True)[0]
        assert lake.quarantined(obj.key) == header + b"".join(
            physical_line(case.content, n) for n in case.bad_lines
        )
        assert result.rows_quarantined == len(case.bad_lines)
    report = lake.error_report(obj.key)
    assert report["version"] == obj.version_id
    assert report["status"] == case.status.value
    assert report["errors"], "a quarantined file always says why"
    assert {e["line"] for e in report["errors"]} >= set(case.bad_lines)
    assert lake.open_uploads() == []


def test_a_record_too_long_to_keep_is_reported_and_left_in_the_source_version(lake: Lake) -> None:
    """The validator drops the bytes of a record over 4 MiB (a broken quote, in practice)."""
    content = b"item_id,title\n1,ok\n2," + b"y" * (5 << 20) + b"\n3,fine\n"
    obj = lake.upload("catalog/long.csv", content)

    result = lake.ingest(obj)

    assert (result.status, result.rows_valid, result.rows_quarantined) == (Status.PARTIAL, 2, 1)
    assert "too long to copy" in result.reason
    assert lake.quarantined(obj.key) == b"item_id,title\n"
    [error] = lake.error_report(obj.key)["errors"]
    assert error["line"] == 3
