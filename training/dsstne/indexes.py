"""DSSTNE's index files: one `label<TAB>index` per line (reference/dsstne.md §3.2, §3.3).

A feature index maps feature names to columns, a sample index maps sample names to rows. New labels get
the next free index, so indices follow first-seen order; an existing sample index is reused and extended,
which is how two generateNetCDF runs (input and output) keep their rows aligned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from training.dsstne.datasets import atomic_write_path

MAX_INDEX = 2**32 - 1


class IndexFileError(ValueError):
    """A malformed index file; the message starts with `FILE:LINE:` like a compiler's."""

    def __init__(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


class Index:
    """An ordered label → index map that hands out the next free index to labels it has not seen."""

    def __init__(self, entries: Iterable[tuple[str, int]] = ()) -> None:
        self._index: dict[str, int] = {}
        self._next = 0
        for label, value in entries:
            self._put(label, value)

    def _put(self, label: str, value: int) -> None:
        if label in self._index:
            raise ValueError(f"duplicate label {label!r}")
        self._index[label] = value
        self._next = max(self._next, value + 1)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __getitem__(self, label: str) -> int:
        return self._index[label]

    def get(self, label: str) -> int | None:
        return self._index.get(label)

    def add(self, label: str) -> int:
        """The label's index, giving a new label the next free index (first-seen order)."""
        found = self._index.get(label)
        if found is not None:
            return found
        if not label or "\t" in label or "\n" in label or "\r" in label:
            raise ValueError(f"label {label!r} cannot be stored in an index file")
        self._put(label, self._next)
        return self._next - 1

    @property
    def size(self) -> int:
        """Indices in use: `len(self)` for DSSTNE's gap-free files, one past the largest index otherwise.

        generateNetCDF rounds this up to a multiple of 128 for the dataset width.
        """
        return self._next

    def as_mapping(self) -> Mapping[str, int]:
        """A read-only view of label → index, for fast bulk lookups."""
        return MappingProxyType(self._index)

    def items(self) -> Iterator[tuple[str, int]]:
        return iter(self._index.items())

    def labels(self) -> list[str | None]:
        """Labels by index (position i holds the label of index i; None where a file left a gap)."""
        out: list[str | None] = [None] * self._next
        for label, value in self._index.items():
            out[value] = label
        return out


def load_index(path: str | os.PathLike[str]) -> Index:
    """Read an index file with DSSTNE's loader rules (TestNetCDFhelper.cpp).

    Each line must be exactly two TAB-separated fields, a non-empty label and an unsigned decimal index;
    a duplicate label is an error. We also reject a duplicate index (DSSTNE's Java tests do; the C++ loader
    would silently map two labels to one column). Blank lines and a trailing CR are tolerated.
    """
    index = Index()
    seen: dict[int, str] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                reason = "missing TAB" if len(fields) == 1 else f"{len(fields) - 1} TABs, expected one"
                raise IndexFileError(path, lineno, f"{reason} (expected 'label<TAB>index')")
            label, number = fields
            if not label:
                raise IndexFileError(path, lineno, "missing label")
            if not number.isascii() or not number.isdigit():
                raise IndexFileError(path, lineno, f"index {number!r} is not an unsigned decimal number")
            value = int(number)
            if value > MAX_INDEX:
                raise IndexFileError(path, lineno, f"index {value} does not fit DSSTNE's uint32")
            if label in index:
                raise IndexFileError(path, lineno, f"duplicate label {label!r}")
            if value in seen:
                raise IndexFileError(path, lineno, f"duplicate index {value} (also used by {seen[value]!r})")
            seen[value] = label
            index._put(label, value)
    return index


def save_index(path: str | os.PathLike[str], index: Index) -> None:
    """Write `label<TAB>index` lines in index order (DSSTNE's order is arbitrary), replacing atomically."""
    with atomic_write_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for label, value in sorted(index.items(), key=lambda item: item[1]):
            f.write(f"{label}\t{value}\n")


def load_or_new(path: str | os.PathLike[str]) -> tuple[Index, bool]:
    """The index stored at `path` (and True), or an empty one (and False) when there is no file yet."""
    if Path(path).exists():
        return load_index(path), True
    return Index(), False
