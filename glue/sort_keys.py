"""Sorting rows by several integer keys, numpy only (the executors' passes and the pandas baseline)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def sort_order(*keys: I64) -> I64:
    """Indices that sort rows by `keys` (first = most significant), ties in row order. When the keys' value
    ranges fit in 63 bits together they are packed into one integer and sorted once (about three times
    cheaper than np.lexsort); otherwise lexsort."""
    if not keys[0].size:
        return np.zeros(0, dtype=np.int64)
    lows = [int(k.min()) for k in keys]
    widths = [max(1, (int(k.max()) - low).bit_length()) for k, low in zip(keys, lows, strict=True)]
    if sum(widths) > 63:
        return np.lexsort(tuple(reversed(keys))).astype(np.int64)
    packed = np.zeros(keys[0].size, dtype=np.int64)
    for key, low, width in zip(keys, lows, widths, strict=True):
        packed <<= width
        packed |= key - low
    return np.argsort(packed, kind="stable").astype(np.int64)
