"""A numpy-only reader of MXNet's NDArray-list files (`mx.nd.save`): SageMaker model parameters, no mxnet.

Layout (little-endian; apache/mxnet v1.x `NDArray::Save` / `Load`, ../shared/reference/sagemaker-fm.md §5.2):

    uint64 0x112 (list magic) | uint64 reserved | uint64 n_arrays | n_arrays × array | uint64 n_names |
    n_names × (uint64 length, bytes)                                   n_names is 0 or n_arrays
    array = uint32 magic
            V2 0xF993FAC9 / V3 0xF993FACA: int32 stype (0 dense, -1 none), shape, then as V1 after it
            V1 0xF993FAC8: shape
            shape = int32 ndim, ndim × int64; none (nothing follows): ndim 0 in V1/V2, ndim -1 in V3
            then int32 dev_type, int32 dev_id, int32 type_flag, prod(shape) × itemsize bytes (C order)

Only dense arrays are read; sparse ones (row_sparse, csr) are refused. Pre-V1 files (whose first word is
the ndim) are refused too: SageMaker's MXNet 1.x never writes them, and accepting them would let any
garbage word pass as a shape. Every error names the source, the array and the byte offset.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA
MAGICS = {V1_MAGIC: "V1", V2_MAGIC: "V2", V3_MAGIC: "V3"}
STORAGE_TYPES = {-1: "undefined", 0: "dense", 1: "row_sparse", 2: "csr"}
# mshadow's TypeFlag → numpy dtype (12, bfloat16, has no numpy dtype).
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
    8: np.dtype("<i2"),
    9: np.dtype("<u2"),
    10: np.dtype("<u4"),
    11: np.dtype("<u8"),
}
TYPE_NAMES = {0: "float32", 1: "float64", 2: "float16", 3: "uint8", 4: "int32", 5: "int8", 6: "int64"}
TYPE_NAMES |= {7: "bool", 8: "int16", 9: "uint16", 10: "uint32", 11: "uint64", 12: "bfloat16"}
MAX_NDIM = 32
"""Far above what MXNet uses; a larger ndim means the bytes are not a shape."""


class NDArrayFormatError(ValueError):
    """Bytes that are not a readable NDArray list; the message names the source and the byte offset."""


@dataclass(frozen=True)
class NDArrayList:
    """The arrays in file order, and their names when the file was saved from a dict (else None).

    An array saved as "none" (no shape) reads as None."""

    arrays: list[np.ndarray | None]
    names: list[str] | None
    versions: tuple[str, ...]
    """Per array: "V1", "V2" or "V3" (the array magic it was saved with)."""

    def as_dict(self) -> dict[str, np.ndarray | None]:
        if self.names is None:
            raise NDArrayFormatError("the NDArray list has no names (saved from a list, not a dict)")
        return dict(zip(self.names, self.arrays, strict=True))


class _Cursor:
    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.source, self.pos = data, source, 0
        self.where = "header"

    def fail(self, message: str, at: int | None = None) -> NDArrayFormatError:
        offset = self.pos if at is None else at
        return NDArrayFormatError(f"{self.source}: {self.where}: {message} (at byte {offset})")

    def take(self, size: int, what: str) -> bytes:
        left = len(self.data) - self.pos
        if size > left:
            raise self.fail(f"truncated: {what} needs {size} bytes, {left} left")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str) -> int:
        value: int = struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]
        return value


def read_ndarray_list(data: bytes, *, source: str = "<bytes>") -> NDArrayList:
    """Parse a whole NDArray-list file held in memory."""
    cur = _Cursor(data, source)
    header = cur.unpack("<Q", "the list header")
    if header != LIST_MAGIC:
        raise cur.fail(f"not an MXNet NDArray list: header 0x{header:x}, expected 0x{LIST_MAGIC:x}", at=0)
    cur.unpack("<Q", "the reserved word")
    count = cur.unpack("<Q", "the array count")
    # Every array takes at least 8 bytes (a V1 "none": magic and ndim): checked before looping over it.
    left = len(data) - cur.pos
    if count > left // 8:
        raise cur.fail(
            f"truncated or not a count: {count} arrays need at least {8 * count} bytes, {left} left"
        )
    arrays: list[np.ndarray | None] = []
    versions: list[str] = []
    for index in range(count):
        cur.where = f"array #{index}"
        array, version = _read_array(cur)
        arrays.append(array)
        versions.append(version)
    cur.where = "names"
    n_names = cur.unpack("<Q", "the name count")
    if n_names not in (0, count):
        raise cur.fail(f"{n_names} names for {count} arrays (expected 0 or {count})")
    names: list[str] = []
    for index in range(n_names):
        cur.where = f"name #{index}"
        length = cur.unpack("<Q", "the name length")
        raw = cur.take(length, f"a name of {length} bytes")
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise cur.fail(f"name is not UTF-8 ({exc})") from exc
    if cur.pos != len(data):
        cur.where = "end"
        raise cur.fail(f"{len(data) - cur.pos} unexpected bytes after the last name")
    return NDArrayList(arrays, names if n_names else None, tuple(versions))


def load_ndarray_list(path: str | Path) -> NDArrayList:
    """Read an NDArray-list file (e.g. the `params` of a SageMaker model)."""
    return read_ndarray_list(Path(path).read_bytes(), source=str(path))


def _read_array(cur: _Cursor) -> tuple[np.ndarray | None, str]:
    start = cur.pos
    magic = cur.unpack("<I", "the array magic")
    if magic not in MAGICS:
        raise cur.fail(
            f"wrong array magic 0x{magic:08x} (expected V1 0x{V1_MAGIC:08x}, V2 0x{V2_MAGIC:08x} or "
            f"V3 0x{V3_MAGIC:08x}; pre-V1 files are not supported)",
            at=start,
        )
    version = MAGICS[magic]
    stype = 0 if magic == V1_MAGIC else cur.unpack("<i", "the storage type")
    if stype not in (0, -1):  # -1: a "none" array (MXNet saves its undefined storage type)
        kind = STORAGE_TYPES.get(stype, f"unknown ({stype})")
        raise cur.fail(f"storage type {kind}: only dense arrays are supported", at=cur.pos - 4)
    ndim = cur.unpack("<i", "ndim")
    none_ndim = -1 if magic == V3_MAGIC else 0
    if ndim == none_ndim:
        return None, version
    if stype == -1:
        raise cur.fail(f"storage type undefined with ndim {ndim}: only dense arrays are supported")
    if not 0 <= ndim <= MAX_NDIM:
        raise cur.fail(f"ndim {ndim} is not a shape's", at=cur.pos - 4)
    shape = tuple(cur.unpack("<q", f"dimension {axis}") for axis in range(ndim))
    if any(dim < 0 for dim in shape):
        raise cur.fail(f"shape {shape} has an unknown (negative) dimension")
    cur.unpack("<i", "the device type")
    cur.unpack("<i", "the device id")
    type_flag = cur.unpack("<i", "the type flag")
    if type_flag not in DTYPES:
        name = TYPE_NAMES.get(type_flag, f"unknown type flag {type_flag}")
        raise cur.fail(f"dtype {name} cannot be read with numpy", at=cur.pos - 4)
    dtype = DTYPES[type_flag]
    size = math.prod(shape)  # Python ints: a corrupt shape cannot overflow into a small size
    raw = cur.take(size * dtype.itemsize, f"{size} {TYPE_NAMES[type_flag]} values of shape {shape}")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    return array, version
