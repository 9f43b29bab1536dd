"""Reading recordIO-protobuf back into a CSR matrix, decoding every record through the message classes.

Why through protobuf and not hand-decoded: the reader is the check on the fast writer and must accept any
valid `Record` (fields in any order, dense rows, split records), so it leans on the real decoder.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from google.protobuf.message import DecodeError

from recsys.recordio.framing import RecordIOError, iter_records
from recsys.recordio.schema import record_class
from recsys.recordio.writer import MAP_KEY

_FLUSH = 1 << 20  # elements gathered in Python lists before they move into numpy
_MAX_DIM = np.iinfo(np.int64).max  # scipy's index type bounds the matrix width


class _Columns:
    """Growing (indices, data) of a CSR matrix: Python lists for speed, numpy chunks for memory."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.values: list[float] = []
        self.key_chunks: list[npt.NDArray[np.int64]] = []
        self.value_chunks: list[npt.NDArray[np.float32]] = []

    def add(self, keys: Any, values: Any) -> None:
        self.keys.extend(keys)
        self.values.extend(values)
        if len(self.keys) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        self.key_chunks.append(np.array(self.keys, dtype=np.int64))
        self.value_chunks.append(np.array(self.values, dtype=np.float32))
        self.keys, self.values = [], []

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        self.flush()
        return np.concatenate(self.key_chunks), np.concatenate(self.value_chunks)


def _float32_tensor(value: Any, offset: int, where: str) -> Any:
    kind = value.WhichOneof("value")
    if kind != "float32_tensor":
        raise RecordIOError(offset, f"{where} holds {kind or 'no tensor'}; FM reads float32_tensor only")
    return value.float32_tensor


def read_sparse_records(
    stream: IO[bytes], *, require_labels: bool = True
) -> tuple[sp.csr_matrix, npt.NDArray[np.float32], int]:
    """(rows, labels, feature_dim) from FM records: the inverse of `write_sparse_records`.

    Sparse rows (keys + shape) keep their stored entries in order; dense rows (values only, as written by
    `write_dense_records`) keep their nonzeros. Every record must agree on feature_dim and carry one
    float32 label, unless `require_labels` is False, where a missing label reads as NaN. Problems raise
    `RecordIOError` with the byte offset of the record.
    """
    record_type = record_class()
    columns = _Columns()
    counts: list[int] = []
    labels: list[float] = []
    feature_dim: int | None = None
    for offset, payload in iter_records(stream):
        try:
            record = record_type.FromString(payload)
        except DecodeError as error:
            raise RecordIOError(offset, f"the payload does not decode as a Record ({error})") from None
        if MAP_KEY not in record.features:
            raise RecordIOError(offset, f"the record has no features[{MAP_KEY!r}]")
        tensor = _float32_tensor(record.features[MAP_KEY], offset, f"features[{MAP_KEY!r}]")
        keys, values, shape = tensor.keys, tensor.values, tensor.shape
        if len(shape) > 1:
            raise RecordIOError(offset, f"features have shape {list(shape)}; FM reads vectors")
        if keys:
            if len(keys) != len(values):
                raise RecordIOError(offset, f"{len(keys)} keys for {len(values)} values")
            if not shape:
                raise RecordIOError(offset, "a sparse tensor (with keys) has no shape")
            dim = int(shape[0])
            if max(keys) >= dim:
                raise RecordIOError(offset, f"key {max(keys)} outside shape [{dim}]")
            columns.add(keys, values)
            counts.append(len(keys))
        else:  # no keys: dense values, or an empty sparse row
            dim = int(shape[0]) if shape else len(values)
            if values and len(values) != dim:
                raise RecordIOError(offset, f"{len(values)} dense values for shape [{dim}]")
            dense = np.array(values, dtype=np.float32)
            nonzero = np.flatnonzero(dense)
            columns.add(nonzero.tolist(), dense[nonzero].tolist())
            counts.append(nonzero.size)
        if feature_dim is None:
            if dim > _MAX_DIM:
                raise RecordIOError(offset, f"feature_dim {dim} is too large for a scipy matrix")
            feature_dim = dim
        elif dim != feature_dim:
            raise RecordIOError(offset, f"feature_dim {dim} differs from {feature_dim} of the first record")

        if MAP_KEY in record.label:
            label = _float32_tensor(record.label[MAP_KEY], offset, f"label[{MAP_KEY!r}]").values
            if len(label) != 1:
                raise RecordIOError(offset, f"the label has {len(label)} values, expected 1")
            labels.append(label[0])
        elif require_labels:
            raise RecordIOError(offset, f"the record has no label[{MAP_KEY!r}]")
        else:
            labels.append(float("nan"))

    indices, data = columns.arrays()
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    width = feature_dim or 0
    rows = sp.csr_matrix((data, indices, indptr), shape=(len(counts), width))
    return rows, np.array(labels, dtype=np.float32), width
