"""Protobuf wire-format pieces encoded in bulk with numpy: varint lengths and varints at given offsets.

Why: one Python protobuf object per record costs microseconds per field; the FM records are so regular
that their bytes can be laid out for a whole batch at once (see `writer`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]

# A varint of value v has k + 1 bytes when 2**(7k) <= v < 2**(7(k + 1)); at most 10 bytes for uint64.
_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def varint_size(value: int) -> int:
    """Bytes of the varint of one non-negative int below 2**64."""
    return 1 + sum(1 for threshold in _THRESHOLDS.tolist() if value >= threshold)


def varint_sizes(values: npt.NDArray[np.integer]) -> IntArray:
    """Bytes of the varint of each value (non-negative, below 2**64)."""
    sizes: IntArray = np.searchsorted(_THRESHOLDS, values.astype(np.uint64, copy=False), side="right")
    return sizes.astype(np.int64, copy=False) + 1


def encode_varint(value: int) -> bytes:
    """The varint of one non-negative int below 2**64 (for the constant parts of a record)."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def put_varints(
    out: ByteArray, positions: IntArray, values: npt.NDArray[np.integer], sizes: IntArray
) -> None:
    """Write the varint of `values[i]` (of `sizes[i]` bytes) at `out[positions[i]:]`, for all i at once.

    Each pass writes one 7-bit group of every value that still has one, so the cost is one numpy pass
    per byte of the longest varint (usually one to three).
    """
    pos = positions
    rest = values.astype(np.uint64, copy=True)
    size = sizes
    seven, low = np.uint64(7), np.uint64(0x7F)
    while pos.size:
        more = size > 1
        group = (rest & low).astype(np.uint8)
        group[more] |= 0x80
        out[pos] = group
        pos, rest, size = pos[more] + 1, rest[more] >> seven, size[more] - 1


def put_bytes(out: ByteArray, positions: IntArray, constant: bytes) -> None:
    """Write the same bytes at each position (tags and map keys shared by all records)."""
    for k, byte in enumerate(constant):
        out[positions + k] = byte


def put_rows(out: ByteArray, positions: IntArray, rows: ByteArray) -> None:
    """Write `rows[i]` (a fixed-width byte row, e.g. one float32) at `out[positions[i]:]` for all i."""
    for k in range(rows.shape[1]):
        out[positions + k] = rows[:, k]
