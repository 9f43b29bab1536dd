"""Streaming validation of one CSV file in bounded memory.

The file is read in blocks and cut into chunks of whole lines. Each chunk takes one of two paths:

- fast: when every record is one line and every quote is well formed, Arrow's C++ parser reads the
  chunk and vectorised masks (`RecordChecker.fast_mask`) pass the rows that are certainly valid; the
  others go through the Python checks, which give the reasons;
- exact: otherwise (blank lines, multi-line quoted fields, broken quotes, bytes that are not UTF-8,
  a record cut by the block boundary) Python's `csv` module parses the chunk line by line, so each
  record is reported at the physical line where it starts and parsing resumes after a broken record.

Both paths apply the same `RecordChecker`, so the verdicts never depend on the path.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys.csv_contract import ITEM_ID, HeaderError, HeaderMapping, Kind, map_header
from recsys.validation.errors import RejectedRecord, RowError, UnusableFileError
from recsys.validation.records import RecordChecker
from recsys.validation.values import bool_numpy

BLOCK_BYTES = 1 << 20  # small blocks keep peak memory low; per-block overhead is negligible at this size
# A record (one line, or several inside quotes) longer than this is reported and skipped: in practice
# it is a quote that was opened and never closed, and the bound keeps memory flat whatever the file.
MAX_RECORD_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"

# Python's csv module caps fields at 128 KiB by default; our own limit (MAX_FIELD_CHARS) is checked per
# field with a clear message, so the module's cap only has to stay above the record bound.
csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_RECORD_BYTES))

_QUOTE, _COMMA, _CR, _LF = (ord(c) for c in '",\r\n')
_FIELD_START = np.array([_COMMA, _LF])
_FIELD_END = np.array([_COMMA, _CR, _LF])


def quotes_well_formed(chunk: bytes) -> bool:
    """True when every quote in `chunk` belongs to a well-formed quoted field that stays on its line.

    Each quote toggles "inside a quoted field", so quotes pair up in order: an opening quote must start
    a field (after a comma or a line break) and a closing one must end it (before a comma or the line
    end), except for a doubled quote inside a field, which closes and reopens at once. Such chunks mean
    the same to Arrow's parser and to Python's csv module; any other quote leaves the chunk to the exact
    path.
    """
    data = np.frombuffer(chunk, dtype=np.uint8)
    quotes = np.flatnonzero(data == _QUOTE)
    if len(quotes) % 2:
        return False
    opens, closes = quotes[0::2], quotes[1::2]
    doubled = closes[:-1] + 1 == opens[1:]  # close then reopen right away: an escaped quote
    before = data[np.maximum(opens - 1, 0)]
    open_ok = np.isin(before, _FIELD_START) | (opens == 0)
    open_ok[1:] |= doubled
    end = len(data) - 1
    after = data[np.minimum(closes + 1, end)]
    close_ok = np.isin(after, _FIELD_END) | (closes == end)
    close_ok[:-1] |= doubled
    cr = after == _CR  # a carriage return after a field must end the line
    close_ok[cr] &= data[np.minimum(closes[cr] + 2, end)] == _LF
    if not (open_ok.all() and close_ok.all()):
        return False
    line_breaks = np.flatnonzero(data == _LF)
    return bool(np.array_equal(np.searchsorted(line_breaks, opens), np.searchsorted(line_breaks, closes)))


_CSV_MESSAGES = (
    ("unexpected end of data", "unterminated quoted field: the quote opened in this record is never closed"),
    ("expected after", "malformed quoted field: text follows the closing quote"),
    ("new-line character seen in unquoted field", "carriage return inside an unquoted field"),
)


@dataclass
class ValidatedBatch:
    """The outcome for a run of consecutive records."""

    rows_total: int
    valid: pa.Table  # accepted rows, canonical column names, every column a string
    errors: list[RowError] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    # The line where each accepted row starts (int64, one per row of `valid`): lineage for ingest.
    lines: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _physical_lines(chunk: bytes) -> list[bytes]:
    """The chunk's lines with their line breaks (the last one may have none)."""
    lines = [part + b"\n" for part in chunk.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def _csv_reason(message: str) -> str:
    for needle, reason in _CSV_MESSAGES:
        if needle in message:
            return reason
    return f"record cannot be parsed: {message}"


class CsvValidator:
    """Validates one file of one kind. Iterate `batches()` once; `mapping` is set when it starts."""

    def __init__(
        self,
        stream: BinaryIO,
        kind: Kind,
        *,
        block_bytes: int = BLOCK_BYTES,
        fast: bool = True,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self._stream = stream
        self._fast = fast
        self.kind = kind
        self._block_bytes = block_bytes
        self._on_progress = on_progress
        self.bytes_read = 0
        self.mapping: HeaderMapping | None = None
        self._checker: RecordChecker | None = None
        self._kept: list[int] = []

    def _read(self) -> bytes:
        data = self._stream.read(self._block_bytes)
        self.bytes_read += len(data)
        if self._on_progress is not None:
            self._on_progress(self.bytes_read)
        return data

    # --- header -----------------------------------------------------------------------------------

    def _read_header(self) -> bytes:
        """Map the header; return the bytes that follow it. Raises UnusableFileError."""
        data = self._read()
        if data.startswith(_BOM):
            data = data[len(_BOM) :]
        while b"\n" not in data and len(data) <= MAX_RECORD_BYTES:
            more = self._read()
            if not more:
                break
            data += more
        if not data.strip():
            raise UnusableFileError("empty file: no header and no rows")
        end = data.find(b"\n")
        if end < 0 and len(data) > MAX_RECORD_BYTES:
            raise UnusableFileError(f"header line is longer than {MAX_RECORD_BYTES:,} bytes")
        raw_header, rest = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
        if b"\x00" in raw_header:
            raise UnusableFileError("not a text file: the first line holds NUL bytes")
        try:
            header_text = raw_header.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise UnusableFileError(
                f"header is not UTF-8 text (byte 0x{raw_header[exc.start]:02x} at position {exc.start + 1})"
            ) from None
        try:
            cells = next(csv.reader([header_text], strict=True))
        except csv.Error as exc:
            raise UnusableFileError(f"header cannot be parsed: {_csv_reason(str(exc))}") from None
        if len(cells) == 1 and any(sep in header_text for sep in ";\t|"):
            raise UnusableFileError(
                f"header has a single column {header_text!r}: fields must be separated by commas"
            )
        try:
            self.mapping = map_header(cells, self.kind)
        except HeaderError as exc:
            raise UnusableFileError(exc.reason, column=exc.column) from None
        self._checker = RecordChecker(self.mapping)
        known = self.mapping.known
        keep_extra = self.kind is Kind.CATALOG
        self._kept = [i for i, n in enumerate(self.mapping.names) if n in known or keep_extra]
        return rest

    # --- the loop ---------------------------------------------------------------------------------

    def batches(self) -> Iterator[ValidatedBatch]:
        buf = self._read_header()
        line = 2
        eof = False
        records = 0
        while True:
            if not eof:
                more = self._read()
                eof = not more
                buf += more
            if eof:
                chunk, buf = buf, b""
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    if len(buf) > MAX_RECORD_BYTES:
                        yield self._overlong_line(line)
                        buf, eof = self._skip_rest_of_line()
                        line += 1
                    continue
                chunk, buf = buf[:cut], buf[cut:]
            if chunk:
                batch, consumed_lines, leftover = self._validate_chunk(chunk, line, final=eof)
                line += consumed_lines
                buf = leftover + buf
                records += batch.rows_total
                yield batch
            if eof and not buf:
                if not records:
                    raise UnusableFileError("no data rows: the file has a header only")
                return

    def _overlong_line(self, line: int) -> ValidatedBatch:
        error = RowError(line, None, f"record is longer than {MAX_RECORD_BYTES:,} bytes")
        return ValidatedBatch(1, self._empty_table(), [error], [RejectedRecord(line, b"")])

    def _skip_rest_of_line(self) -> tuple[bytes, bool]:
        while True:
            more = self._read()
            if not more:
                return b"", True
            end = more.find(b"\n")
            if end >= 0:
                return more[end + 1 :], False

    def _validate_chunk(self, chunk: bytes, line: int, *, final: bool) -> tuple[ValidatedBatch, int, bytes]:
        """Validate whole lines; returns the batch, the lines consumed and any unfinished record."""
        n_lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        table = self._fast_parse(chunk, n_lines)
        if table is not None:
            return self._check_table(table, chunk, line), n_lines, b""
        return self._exact(chunk, line, final=final)

    # --- fast path --------------------------------------------------------------------------------

    def _fast_parse(self, chunk: bytes, n_lines: int) -> pa.Table | None:
        """The chunk parsed by Arrow, or None when the exact path must decide."""
        assert self.mapping is not None
        if not self._fast:
            return None
        if b'"' in chunk and not quotes_well_formed(chunk):
            return None
        if chunk.count(b"\r") != chunk.count(b"\r\n"):  # Arrow ends a line at a lone CR; csv does not
            return None
        names = [str(i) for i in range(len(self.mapping.names))]
        try:
            table = pacsv.read_csv(
                io.BytesIO(chunk),
                read_options=pacsv.ReadOptions(
                    column_names=names, use_threads=False, block_size=len(chunk) + 64
                ),
                # Arrow skips blank lines, so a chunk holding one parses to fewer rows than lines and
                # goes the exact way, which reports line numbers right.
                parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return table if table.num_rows == n_lines else None

    def _check_table(self, table: pa.Table, chunk: bytes, line: int) -> ValidatedBatch:
        checker = self._checker
        assert checker is not None
        columns = [table.column(i).combine_chunks() for i in range(table.num_columns)]
        kept = table.select(self._kept).rename_columns(self._kept_names)
        mask = checker.fast_mask(columns)
        if not checker.tracks_items and pc.all(mask).as_py():  # the common case: nothing to look at
            return ValidatedBatch(table.num_rows, kept, lines=np.arange(line, line + table.num_rows))
        ok = bool_numpy(mask)
        valid = ok.copy()
        errors: list[RowError] = []
        rejected_rows: list[int] = []

        def full_check(i: int) -> None:
            row_errors = checker.check([c[i].as_py() for c in columns], line + i)
            if row_errors:
                errors.extend(row_errors)
                rejected_rows.append(i)
            else:
                valid[i] = True

        if checker.tracks_items:  # catalogs: every accepted id is remembered, in file order
            item_pos = checker.mapping.index(ITEM_ID)
            assert item_pos is not None
            ids = columns[item_pos].to_pylist()
            for i, certain in enumerate(ok.tolist()):
                if not certain:
                    full_check(i)
                elif (duplicate := checker.accept_item(ids[i], line + i)) is not None:
                    errors.append(duplicate)
                    rejected_rows.append(i)
                    valid[i] = False
        else:
            for i in np.flatnonzero(~ok).tolist():
                full_check(i)
        rejected: list[RejectedRecord] = []
        if rejected_rows:
            raw_lines = _physical_lines(chunk)
            rejected = [RejectedRecord(line + i, raw_lines[i]) for i in rejected_rows]
        accepted = kept if bool(valid.all()) else kept.filter(pa.array(valid))
        return ValidatedBatch(table.num_rows, accepted, errors, rejected, line + np.flatnonzero(valid))

    # --- exact path -------------------------------------------------------------------------------

    def _exact(self, chunk: bytes, line: int, *, final: bool) -> tuple[ValidatedBatch, int, bytes]:
        checker = self._checker
        assert checker is not None
        raw_lines = _physical_lines(chunk)
        text_lines: list[str] = []
        bad_bytes: dict[int, RowError] = {}
        for i, raw in enumerate(raw_lines):
            try:
                text_lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                bad_bytes[i] = RowError(
                    line + i, None, f"not UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start + 1}"
                )
                text_lines.append(raw.decode("utf-8", errors="replace"))

        rows: list[list[str]] = []
        row_lines: list[int] = []
        errors: list[RowError] = []
        rejected: list[RejectedRecord] = []
        total = 0
        n = len(text_lines)
        pos = 0
        leftover_from: int | None = None
        while pos < n and leftover_from is None:
            cursor = [pos]

            def lines_from(cursor: list[int] = cursor) -> Iterator[str]:
                while cursor[0] < n:
                    cursor[0] += 1
                    yield text_lines[cursor[0] - 1]

            reader = csv.reader(lines_from(), strict=True)
            while True:
                start = cursor[0]
                try:
                    fields = next(reader)
                except StopIteration:
                    pos = n
                    break
                except csv.Error as exc:
                    unfinished = cursor[0] >= n and "unexpected end of data" in str(exc)
                    size = sum(len(r) for r in raw_lines[start:])
                    if unfinished and not final and size <= MAX_RECORD_BYTES:
                        leftover_from = start  # the record goes on in the next block
                        break
                    total += 1
                    errors.append(RowError(line + start, None, _csv_reason(str(exc))))
                    rejected.append(RejectedRecord(line + start, raw_lines[start]))
                    pos = start + 1  # resume on the next line
                    break
                if not fields:  # blank line
                    continue
                total += 1
                spanned = range(start, cursor[0])
                encoding_errors = [bad_bytes[i] for i in spanned if i in bad_bytes]
                row_errors = encoding_errors or checker.check(fields, line + start)
                if row_errors:
                    errors.extend(row_errors)
                    rejected.append(RejectedRecord(line + start, b"".join(raw_lines[start : cursor[0]])))
                else:
                    rows.append(fields)
                    row_lines.append(line + start)
        consumed = n if leftover_from is None else leftover_from
        leftover = b"".join(raw_lines[consumed:])
        batch = ValidatedBatch(
            total, self._table_from_rows(rows), errors, rejected, np.array(row_lines, dtype=np.int64)
        )
        return batch, consumed, leftover

    # --- output tables ----------------------------------------------------------------------------

    @property
    def _kept_names(self) -> list[str]:
        assert self.mapping is not None
        return [self.mapping.names[i] for i in self._kept]

    def _table_from_rows(self, rows: list[list[str]]) -> pa.Table:
        columns = {
            name: pa.array([r[i] for r in rows], pa.string())
            for i, name in zip(self._kept, self._kept_names, strict=True)
        }
        return pa.table(columns)

    def _empty_table(self) -> pa.Table:
        return self._table_from_rows([])
