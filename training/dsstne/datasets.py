"""DSSTNE's sparse datasets in NetCDF-4 (reference/dsstne.md §3.4, §3.5).

A file holds `datasets` datasets numbered 0..n-1; dataset n is described by global attributes `name<n>`,
`attributes<n>`, `kind<n>`, `dataType<n>`, `dimensions<n>`, `width<n>` and stored as CSR-like row ranges
`sparseStart<n>` / `sparseEnd<n>` into `sparseIndex<n>` (and `sparseData<n>` unless Boolean). The types are
DSSTNE's exactly (unsigned attributes and indices, NC_CHAR names), so the original engine can read what we
write and we can read what `generateNetCDF` wrote.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import Any

import numpy as np

WIDTH_MULTIPLE = 128  # generateNetCDF pads the feature dimension to a multiple of 128 (GPU-friendly strides)


class Attr(IntFlag):
    """Dataset attribute bit flags (NNEnum.h)."""

    SPARSE = 1
    BOOLEAN = 2
    COMPRESSED = 4
    RECURRENT = 8
    MUTABLE = 16
    SPARSE_IGNORE_ZERO = 32
    INDEXED = 64
    WEIGHTED = 128


class DataKind(IntEnum):
    """Dataset kind (NNEnum.h)."""

    NUMERIC = 0
    IMAGE = 1
    AUDIO = 2


class DataType(IntEnum):
    """Element type of a dataset's values (NNEnum.h)."""

    UINT = 0
    INT = 1
    LLINT = 2
    ULLINT = 3
    FLOAT = 4
    DOUBLE = 5
    RGB8 = 6
    RGB16 = 7
    UCHAR = 8
    CHAR = 9


# How each DataType's values are stored in `sparseData<n>` (RGB types are not used by sparse recommenders).
VALUE_DTYPES: dict[DataType, np.dtype] = {
    DataType.UINT: np.dtype(np.uint32),
    DataType.INT: np.dtype(np.int32),
    DataType.LLINT: np.dtype(np.int64),
    DataType.ULLINT: np.dtype(np.uint64),
    DataType.FLOAT: np.dtype(np.float32),
    DataType.DOUBLE: np.dtype(np.float64),
    DataType.UCHAR: np.dtype(np.uint8),
    DataType.CHAR: np.dtype(np.int8),
}


def round_up_width(n: int) -> int:
    """generateNetCDF's `((n + 127) >> 7) << 7`: the stored width for a feature index of n entries."""
    return ((n + WIDTH_MULTIPLE - 1) // WIDTH_MULTIPLE) * WIDTH_MULTIPLE


@dataclass
class SparseDataset:
    """One sparse DSSTNE dataset: rows are examples (samples), columns features.

    `start[i]:end[i]` is the slice of `index` (and `values`) that belongs to example i. Arrays are kept as
    given (uint32 from files, int64 from builders); `write_netcdf` converts them to DSSTNE's uint32.
    `values` is None for indicator (Boolean) data, where every stored entry means 1.
    """

    name: str
    width: int
    start: np.ndarray
    end: np.ndarray
    index: np.ndarray
    values: np.ndarray | None = None
    attributes: int = -1  # -1: derived (Sparse, plus Boolean when there are no values)
    kind: int = DataKind.NUMERIC
    data_type: int = -1  # -1: derived (UInt for indicators, Float for analog values)
    dimensions: int = 1
    height: int = 1
    length: int = 1
    example_weights: np.ndarray | None = field(default=None)  # `dataWeight<n>` of Weighted datasets

    def __post_init__(self) -> None:
        if self.attributes == -1:
            self.attributes = int(Attr.SPARSE if self.values is not None else Attr.SPARSE | Attr.BOOLEAN)
        if self.data_type == -1:
            self.data_type = int(DataType.FLOAT if self.values is not None else DataType.UINT)
        self._validate()

    def _validate(self) -> None:
        where = f"dataset {self.name!r}"
        if not self.attributes & Attr.SPARSE:
            raise ValueError(f"{where}: only sparse datasets are supported (attributes={self.attributes})")
        if self.is_boolean and self.values is not None:
            raise ValueError(f"{where}: a Boolean dataset has no values")
        if not self.is_boolean and self.values is None:
            raise ValueError(f"{where}: a non-Boolean dataset needs values")
        if not 1 <= self.dimensions <= 3:
            raise ValueError(f"{where}: dimensions must be 1..3, got {self.dimensions}")
        if len(self.start) != len(self.end):
            raise ValueError(f"{where}: start has {len(self.start)} entries, end {len(self.end)}")
        if self.values is not None and len(self.values) != len(self.index):
            raise ValueError(f"{where}: {len(self.values)} values for {len(self.index)} indices")
        if self.example_weights is not None and len(self.example_weights) != len(self.start):
            raise ValueError(f"{where}: one example weight per example expected")
        start = np.asarray(self.start, dtype=np.int64)
        end = np.asarray(self.end, dtype=np.int64)
        if len(start) and (start.min() < 0 or (end < start).any() or end.max() > len(self.index)):
            raise ValueError(f"{where}: row ranges must satisfy 0 <= start <= end <= {len(self.index)}")
        if len(self.index) and int(np.max(self.index)) >= self.features:
            raise ValueError(
                f"{where}: feature index {int(np.max(self.index))} is outside the width {self.features}"
            )

    @property
    def examples(self) -> int:
        return len(self.start)

    @property
    def nnz(self) -> int:
        return len(self.index)

    @property
    def features(self) -> int:
        """Units of an input/output layer built on this dataset (`"N": "auto"`): width · height · length."""
        return self.width * self.height * self.length

    @property
    def is_boolean(self) -> bool:
        return bool(self.attributes & Attr.BOOLEAN)

    def to_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, indices) as int64, the form torch/scipy take; rows keep their stored order."""
        indptr, gather = self._layout()
        index = np.asarray(self.index, dtype=np.int64)
        return indptr, index if gather is None else index[gather]

    def csr_values(self) -> np.ndarray | None:
        """Values aligned with `to_csr()`'s indices (float32), or None for indicator data."""
        if self.values is None:
            return None
        _, gather = self._layout()
        values = np.asarray(self.values, dtype=np.float32)
        return values if gather is None else values[gather]

    def _layout(self) -> tuple[np.ndarray, np.ndarray | None]:
        """CSR row pointers, and the positions to gather when rows are not stored back to back."""
        start = np.asarray(self.start, dtype=np.int64)
        end = np.asarray(self.end, dtype=np.int64)
        lengths = end - start
        indptr = np.zeros(len(start) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        if len(start) == 0 or (start[0] == 0 and (start[1:] == end[:-1]).all() and end[-1] == self.nnz):
            return indptr, None
        # The format allows arbitrary [start, end) ranges; gather them into plain CSR order.
        return indptr, np.repeat(start - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)


def from_feature_lists(
    name: str,
    rows: Sequence[Sequence[int]],
    n_features: int,
    values: Sequence[Sequence[float]] | None = None,
    *,
    round_width: bool = True,
) -> SparseDataset:
    """Build a dataset from per-example lists of feature indices (and values for analog data).

    The width is `n_features` rounded up to a multiple of 128, as generateNetCDF does with the size of the
    whole feature index (pass `round_width=False` for the test writer's unrounded variant).
    """
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    end = np.cumsum(lengths)
    start = end - lengths
    index = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(lengths.sum()))
    if len(index) and index.min() < 0:
        raise ValueError(f"dataset {name!r}: negative feature index")
    data = None
    if values is not None:
        if [len(v) for v in values] != lengths.tolist():
            raise ValueError(f"dataset {name!r}: values must have the same shape as rows")
        data = np.fromiter((x for v in values for x in v), dtype=np.float32, count=len(index))
    width = round_up_width(n_features) if round_width else n_features
    return SparseDataset(name=name, width=width, start=start, end=end, index=index, values=data)


# ---------------------------------------------------------------------------------------------- files


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A fresh hidden name next to `path` (same file system, so a rename is atomic).

    The file itself is created by its writer, so it gets the usual permissions (mkstemp would make it 0600).
    """
    target = Path(path)
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on failure it disappears.

    Readers never see a half-written file, and a failed run leaves the previous file in place.
    """
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def char_attr(value: str) -> object:
    """A text attribute as netCDF-C writes NC_CHAR: a fixed-length string (never a variable-length one).

    The empty string becomes HDF5's null dataspace, which is how netCDF-C stores a zero-length NC_CHAR.
    """
    import h5py

    raw = value.encode("utf-8")
    return np.bytes_(raw) if raw else h5py.Empty("S1")


def read_text_attr(attrs: Any, key: str) -> str:
    """Decode a text attribute whether it is NC_CHAR (bytes), NC_STRING (str) or empty."""
    value = attrs[key]
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8").rstrip("\x00")
    if isinstance(value, np.ndarray) and value.size == 0:
        return ""
    return str(value)


def write_netcdf(path: str | os.PathLike[str], datasets: Sequence[SparseDataset]) -> None:
    """Write datasets 0..n-1 into one NetCDF-4 file exactly as DSSTNE lays them out (replacing `path`)."""
    import h5netcdf

    if not datasets:
        raise ValueError("write_netcdf needs at least one dataset")
    with atomic_write_path(path) as tmp, h5netcdf.File(tmp, "w") as nc:
        nc.attrs["datasets"] = np.uint32(len(datasets))
        for n, ds in enumerate(datasets):
            _write_dataset(nc, n, ds)


def _write_dataset(nc: Any, n: int, ds: SparseDataset) -> None:
    if ds.examples == 0:
        raise ValueError(f"dataset {ds.name!r} has no examples (DSSTNE needs examplesDim > 0)")
    attrs = nc.attrs
    attrs[f"name{n}"] = char_attr(ds.name)
    attrs[f"attributes{n}"] = np.uint32(ds.attributes)
    attrs[f"kind{n}"] = np.uint32(ds.kind)
    attrs[f"dataType{n}"] = np.uint32(ds.data_type)
    attrs[f"dimensions{n}"] = np.uint32(ds.dimensions)
    attrs[f"width{n}"] = np.uint32(ds.width)
    if ds.dimensions > 1:
        attrs[f"height{n}"] = np.uint32(ds.height)
    if ds.dimensions > 2:
        attrs[f"length{n}"] = np.uint32(ds.length)
    nc.dimensions[f"examplesDim{n}"] = ds.examples
    nc.dimensions[f"sparseDataDim{n}"] = ds.nnz
    create = nc.create_variable
    create(f"sparseStart{n}", (f"examplesDim{n}",), dtype=np.uint32, data=_as_uint32(ds.start, "start"))
    create(f"sparseEnd{n}", (f"examplesDim{n}",), dtype=np.uint32, data=_as_uint32(ds.end, "end"))
    create(f"sparseIndex{n}", (f"sparseDataDim{n}",), dtype=np.uint32, data=_as_uint32(ds.index, "index"))
    if ds.values is not None:
        dtype = VALUE_DTYPES.get(DataType(ds.data_type))
        if dtype is None:
            raise ValueError(f"dataset {ds.name!r}: data type {ds.data_type} is not supported for values")
        create(f"sparseData{n}", (f"sparseDataDim{n}",), dtype=dtype, data=np.asarray(ds.values, dtype=dtype))
    if ds.example_weights is not None:
        create(
            f"dataWeight{n}",
            (f"examplesDim{n}",),
            dtype=np.float32,
            data=np.asarray(ds.example_weights, dtype=np.float32),
        )


def _as_uint32(array: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(array)
    if len(a) and (int(a.max()) > np.iinfo(np.uint32).max or int(a.min()) < 0):
        raise ValueError(f"{what} values do not fit DSSTNE's uint32")
    return a.astype(np.uint32, copy=False)


def read_netcdf(path: str | os.PathLike[str]) -> list[SparseDataset]:
    """Read every dataset of a DSSTNE NetCDF file (ours or the original generateNetCDF's)."""
    import h5netcdf

    with h5netcdf.File(path, "r") as nc:
        if "datasets" not in nc.attrs:
            raise ValueError(f"{path}: not a DSSTNE dataset file (no 'datasets' attribute)")
        return [_read_dataset(nc, n, str(path)) for n in range(int(nc.attrs["datasets"]))]


def _read_dataset(nc: Any, n: int, where: str) -> SparseDataset:
    attrs = nc.attrs
    variables = nc.variables

    def need(key: str) -> int:
        if key not in attrs:
            raise ValueError(f"{where}: missing attribute {key!r}")
        return int(attrs[key])

    attributes = need(f"attributes{n}")
    if not attributes & Attr.SPARSE:
        raise ValueError(f"{where}: dataset {n} is dense; only sparse datasets are supported")
    dimensions = need(f"dimensions{n}")
    for var in (f"sparseStart{n}", f"sparseEnd{n}", f"sparseIndex{n}"):
        if var not in variables:
            raise ValueError(f"{where}: missing variable {var!r}")
    values = None
    if not attributes & Attr.BOOLEAN:
        if f"sparseData{n}" not in variables:
            raise ValueError(f"{where}: non-Boolean dataset {n} has no 'sparseData{n}'")
        values = np.asarray(variables[f"sparseData{n}"][...])
    weights = None
    if attributes & Attr.WEIGHTED and f"dataWeight{n}" in variables:
        weights = np.asarray(variables[f"dataWeight{n}"][...], dtype=np.float32)
    return SparseDataset(
        name=read_text_attr(attrs, f"name{n}") if f"name{n}" in attrs else "",
        width=need(f"width{n}"),
        height=need(f"height{n}") if dimensions > 1 else 1,
        length=need(f"length{n}") if dimensions > 2 else 1,
        start=np.asarray(variables[f"sparseStart{n}"][...]),  # uint32, or uint64 in newer files
        end=np.asarray(variables[f"sparseEnd{n}"][...]),
        index=np.asarray(variables[f"sparseIndex{n}"][...]),
        values=values,
        attributes=attributes,
        kind=int(attrs.get(f"kind{n}", DataKind.NUMERIC)),
        data_type=need(f"dataType{n}"),
        dimensions=dimensions,
        example_weights=weights,
    )
