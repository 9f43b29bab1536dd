"""Spark's `xxhash64` in numpy, vectorised: the executors draw the FM negatives with it (no hash column
computed in the JVM and shipped through Arrow), and the pandas baseline numbers ids and draws negatives
with it, so both produce exactly what Spark SQL's `xxhash64` would.

Spark's `xxhash64(c1, c2, …)` starts from the seed 42 and hashes each non-null column with the previous
hash as seed (`XXH64.hashInt`, `hashLong`, `hashUnsafeBytes` for strings: the reference XXH64 on the
value's little-endian bytes or UTF-8 bytes). Results are signed 64-bit, as Spark returns them. Values and
seeds broadcast against each other (numpy rules), so one chained seed per row can hash a whole
(rows × columns) block of ints at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

SPARK_SEED = 42  # the seed of Spark SQL's xxhash64()
P1 = np.uint64(11400714785074694791)
P2 = np.uint64(14029467366897019727)
P3 = np.uint64(1609587929392839161)
P4 = np.uint64(9650029242287828579)
P5 = np.uint64(2870177450012600261)

U64 = npt.NDArray[np.uint64]


def _u64(values: npt.ArrayLike) -> U64:
    array = np.asarray(values)
    if array.dtype == np.uint64:
        return array
    return array.astype(np.int64, copy=False).view(np.uint64)


def _seeds(seed: npt.ArrayLike, n: int) -> U64:
    return np.broadcast_to(_u64(seed), (n,)).copy()


def _rotl(x: U64, r: int) -> U64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _round(acc: U64, lane: U64) -> U64:
    return _rotl(acc + lane * P2, 31) * P1


def _fmix(h: U64) -> U64:
    h ^= h >> np.uint64(33)
    h *= P2
    h ^= h >> np.uint64(29)
    h *= P3
    h ^= h >> np.uint64(32)
    return h


def hash_int(values: npt.ArrayLike, seed: npt.ArrayLike = SPARK_SEED) -> U64:
    """`XXH64.hashInt` of 32-bit ints (Spark IntegerType); `seed` broadcasts against `values`."""
    with np.errstate(over="ignore"):
        words = np.asarray(values).astype(np.int32, copy=False).view(np.uint32).astype(np.uint64)
        h = (_u64(seed) + (P5 + np.uint64(4))) ^ (words * P1)
        h = _rotl(h, 23)
        h *= P2
        h += P3
        return _fmix(h)


def hash_long(values: npt.ArrayLike, seed: npt.ArrayLike = SPARK_SEED) -> U64:
    """`XXH64.hashLong` of 64-bit ints (Spark LongType); `seed` broadcasts against `values`."""
    with np.errstate(over="ignore"):
        words = _u64(values)
        h = (_u64(seed) + (P5 + np.uint64(8))) ^ _round(np.zeros_like(words), words)
        h = _rotl(h, 27)
        h *= P1
        h += P4
        return _fmix(h)


def hash_strings(values: pa.Array | pa.ChunkedArray, seed: npt.ArrayLike = SPARK_SEED) -> U64:
    """`XXH64.hashUnsafeBytes` of each string's UTF-8 bytes (no nulls), rows grouped by byte length so
    that each group is one fixed-width byte matrix."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    array = array.cast(pa.large_string())
    if array.null_count:
        raise ValueError("hash_strings: null strings (Spark skips them; no caller hashes one)")
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64, count=n + 1, offset=array.offset * 8)
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)
    lengths = np.diff(offsets)
    seeds = _seeds(seed, n)
    out = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for length in np.unique(lengths).tolist():
            rows = np.flatnonzero(lengths == length)
            matrix = data[offsets[rows][:, None] + np.arange(length)] if length else None
            out[rows] = _hash_fixed(matrix, int(length), seeds[rows])
    return out


def _words(matrix: npt.NDArray[np.uint8], start: int, width: int) -> U64:
    """Little-endian words of `width` bytes at byte `start` of each row."""
    chunk = np.ascontiguousarray(matrix[:, start : start + width])
    dtype = np.dtype("<u8") if width == 8 else np.dtype("<u4")
    return chunk.view(dtype).ravel().astype(np.uint64)


def _hash_fixed(matrix: npt.NDArray[np.uint8] | None, length: int, seed: U64) -> U64:
    """Reference XXH64 of rows that all hold `length` bytes."""
    at = 0
    if length >= 32:
        assert matrix is not None
        v = [seed + P1 + P2, seed + P2, seed.copy(), seed - P1]
        while at + 32 <= length:
            for lane in range(4):
                v[lane] = _round(v[lane], _words(matrix, at + 8 * lane, 8))
            at += 32
        h = _rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)
        for lane in range(4):
            h ^= _round(np.zeros_like(h), v[lane])
            h = h * P1 + P4
    else:
        h = seed + P5
    h = h + np.uint64(length)
    while at + 8 <= length:
        assert matrix is not None
        h ^= _round(np.zeros_like(h), _words(matrix, at, 8))
        h = _rotl(h, 27) * P1 + P4
        at += 8
    if at + 4 <= length:
        assert matrix is not None
        h ^= _words(matrix, at, 4) * P1
        h = _rotl(h, 23) * P2 + P3
        at += 4
    while at < length:
        assert matrix is not None
        h ^= matrix[:, at].astype(np.uint64) * P5
        h = _rotl(h, 11) * P1
        at += 1
    return _fmix(h)


def signed(h: U64) -> npt.NDArray[np.int64]:
    """The hash as Spark returns it (a signed long)."""
    return h.view(np.int64)


def pmod(h: U64, n: int | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Spark's `pmod(xxhash64(…), n)`: the non-negative remainder of the signed hash (n > 0). Spelled with
    a floor division, which numpy runs ~5x faster than `np.mod` for a scalar divisor."""
    values = signed(h)
    return values - (values // n) * n
