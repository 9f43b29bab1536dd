"""The outcome of validating one file: counts, errors (capped), and how to show them."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys.validation.errors import RowError

MAX_REPORTED_ERRORS = 1000

EXIT_VALID = 0
EXIT_SOME_INVALID = 1
EXIT_UNUSABLE = 2


@dataclass
class ValidationReport:
    file: str
    kind: str
    rows_total: int = 0
    rows_valid: int = 0
    unusable: bool = False
    errors: list[RowError] = field(default_factory=list)
    errors_truncated: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # header cell -> canonical name
    ignored_columns: list[str] = field(default_factory=list)
    max_errors: int = MAX_REPORTED_ERRORS

    def add_errors(self, errors: list[RowError]) -> None:
        room = max(self.max_errors - len(self.errors), 0)
        self.errors.extend(errors[:room])
        self.errors_truncated += max(len(errors) - room, 0)

    @property
    def rows_invalid(self) -> int:
        return self.rows_total - self.rows_valid

    @property
    def accepted(self) -> bool:
        """True when the file can be ingested: it is usable and at least one row is valid."""
        return not self.unusable and self.rows_valid > 0

    @property
    def exit_code(self) -> int:
        if self.unusable:
            return EXIT_UNUSABLE
        return EXIT_VALID if self.rows_invalid == 0 else EXIT_SOME_INVALID

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "kind": self.kind,
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "accepted": self.accepted,
            "errors": [e.to_json() for e in self.errors],
            "errors_truncated": self.errors_truncated,
        }

    def to_text(self, *, max_lines: int = 20) -> str:
        if self.unusable:
            head = f"{self.file}: unusable {self.kind} file"
        else:
            verdict = "all rows valid" if self.exit_code == EXIT_VALID else f"{self.rows_invalid:,} invalid"
            head = (
                f"{self.file}: {self.kind}, {self.rows_total:,} rows, {self.rows_valid:,} valid, {verdict}"
                f" — {'accepted' if self.accepted else 'rejected'}"
            )
        lines = [head]
        if self.columns:
            mapped = ", ".join(k if k == v else f"{k}→{v}" for k, v in self.columns.items())
            lines.append(f"  columns: {mapped}")
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        lines.extend(f"  {e}" for e in self.errors[:max_lines])
        hidden = len(self.errors) - min(len(self.errors), max_lines) + self.errors_truncated
        if hidden:
            lines.append(f"  … and {hidden:,} more error(s); --json lists up to {self.max_errors:,}")
        return "\n".join(lines)
