"""Speed never changes a verdict: the Arrow fast path, the exact csv path and any block size agree."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.csv_contract import Kind
from recsys.validation import UnusableFileError, values
from recsys.validation.stream import CsvValidator, quotes_well_formed

# Values drawn from a mix of good and bad shapes so that most generated files have some errors.
_IDS = st.one_of(
    st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), st.sampled_from(["", " ", "a\x01", "x" * 257])
)
_TIMES = st.one_of(
    st.integers(0, 4_102_444_799).map(str),
    st.sampled_from(["2018-09-24T14:27:30Z", "2018-02-30", "2018-09-24 10:00", "nope", "", "1537799250000"]),
)
_RATINGS = st.sampled_from(["", "4", "4.5", "NaN", "inf", "x", "+1", "1e3"])
_TITLES = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=8),
    st.sampled_from(['"quoted, comma"', '"multi\nline"', '"unterminated', '"a"b', "é"]),
)


def _field(value: str) -> str:
    if value.startswith('"') or not any(c in value for c in ',"\n\r'):
        return value  # raw, possibly malformed on purpose
    return '"' + value.replace('"', '""') + '"'


@st.composite
def transaction_files(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.tuples(_IDS, _IDS, _TIMES, _RATINGS), max_size=30))
    body = []
    for row in rows:
        fields = [_field(v) for v in row]
        if draw(st.integers(0, 9)) == 0:
            fields = fields[: draw(st.integers(0, 3))]  # a short row, or a blank line
        body.append(",".join(fields))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    raw = ("user_id,item_id,timestamp,rating" + ending + ending.join(body) + ending).encode()
    if draw(st.booleans()) and len(raw) > 40:
        at = draw(st.integers(35, len(raw) - 1))
        raw = raw[:at] + b"\xff" + raw[at:]  # a byte that is not UTF-8
    return raw


@st.composite
def catalog_files(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.tuples(st.sampled_from(["1", "2", "3", "4", "5", ""]), _TITLES), max_size=25))
    body = "\n".join(f"{_field(i)},{_field(t) if not t.startswith(chr(34)) else t}" for i, t in rows)
    return ("item_id,title\n" + body + "\n").encode()


def _outcome(raw: bytes, kind: Kind, *, block: int, fast: bool) -> tuple[object, ...]:
    validator = CsvValidator(io.BytesIO(raw), kind, block_bytes=block, fast=fast)
    try:
        batches = list(validator.batches())
    except UnusableFileError as exc:
        return ("unusable", exc.error)
    errors = [(e.line, e.column, e.reason) for b in batches for e in b.errors]
    rejected = [(r.line, r.raw) for b in batches for r in b.rejected]
    tables = [b.valid for b in batches if b.valid.num_rows]
    valid = pa.concat_tables(tables).to_pylist() if tables else []
    lines = [int(n) for b in batches for n in b.lines]
    assert len(lines) == len(valid)  # one start line per accepted row
    return sum(b.rows_total for b in batches), errors, rejected, valid, lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=transaction_files(), block=st.integers(8, 64))
def test_transactions_same_outcome_on_every_path(raw: bytes, block: int) -> None:
    reference = _outcome(raw, Kind.TRANSACTIONS, block=1 << 20, fast=False)
    assert _outcome(raw, Kind.TRANSACTIONS, block=1 << 20, fast=True) == reference
    assert _outcome(raw, Kind.TRANSACTIONS, block=block, fast=True) == reference


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=catalog_files(), block=st.integers(8, 64))
def test_catalogs_same_outcome_on_every_path(raw: bytes, block: int) -> None:
    reference = _outcome(raw, Kind.CATALOG, block=1 << 20, fast=False)
    assert _outcome(raw, Kind.CATALOG, block=1 << 20, fast=True) == reference
    assert _outcome(raw, Kind.CATALOG, block=block, fast=True) == reference


# --- each vectorised rule accepts only what the Python rule accepts ------------------------------------

_ANY_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
_TIMESTAMP_LIKE = st.one_of(
    _ANY_TEXT,
    st.from_regex(
        r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?)?(Z|[+-]\d{2}:\d{2})?", fullmatch=True
    ),
    st.from_regex(r"[+-]?\d{1,12}(\.\d{1,10})?", fullmatch=True),
)


def _agree(strings: list[str], mask: pa.Array, check: object) -> None:
    for value, fast_ok in zip(strings, mask.to_pylist(), strict=True):
        if fast_ok:
            assert check(value) is None, value  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(st.lists(_TIMESTAMP_LIKE, min_size=1, max_size=20))
def test_timestamp_mask_is_a_subset_of_the_rule(strings: list[str]) -> None:
    _agree(strings, values.timestamp_ok(pa.array(strings, pa.string())), values.check_timestamp)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ANY_TEXT, st.from_regex(r"-?\d{1,12}(\.\d{1,12})?", fullmatch=True)), min_size=1))
def test_rating_mask_is_a_subset_of_the_rule(strings: list[str]) -> None:
    _agree(strings, values.rating_ok(pa.array(strings, pa.string())), values.check_rating)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ANY_TEXT, st.text(min_size=250, max_size=260)), min_size=1))
def test_id_mask_is_a_subset_of_the_rule(strings: list[str]) -> None:
    _agree(strings, values.id_ok(pa.array(strings, pa.string())), lambda v: values.check_id(v, "id"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_ANY_TEXT, st.text(min_size=60, max_size=70)), min_size=1))
def test_event_type_mask_is_a_subset_of_the_rule(strings: list[str]) -> None:
    _agree(strings, values.event_type_ok(pa.array(strings, pa.string())), values.check_event_type)


@settings(max_examples=400, deadline=None)
@given(body=st.text(alphabet='ab1,"\n\r', max_size=80), block=st.integers(4, 32))
def test_raw_quote_soup_same_outcome_on_every_path(body: str, block: int) -> None:
    # Arbitrary mixes of quotes, separators and line breaks: whatever the fast path accepts, it must
    # read exactly as Python's csv module does.
    raw = b"item_id,title\n" + body.encode()
    reference = _outcome(raw, Kind.CATALOG, block=1 << 20, fast=False)
    assert _outcome(raw, Kind.CATALOG, block=1 << 20, fast=True) == reference
    assert _outcome(raw, Kind.CATALOG, block=block, fast=True) == reference


@pytest.mark.parametrize(
    ("chunk", "well_formed"),
    [
        (b'1,"a"\n', True),
        (b'1,"a,b",""\r\n', True),
        (b'"a""b",x\n', True),
        (b'"""",1\n', True),
        (b'a,"""b"""\n', True),
        (b'"x"', True),
        (b'1,"a"b\n', False),  # text after the closing quote
        (b'1,a"b\n', False),  # a quote inside an unquoted field
        (b'1,"a\nb"\n', False),  # a quoted line break: the exact path reads it
        (b'1,"a"\rb\n', False),  # a carriage return that does not end the line
        (b'1,"""\n', False),  # unbalanced
    ],
)
def test_quotes_well_formed(chunk: bytes, well_formed: bool) -> None:
    assert quotes_well_formed(chunk) is well_formed
