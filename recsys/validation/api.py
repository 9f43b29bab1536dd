"""Entry points: validate a file into a report, stream its accepted rows, or read it strictly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from recsys.csv_contract import Kind
from recsys.validation.errors import InvalidFileError, RowError, UnusableFileError
from recsys.validation.report import MAX_REPORTED_ERRORS, ValidationReport
from recsys.validation.stream import CsvValidator, ValidatedBatch


def validate_stream(
    stream: BinaryIO,
    kind: Kind | str,
    *,
    name: str,
    max_errors: int = MAX_REPORTED_ERRORS,
    on_batch: Callable[[ValidatedBatch], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate a binary stream; `on_batch` sees every batch (accepted rows and rejected records)."""
    kind = Kind(kind)
    report = ValidationReport(file=name, kind=kind.value, max_errors=max_errors)
    validator = CsvValidator(stream, kind, on_progress=on_progress)
    try:
        for batch in validator.batches():
            report.rows_total += batch.rows_total
            report.rows_valid += batch.valid.num_rows
            report.add_errors(batch.errors)
            if on_batch is not None:
                on_batch(batch)
    except UnusableFileError as exc:
        report.unusable = True
        report.add_errors([exc.error])
    if validator.mapping is not None:
        mapping = validator.mapping
        report.columns = dict(zip(mapping.original, mapping.names, strict=True))
        if kind is Kind.TRANSACTIONS:
            report.ignored_columns = [c for c, n in report.columns.items() if n in mapping.extra]
    return report


def validate_file(
    path: str | Path,
    kind: Kind | str,
    *,
    max_errors: int = MAX_REPORTED_ERRORS,
    on_batch: Callable[[ValidatedBatch], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate a file on disk. A missing or unreadable file is reported as unusable, never raised."""
    name = str(path)
    try:
        with open(path, "rb") as stream:
            return validate_stream(
                stream, kind, name=name, max_errors=max_errors, on_batch=on_batch, on_progress=on_progress
            )
    except OSError as exc:
        report = ValidationReport(file=name, kind=Kind(kind).value, unusable=True)
        report.add_errors([RowError(1, None, f"cannot read the file: {exc.strerror or exc}")])
        return report


def iter_valid_batches(path: str | Path, kind: Kind | str) -> Iterator[pa.Table]:
    """Accepted rows batch by batch; raises InvalidFileError at the first problem of any kind."""
    name = str(path)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is exhausted
    except OSError as exc:
        raise InvalidFileError(
            name, RowError(1, None, f"cannot read the file: {exc.strerror or exc}")
        ) from None
    with stream:
        try:
            for batch in CsvValidator(stream, Kind(kind)).batches():
                if batch.errors:
                    raise InvalidFileError(name, batch.errors[0])
                yield batch.valid
        except UnusableFileError as exc:
            raise InvalidFileError(name, exc.error) from None


def read_valid_table(path: str | Path, kind: Kind | str) -> pa.Table:
    """The whole file as one table of strings (canonical column names), or InvalidFileError."""
    tables = list(iter_valid_batches(path, kind))
    return pa.concat_tables(tables) if tables else pa.table({})
