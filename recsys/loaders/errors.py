"""The one error type of the loaders: it always says which file, and where in it, went wrong."""

from __future__ import annotations

from pathlib import Path


class LoadError(ValueError):
    """A file could not be loaded. The message reads `FILE[:LINE][: column C]: reason`.

    It is a ValueError so that callers which treat bad input as a user error (the CLI exits 2) need
    no special case; `path`, `line` and `column` let them point at the spot without parsing the text.
    """

    def __init__(
        self,
        path: str | Path,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
        message: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        self.column = column
        if message is None:
            where = str(self.path) if line is None else f"{self.path}:{line}"
            message = f"{where}: column {column}: {reason}" if column else f"{where}: {reason}"
        super().__init__(message)

    @classmethod
    def wrap(cls, path: str | Path, error: BaseException) -> LoadError:
        """Re-raise a validator or OS error as a LoadError, keeping its file and line in the text."""
        if isinstance(error, FileNotFoundError):
            return cls(path, "file not found")
        if isinstance(error, IsADirectoryError):
            return cls(path, "is a directory, expected a file")
        text = str(error)
        where = getattr(error, "error", error)  # InvalidFileError keeps line and column in a RowError
        line = getattr(where, "line", None)
        column = getattr(where, "column", None)
        message = text if str(path) in text or Path(path).name in text else f"{path}: {text}"
        return cls(
            path,
            text,
            line=line if isinstance(line, int) else None,
            column=column if isinstance(column, str) else None,
            message=message,
        )
