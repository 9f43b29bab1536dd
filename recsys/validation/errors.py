"""What validation reports: row errors, and the errors that make a whole file unusable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    """One problem in one record. `line` is the physical line where the record starts (header = 1)."""

    line: int
    column: str | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class RejectedRecord:
    """A record that failed validation, with its raw bytes (for quarantine files)."""

    line: int
    raw: bytes


class UnusableFileError(ValueError):
    """The file cannot be validated at all: empty, not text, or a header that cannot be mapped."""

    def __init__(self, reason: str, *, line: int = 1, column: str | None = None) -> None:
        super().__init__(reason)
        self.error = RowError(line=line, column=column, reason=reason)


class InvalidFileError(ValueError):
    """Raised by strict readers: names the file, the line and the column of the first problem."""

    def __init__(self, path: str, error: RowError) -> None:
        column = f" column {error.column}:" if error.column else ""
        super().__init__(f"{path}:{error.line}:{column} {error.reason}")
        self.path = path
        self.error = error
