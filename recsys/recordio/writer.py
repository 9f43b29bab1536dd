"""Fast writers of FM training data as recordIO-protobuf, byte-identical to SageMaker's SDK v2 writers.

Why hand-encoded: building one protobuf message per row and serialising it runs at tens of thousands of
records per second, which makes the writer the slowest step of preprocessing. An FM record has a fixed
shape, so a whole batch is laid out at once with numpy: lengths first (varint sizes, nested message
lengths, padding), then tags, varints and float bytes scattered to their offsets.

Layout of one sparse record (what `write_spmatrix_to_sparse_tensor` of SDK v2 produces for float32):

    Record.features (1) = entry {key (1) = "values", value (2) = Value {float32_tensor (2) = {
        values (1) = row data (packed float; absent for an empty row),
        keys (2) = column indices (packed uint64 varints; absent for an empty row),
        shape (3) = [feature_dim] }}}
    Record.label (2) = entry {key = "values", value = Value {float32_tensor = {values = [label]}}}

A dense record (`write_numpy_to_dense_tensor`) has `values` only: no keys, no shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.recordio.framing import HEADER, MAGIC, MAX_LENGTH
from recsys.recordio.wire import (
    ByteArray,
    IntArray,
    encode_varint,
    put_bytes,
    put_rows,
    put_varints,
    varint_size,
    varint_sizes,
)

MAP_KEY = "values"  # the one key SageMaker's algorithms read from `features` and `label`
ENTRY_KEY = b"\x0a\x06" + MAP_KEY.encode()  # map entry field 1 (key, length-delimited)
TAG_FEATURES = 0x0A  # Record field 1, length-delimited
TAG_LABEL = 0x12  # Record field 2
TAG_ENTRY_VALUE = 0x12  # map entry field 2
TAG_FLOAT32_TENSOR = 0x12  # Value field 2
TAG_VALUES, TAG_KEYS, TAG_SHAPE = 0x0A, 0x12, 0x1A  # Float32Tensor fields 1, 2, 3 (packed)

# The label entry: always one float32, so always 20 bytes: 16 of tags and lengths, then the float.
LABEL_PREFIX = bytes([TAG_LABEL, 18, *ENTRY_KEY, TAG_ENTRY_VALUE, 8, TAG_FLOAT32_TENSOR, 6, TAG_VALUES, 4])
LABEL_SIZE = len(LABEL_PREFIX) + 4

BATCH_ROWS = 1 << 16  # rows encoded at once: bounds the temporary arrays to some tens of MB
DEFAULT_SHARD_BYTES = 100 * 2**20
SHARD_SUFFIX = ".pbr"  # the SDK v2 `record_set()` named its shards `matrix_<n>.pbr`
F32 = np.dtype("<f4")
QUIET_NAN_BIT = 0x00400000


class EncodedBatch(NamedTuple):
    """Consecutive framed records: their bytes, and the framed size of each (all multiples of 4)."""

    data: ByteArray
    sizes: IntArray


def _framed_sizes(payload: IntArray) -> IntArray:
    if payload.size and int(payload.max()) > MAX_LENGTH:
        raise ValueError(f"a record of {int(payload.max())} bytes exceeds recordIO's {MAX_LENGTH}")
    return HEADER.size + ((payload + 3) & ~3)


def _put_headers(out: ByteArray, starts: IntArray, payload: IntArray) -> None:
    words = out.view("<u4")  # records start at multiples of 4, so their headers are aligned words
    first = starts // 4
    words[first] = MAGIC
    words[first + 1] = payload


def _as_f32_bytes(values: npt.NDArray[np.floating]) -> ByteArray:
    """Little-endian float32 bytes, one row of 4 per value (as packed `float` fields hold them).

    NaNs get their quiet bit set, as protobuf's Python API does when a float32 passes through a Python
    float, so that even signalling NaNs come out as the SDK's writer would write them.
    """
    floats = np.ascontiguousarray(values, dtype=F32)
    nan = np.isnan(floats)
    if nan.any():
        bits = floats.view("<u4").copy()
        bits[nan] |= np.uint32(QUIET_NAN_BIT)
        floats = bits.view(F32)
    return floats.view(np.uint8).reshape(-1, 4)


def _encode_sparse_batch(
    data: npt.NDArray[np.float32],
    indices: npt.NDArray[np.integer],
    indptr: IntArray,
    labels: npt.NDArray[np.float32] | None,
    shape_field: bytes,
) -> EncodedBatch:
    """Frame rows whose CSR arrays start at 0 (`indptr[0] == 0`)."""
    n_rows = indptr.size - 1
    nnz = np.diff(indptr)
    # Sizes, inside out: keys, values, the tensor, the Value, the map entry, the record, the frame.
    key_sizes = varint_sizes(indices)
    key_ends = np.zeros(indices.size + 1, dtype=np.int64)
    np.cumsum(key_sizes, out=key_ends[1:])
    keys_len = key_ends[indptr[1:]] - key_ends[indptr[:-1]]
    values_len = 4 * nnz
    present = nnz > 0  # packed fields with no element are not written at all
    values_len_size, keys_len_size = varint_sizes(values_len), varint_sizes(keys_len)
    values_field = np.where(present, 1 + values_len_size + values_len, 0)
    keys_field = np.where(present, 1 + keys_len_size + keys_len, 0)
    tensor_len = values_field + keys_field + len(shape_field)
    tensor_len_size = varint_sizes(tensor_len)
    value_len = 1 + tensor_len_size + tensor_len
    value_len_size = varint_sizes(value_len)
    entry_len = len(ENTRY_KEY) + 1 + value_len_size + value_len
    entry_len_size = varint_sizes(entry_len)
    payload = 1 + entry_len_size + entry_len + (LABEL_SIZE if labels is not None else 0)
    sizes = _framed_sizes(payload)
    starts = np.zeros(n_rows, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)  # zeros: the padding is already in place

    _put_headers(out, starts, payload)
    at = starts + HEADER.size
    out[at] = TAG_FEATURES
    put_varints(out, at + 1, entry_len, entry_len_size)
    at = at + 1 + entry_len_size
    put_bytes(out, at, ENTRY_KEY + bytes([TAG_ENTRY_VALUE]))
    at = at + len(ENTRY_KEY) + 1
    put_varints(out, at, value_len, value_len_size)
    at = at + value_len_size
    out[at] = TAG_FLOAT32_TENSOR
    put_varints(out, at + 1, tensor_len, tensor_len_size)
    at = at + 1 + tensor_len_size

    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), nnz)  # the row of each stored element
    rank = np.arange(indices.size, dtype=np.int64) - indptr[row_of]  # its place within the row
    here = at[present]
    out[here] = TAG_VALUES
    put_varints(out, here + 1, values_len[present], values_len_size[present])
    put_rows(out, (at + 1 + values_len_size)[row_of] + 4 * rank, _as_f32_bytes(data))
    at = at + values_field

    here = at[present]
    out[here] = TAG_KEYS
    put_varints(out, here + 1, keys_len[present], keys_len_size[present])
    key_offsets = key_ends[:-1] - key_ends[indptr[row_of]]
    put_varints(out, (at + 1 + keys_len_size)[row_of] + key_offsets, indices, key_sizes)
    at = at + keys_field

    put_bytes(out, at, shape_field)
    if labels is not None:
        at = at + len(shape_field)
        put_bytes(out, at, LABEL_PREFIX)
        put_rows(out, at + len(LABEL_PREFIX), _as_f32_bytes(labels))
    return EncodedBatch(out, sizes)


def _check_labels(labels: npt.ArrayLike | None, n_rows: int) -> npt.NDArray[np.float32] | None:
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n_rows:
        raise ValueError(f"labels must be a vector of {n_rows} values, got shape {array.shape}")
    return array.astype(F32, copy=False)


def sparse_batches(
    rows: sp.spmatrix | sp.sparray,
    labels: npt.ArrayLike | None,
    feature_dim: int,
    *,
    batch_rows: int | None = None,
) -> Iterator[EncodedBatch]:
    """Encode the rows of a sparse matrix as FM records, `batch_rows` at a time.

    Values are cast to float32 (FM reads only Float32 tensors); stored entries are written in CSR order,
    explicit zeros included, as the SDK does. `labels` may be None for inference input (no label entry).
    """
    if not sp.issparse(rows) or rows.ndim != 2:
        raise TypeError(f"rows must be a 2-D scipy sparse matrix, got {type(rows).__name__}")
    csr = rows.tocsr()
    n_rows, n_cols = csr.shape
    if not 0 < feature_dim < 1 << 64 or feature_dim < n_cols:
        raise ValueError(f"feature_dim must be in [{max(n_cols, 1)}, 2**64), got {feature_dim}")
    label_array = _check_labels(labels, n_rows)
    indptr = csr.indptr.astype(np.int64, copy=False)
    if csr.indices.size and int(csr.indices.min()) < 0:
        raise ValueError("rows has negative column indices")
    data = csr.data.astype(F32, copy=False)
    shape_field = bytes([TAG_SHAPE, varint_size(feature_dim)]) + encode_varint(feature_dim)
    step = batch_rows or BATCH_ROWS
    for first in range(0, n_rows, step):
        last = min(first + step, n_rows)
        lo, hi = int(indptr[first]), int(indptr[last])
        yield _encode_sparse_batch(
            data[lo:hi],
            csr.indices[lo:hi],
            indptr[first : last + 1] - lo,
            None if label_array is None else label_array[first:last],
            shape_field,
        )


def dense_batches(
    rows: npt.ArrayLike, labels: npt.ArrayLike | None, *, batch_rows: int | None = None
) -> Iterator[EncodedBatch]:
    """Encode the rows of a 2-D array as dense records (`values` only), as `write_numpy_to_dense_tensor`.

    Every record has the same size, so each batch is one (rows × record size) byte table.
    """
    matrix = np.asarray(rows)
    if matrix.ndim != 2:
        raise ValueError(f"rows must be a matrix, got shape {matrix.shape}")
    n_rows, dim = matrix.shape
    label_array = _check_labels(labels, n_rows)
    values_len = 4 * dim
    tensor = bytes([TAG_VALUES]) + encode_varint(values_len) if dim else b""  # empty packed: absent
    tensor_len = len(tensor) + values_len
    value = bytes([TAG_FLOAT32_TENSOR]) + encode_varint(tensor_len)
    value_len = len(value) + tensor_len
    entry = ENTRY_KEY + bytes([TAG_ENTRY_VALUE]) + encode_varint(value_len)
    entry_len = len(entry) + value_len
    prefix = bytes([TAG_FEATURES]) + encode_varint(entry_len) + entry + value + tensor
    payload = len(prefix) + values_len + (LABEL_SIZE if label_array is not None else 0)
    size = int(_framed_sizes(np.array([payload], dtype=np.int64))[0])
    head = np.frombuffer(HEADER.pack(MAGIC, payload) + prefix, dtype=np.uint8)
    step = batch_rows or BATCH_ROWS
    for first in range(0, n_rows, step):
        last = min(first + step, n_rows)
        table = np.zeros((last - first, size), dtype=np.uint8)
        table[:, : head.size] = head
        end = head.size + values_len
        table[:, head.size : end] = _as_f32_bytes(matrix[first:last]).reshape(last - first, values_len)
        if label_array is not None:
            table[:, end : end + len(LABEL_PREFIX)] = np.frombuffer(LABEL_PREFIX, dtype=np.uint8)
            table[:, end + len(LABEL_PREFIX) : end + LABEL_SIZE] = _as_f32_bytes(label_array[first:last])
        yield EncodedBatch(table.reshape(-1), np.full(last - first, size, dtype=np.int64))


def _write_batches(stream: IO[bytes], batches: Iterator[EncodedBatch]) -> int:
    written = 0
    for batch in batches:
        stream.write(batch.data.data)
        written += batch.data.size
    return written


def write_sparse_records(
    stream: IO[bytes], rows: sp.spmatrix | sp.sparray, labels: npt.ArrayLike | None, feature_dim: int
) -> int:
    """Write one FM record per row of `rows` (keys = column indices, shape = [feature_dim]).

    The bytes equal SageMaker SDK v2's `write_spmatrix_to_sparse_tensor` for float32 input. Returns the
    number of bytes written.
    """
    return _write_batches(stream, sparse_batches(rows, labels, feature_dim))


def write_dense_records(stream: IO[bytes], rows: npt.ArrayLike, labels: npt.ArrayLike | None) -> int:
    """Write one dense record per row (as SDK v2's `write_numpy_to_dense_tensor` for float32 input).

    Returns the number of bytes written.
    """
    return _write_batches(stream, dense_batches(rows, labels))


def write_sharded(
    directory: str | Path,
    rows: sp.spmatrix | sp.sparray | npt.NDArray[np.floating],
    labels: npt.ArrayLike | None,
    feature_dim: int,
    max_bytes: int = DEFAULT_SHARD_BYTES,
    prefix: str = "part",
) -> list[Path]:
    """Write the records into `<prefix>-00000.pbr`, `-00001.pbr`, … of at most `max_bytes` each.

    Why shards: with `ShardedByS3Key` each training host reads its own files. A new file starts before a
    record would push the current one past `max_bytes`; the shards in name order concatenate to the
    single-file output. A sparse matrix gives sparse records, a dense array dense ones (its width must
    equal `feature_dim`). Refuses to write beside existing shards of the same prefix, which would
    silently join the channel. No rows, no files.
    """
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = sorted(out_dir.glob(f"{prefix}-*{SHARD_SUFFIX}"))
    if stale:
        raise FileExistsError(
            f"{out_dir} already holds shards {prefix}-*{SHARD_SUFFIX}, e.g. {stale[0].name}"
        )
    if sp.issparse(rows):
        batches = sparse_batches(rows, labels, feature_dim)
    else:
        width = np.shape(rows)[1] if np.ndim(rows) == 2 else None
        if width != feature_dim:
            raise ValueError(f"dense rows must be {feature_dim} wide, got shape {np.shape(rows)}")
        batches = dense_batches(rows, labels)

    paths: list[Path] = []
    stream: IO[bytes] | None = None
    used = 0
    try:
        for batch in batches:
            if batch.sizes.size and int(batch.sizes.max()) > max_bytes:
                raise ValueError(f"a record of {int(batch.sizes.max())} bytes does not fit in {max_bytes}")
            ends = np.cumsum(batch.sizes)
            done = 0  # bytes of this batch already written
            while done < batch.data.size:
                if stream is None or used == max_bytes:
                    stream = _next_shard(stream, out_dir, prefix, paths)
                    used = 0
                # the last record boundary that keeps the current shard within max_bytes
                fit = int(np.searchsorted(ends, done + max_bytes - used, side="right"))
                cut = int(ends[fit - 1]) if fit else done
                if cut == done:  # not even the next record fits: close this shard
                    used = max_bytes
                    continue
                stream.write(batch.data[done:cut].data)
                used += cut - done
                done = cut
    finally:
        if stream is not None:
            stream.close()
    return paths


def _next_shard(current: IO[bytes] | None, out_dir: Path, prefix: str, paths: list[Path]) -> IO[bytes]:
    if current is not None:
        current.close()
    path = out_dir / f"{prefix}-{len(paths):05d}{SHARD_SUFFIX}"
    paths.append(path)
    return path.open("wb")
