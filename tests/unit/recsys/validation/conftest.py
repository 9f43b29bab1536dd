from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recsys.validation import ValidationReport, validate_file

TRANSACTIONS_HEADER = b"user_id,item_id,timestamp,rating\n"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[bytes, str], Path]:
    def _write(content: bytes, name: str = "input.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return _write


@pytest.fixture
def check(write: Callable[[bytes, str], Path]) -> Callable[..., ValidationReport]:
    """Validate bytes as a file of the given kind."""

    def _check(content: bytes, kind: str = "transactions") -> ValidationReport:
        return validate_file(write(content, "input.csv"), kind)

    return _check


def lines_and_columns(report: ValidationReport) -> list[tuple[int, str | None]]:
    return [(e.line, e.column) for e in report.errors]
