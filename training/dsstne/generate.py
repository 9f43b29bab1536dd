"""generateNetCDF: DSSTNE's text format to its NetCDF dataset (reference/dsstne.md §3.1, §3.2).

Input lines are `sample<TAB>feature[,value]:feature[,value]:…`. Features are numbered in first-seen order
in the feature index, samples in the sample index (reused when the file exists, so input and output
datasets share row order); rows are written in ascending sample index for the samples of this input only.

Where DSSTNE is lenient we are too (lines without a TAB and empty feature names are skipped with a
warning); where it would crash or write an index it cannot read back, we stop with `FILE:LINE: reason`
and write nothing (an unparseable value, an empty sample name, a TAB among the features).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np

from recsys.interactions import Interactions
from training.dsstne.datasets import SparseDataset, atomic_write_path, round_up_width, write_netcdf
from training.dsstne.indexes import Index, load_index, load_or_new, save_index

MAX_ERRORS = 100  # malformed lines listed at most; the count covers them all


class FeatureMode(StrEnum):
    """How generateNetCDF treats the feature index file (`-c`, `-m`, or neither)."""

    CREATE = "create"  # -c: start a new index from this input and write it
    MERGE = "merge"  # -m: load the index, add unseen features, rewrite it
    FIXED = "fixed"  # neither: the index must exist; unknown features are silently dropped


class GenerateError(Exception):
    """generateNetCDF cannot run; `errors` lists `FILE:LINE: reason` messages when lines are at fault."""

    def __init__(self, message: str, errors: list[str] | None = None, total: int = 0) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.total = total or len(self.errors)


class MalformedLineError(ValueError):
    """One input line that cannot be converted (the reason, without file and line)."""


class SkippedLineError(Exception):
    """A line DSSTNE skips with a warning (the reason, without file and line)."""


@dataclass
class BuildResult:
    """The dataset built from text, the names of its rows, and what was skipped on the way."""

    dataset: SparseDataset
    samples: list[str]
    lines: int = 0
    dropped_features: int = 0  # entries whose feature is not in a fixed feature index
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- parsing


def parse_line(line: str) -> tuple[str, list[str], list[float], list[str]] | None:
    """Split one input line into (sample, features, values, warnings); None for a line DSSTNE skips.

    A feature without a value gets 0.0, as in DSSTNE. Raises SkippedLineError for a line DSSTNE skips with a
    warning and MalformedLineError for a line we refuse.
    """
    line = line.rstrip("\n").rstrip("\r")
    if not line:
        return None
    sample, tab, data = line.partition("\t")
    if not tab:
        raise SkippedLineError("no TAB between the sample name and its features; line skipped")
    if not sample:
        raise MalformedLineError("empty sample name")
    if "\t" in data:
        raise MalformedLineError("a TAB inside the feature list (names cannot contain TABs)")
    features: list[str] = []
    values: list[float] = []
    warnings: list[str] = []
    for element in data.split(":"):
        if "," not in element:
            if element:
                features.append(element)
                values.append(0.0)
            continue
        fields = element.split(",")
        if not fields[0]:
            continue  # DSSTNE skips empty feature names, value or not
        if len(fields) > 2:
            warnings.append(f"feature {fields[0]!r} has {len(fields) - 1} values; the first is kept")
        try:
            value = float(fields[1])
        except ValueError:
            raise MalformedLineError(f"feature {fields[0]!r}: value {fields[1]!r} is not a number") from None
        features.append(fields[0])
        values.append(value)
    return sample, features, values, warnings


def input_files(path: str | os.PathLike[str]) -> list[Path]:
    """`-i`: a file, or every regular file directly in a folder, sorted by name (as generateNetCDF)."""
    p = Path(path)
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if f.is_file()), key=lambda f: f.name)
        if not files:
            raise GenerateError(f"{p}: the input folder holds no files")
        return files
    if not p.exists():
        raise GenerateError(f"{p}: no such input file or folder")
    return [p]


NumberedLine = tuple[str, int, str | None]  # (file, line number, text; None where it is not UTF-8)


def iter_file_lines(files: Iterable[str | os.PathLike[str]]) -> Iterator[NumberedLine]:
    """Every line of the files with its origin, so errors can name `FILE:LINE`."""
    for path in files:
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    text: str | None = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                yield str(path), lineno, text


# ----------------------------------------------------------------------------------------- building


def build_dataset(
    name: str,
    lines: Iterable[NumberedLine],
    feature_index: Index,
    sample_index: Index,
    *,
    add_features: bool,
    analog: bool = False,
) -> BuildResult:
    """Convert numbered text lines into one sparse dataset, updating the indexes in place.

    `add_features` gives unseen features new indices (-c/-m); otherwise they are dropped. `analog` keeps
    values (`-t analog`); indicator datasets drop them. Raises GenerateError listing malformed lines.
    """
    rows: dict[int, tuple[list[int], list[float]]] = {}
    errors: list[str] = []
    warnings: list[str] = []
    n_errors = n_lines = dropped = 0
    known = None if add_features else feature_index.as_mapping()
    for path, lineno, text in lines:
        n_lines += 1
        try:
            if text is None:
                raise MalformedLineError("not valid UTF-8")
            parsed = parse_line(text)
        except SkippedLineError as skip:
            warnings.append(f"{path}:{lineno}: warning: {skip}")
            continue
        except MalformedLineError as bad:
            n_errors += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"{path}:{lineno}: {bad}")
            continue
        if parsed is None or n_errors:
            continue  # after the first error, only look for more errors
        sample, features, values, notes = parsed
        warnings.extend(f"{path}:{lineno}: warning: {note}" for note in notes)
        if known is None:
            indices = [feature_index.add(f) for f in features]
        else:
            pairs = [(known[f], v) for f, v in zip(features, values, strict=True) if f in known]
            dropped += len(features) - len(pairs)
            indices = [i for i, _ in pairs]
            values = [v for _, v in pairs]
        rows[sample_index.add(sample)] = (indices, values)  # a repeated sample replaces its earlier line
    if n_errors:
        raise GenerateError(f"{n_errors} malformed line(s)", errors, n_errors)
    if not rows:
        raise GenerateError("the input holds no samples (empty input)")
    order = sorted(rows)
    lengths = np.fromiter((len(rows[i][0]) for i in order), dtype=np.int64, count=len(order))
    end = np.cumsum(lengths)
    nnz = int(end[-1])
    index = np.fromiter((f for i in order for f in rows[i][0]), dtype=np.int64, count=nnz)
    data = (
        np.fromiter((v for i in order for v in rows[i][1]), dtype=np.float32, count=nnz) if analog else None
    )
    dataset = SparseDataset(
        name=name,
        width=round_up_width(feature_index.size),
        start=end - lengths,
        end=end,
        index=index,
        values=data,
    )
    names = sample_index.labels()
    return BuildResult(
        dataset=dataset,
        samples=[names[i] or "" for i in order],
        lines=n_lines,
        dropped_features=dropped,
        warnings=warnings,
    )


def generate_netcdf(
    name: str,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    feature_index_path: str | os.PathLike[str],
    sample_index_path: str | os.PathLike[str],
    *,
    mode: FeatureMode = FeatureMode.FIXED,
    analog: bool = False,
) -> BuildResult:
    """The `generateNetCDF` command: read text, update the index files, write the NetCDF dataset.

    Everything is parsed before anything is written, and each file is replaced atomically, so a malformed
    input leaves the output and both index files as they were.
    """
    files = input_files(input_path)
    if mode is FeatureMode.CREATE:
        features = Index()
    elif mode is FeatureMode.MERGE:
        features, _ = load_or_new(feature_index_path)
    else:
        if not Path(feature_index_path).exists():
            raise GenerateError(
                f"{feature_index_path}: feature index not found (use -c to create it or -m to merge into it)"
            )
        features = load_index(feature_index_path)
    samples, _ = load_or_new(sample_index_path)
    n_samples = len(samples)
    result = build_dataset(
        name,
        iter_file_lines(files),
        features,
        samples,
        add_features=mode is not FeatureMode.FIXED,
        analog=analog,
    )
    write_netcdf(output, [result.dataset])
    if mode is not FeatureMode.FIXED:
        save_index(feature_index_path, features)
    if len(samples) != n_samples or not Path(sample_index_path).exists():
        save_index(sample_index_path, samples)
    return result


# ------------------------------------------------------------------------- from our interaction data

ValueSource = Literal["timestamp", "rating", "none"]


def interactions_to_lines(interactions: Interactions, *, value: ValueSource = "timestamp") -> Iterator[str]:
    """DSSTNE text lines from interactions: one line per user (sample), their items as features.

    Users appear in index order and each user's items in interaction order, like convert_ratings.awk over
    a file grouped by user; users without interactions get no line. `value` picks what follows each item:
    the timestamp (as in DSSTNE's MovieLens sample), the rating (omitted where unknown), or nothing.
    """
    _check_names(interactions.user_ids, "user id", forbidden="\t\n\r")
    _check_names(interactions.item_ids, "item id", forbidden="\t\n\r:,")
    if len(interactions) == 0:
        return
    order = np.argsort(interactions.user, kind="stable")
    users = interactions.user[order]
    items = interactions.item[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(users)]))
    item_ids = interactions.item_ids
    if value == "timestamp":
        suffixes = [f",{int(t)}" for t in interactions.timestamp[order]]
    elif value == "rating":
        suffixes = ["" if math.isnan(r) else f",{float(r):g}" for r in interactions.rating[order]]
    else:
        suffixes = [""] * len(order)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        feats = ":".join(f"{item_ids[items[k]]}{suffixes[k]}" for k in range(s, e))
        yield f"{interactions.user_ids[users[s]]}\t{feats}\n"


def write_interactions_text(
    path: str | os.PathLike[str], interactions: Interactions, *, value: ValueSource = "timestamp"
) -> int:
    """Write `interactions_to_lines` to a file (atomically); returns the number of lines (users)."""
    count = 0
    with atomic_write_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line in interactions_to_lines(interactions, value=value):
            f.write(line)
            count += 1
    return count


def _check_names(ids: np.ndarray, what: str, *, forbidden: str) -> None:
    """Ids that would break the text or index format are refused, naming the first offender."""
    for raw in ids:
        name = str(raw)
        if not name or any(c in name for c in forbidden):
            raise ValueError(f"{what} {name!r} cannot be written in DSSTNE's text format")
