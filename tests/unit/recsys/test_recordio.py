"""recordIO-protobuf: the golden record, the fast writer against the protobuf message classes, round trips,
framing, sharding and the errors a broken file must raise."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import recsys.recordio.writer as writer_module
from recsys.recordio import (
    RecordIOError,
    frame,
    iter_records,
    message_class,
    read_records,
    read_sparse_records,
    record_class,
    sparse_batches,
    write_dense_records,
    write_sharded,
    write_sparse_records,
)
from recsys.recordio.framing import HEADER, MAGIC, MAGIC_BYTES

# reference/sagemaker-fm.md §4.3: user 0 × item 49 of 943 users (keys 0, 992), feature_dim 2625, label 1.
GOLDEN = bytes.fromhex(
    "0a23d7ce 35000000"
    "0a1f 0a0676616c756573 1215 1213 0a080000803f0000803f 120300e007 1a02c114"
    "1212 0a0676616c756573 1208 1206 0a040000803f"
    "000000"
)
N_USERS, FEATURE_DIM = 943, 2625
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1


def csr(rows: list[list[tuple[int, float]]], n_cols: int) -> sp.csr_matrix:
    """A CSR matrix holding exactly the given entries per row, in that order (duplicates and zeros kept)."""
    counts = [len(row) for row in rows]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.array([col for row in rows for col, _ in row], dtype=np.int64)
    data = np.array([value for row in rows for _, value in row], dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_cols))


def golden_matrix() -> sp.csr_matrix:
    return csr([[(0, 1.0), (N_USERS + 49, 1.0)], [(3, 1.0), (N_USERS + 171, 1.0)]], FEATURE_DIM)


def reference_sparse(rows: sp.csr_matrix, labels: npt.NDArray[Any] | None, feature_dim: int) -> bytes:
    """The slow way, as SageMaker SDK v2 does it: one message per row through the message classes."""
    record_type = record_class()
    out = io.BytesIO()
    for i in range(rows.shape[0]):
        record = record_type()
        lo, hi = rows.indptr[i], rows.indptr[i + 1]
        tensor = record.features["values"].float32_tensor
        tensor.values.extend(rows.data[lo:hi].astype(np.float32))
        tensor.keys.extend(rows.indices[lo:hi].astype(np.uint64))
        tensor.shape.extend([feature_dim])
        if labels is not None:
            record.label["values"].float32_tensor.values.extend([np.float32(labels[i])])
        out.write(frame(record.SerializeToString()))
    return out.getvalue()


def reference_dense(rows: npt.NDArray[Any], labels: npt.NDArray[Any] | None) -> bytes:
    """SDK v2's `write_numpy_to_dense_tensor` for float32, through the message classes."""
    record_type = record_class()
    out = io.BytesIO()
    for i, row in enumerate(rows):
        record = record_type()
        record.features["values"].float32_tensor.values.extend(row.astype(np.float32))
        if labels is not None:
            record.label["values"].float32_tensor.values.extend([np.float32(labels[i])])
        out.write(frame(record.SerializeToString()))
    return out.getvalue()


def encode(rows: sp.csr_matrix, labels: npt.NDArray[Any] | None, feature_dim: int) -> bytes:
    stream = io.BytesIO()
    written = write_sparse_records(stream, rows, labels, feature_dim)
    assert written == len(stream.getvalue())
    return stream.getvalue()


def bits(values: npt.NDArray[Any]) -> npt.NDArray[np.uint32]:
    """float32 bit patterns, with NaNs quieted as protobuf's Python API quiets them."""
    raw = np.asarray(values, dtype=np.float32).view(np.uint32).copy()
    raw[np.isnan(np.asarray(values, dtype=np.float32))] |= np.uint32(0x00400000)
    return raw


# --- strategies ---------------------------------------------------------------------------------------

FLOATS = st.floats(width=32)  # NaN (any payload), ±inf, ±0, subnormals, the extremes


@st.composite
def sparse_inputs(draw: st.DrawFn) -> tuple[sp.csr_matrix, npt.NDArray[np.float32], int]:
    """(rows, labels, feature_dim): empty rows, unsorted or repeated columns, columns near 2**32 and 2**63."""
    feature_dim = draw(
        st.one_of(st.integers(1, 40), st.integers(2**32 - 3, 2**32 + 3), st.integers(2**62, INT64_MAX))
    )
    n_cols = draw(st.sampled_from([feature_dim, max(1, feature_dim // 3)]))
    column = st.one_of(st.integers(0, n_cols - 1), st.integers(max(0, n_cols - 4), n_cols - 1))
    entry = st.tuples(column, FLOATS)
    rows = draw(st.lists(st.lists(entry, max_size=6), max_size=10))
    labels = np.array(draw(st.lists(FLOATS, min_size=len(rows), max_size=len(rows))), dtype=np.float32)
    return csr(rows, n_cols), labels, feature_dim


# --- the golden record and the schema -----------------------------------------------------------------


def test_the_golden_record_is_reproduced_byte_for_byte() -> None:
    data = encode(golden_matrix(), np.ones(2, dtype=np.float32), FEATURE_DIM)
    assert len(GOLDEN) == 64
    assert data[:64] == GOLDEN
    assert len(data) == 128
    assert data == reference_sparse(golden_matrix(), np.ones(2), FEATURE_DIM)


def test_the_message_classes_give_the_golden_payload() -> None:
    record = record_class()()
    tensor = record.features["values"].float32_tensor
    tensor.values.extend([1.0, 1.0])
    tensor.keys.extend([0, 992])
    tensor.shape.extend([FEATURE_DIM])
    record.label["values"].float32_tensor.values.extend([1.0])
    payload = record.SerializeToString()
    assert len(payload) == 53
    assert frame(payload) == GOLDEN


def test_the_schema_has_sagemakers_field_numbers() -> None:
    def numbers(name: str) -> dict[str, int]:
        return {field.name: field.number for field in message_class(name).DESCRIPTOR.fields}

    assert numbers("Record") == {"features": 1, "label": 2, "uid": 3, "metadata": 4, "configuration": 5}
    assert numbers("Value") == {"float32_tensor": 2, "float64_tensor": 3, "int32_tensor": 7, "bytes": 9}
    assert numbers("Float32Tensor") == {"values": 1, "keys": 2, "shape": 3}
    value = message_class("Value").DESCRIPTOR
    assert [field.name for field in value.oneofs_by_name["value"].fields] == list(numbers("Value"))
    features = message_class("Record").DESCRIPTOR.fields_by_name["features"]
    assert features.message_type.GetOptions().map_entry
    for field in message_class("Float32Tensor").DESCRIPTOR.fields:
        assert field.is_packed


# --- the fast writer against the message classes -------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(sparse_inputs(), st.booleans(), st.integers(1, 4))
def test_sparse_bytes_equal_the_message_classes(
    case: tuple[sp.csr_matrix, npt.NDArray[np.float32], int], with_labels: bool, batch_rows: int
) -> None:
    rows, labels, feature_dim = case
    label_arg = labels if with_labels else None
    expected = reference_sparse(rows, label_arg, feature_dim)
    assert encode(rows, label_arg, feature_dim) == expected
    batches = list(sparse_batches(rows, label_arg, feature_dim, batch_rows=batch_rows))
    assert b"".join(batch.data.tobytes() for batch in batches) == expected
    sizes = np.concatenate([batch.sizes for batch in batches]) if batches else np.array([], dtype=np.int64)
    assert sizes.tolist() == [
        HEADER.size + len(p) + (-len(p) % 4) for p in read_records(io.BytesIO(expected))
    ]
    for payload in read_records(io.BytesIO(expected)):  # each payload decodes and re-encodes to itself
        assert record_class().FromString(payload).SerializeToString() == payload


@pytest.mark.parametrize("nnz", [31, 32, 33, 200, 4096, 5000])
def test_long_rows_need_multi_byte_lengths(nnz: int) -> None:
    # 4 * nnz >= 128 and >= 16384 make every nested length a 2- or 3-byte varint.
    rng = np.random.default_rng(nnz)
    feature_dim = 2**40
    entries = [
        [(int(c), float(v)) for c, v in zip(rng.integers(0, feature_dim, n), rng.normal(size=n), strict=True)]
        for n in (nnz, 0, nnz // 2, 1)
    ]
    rows = csr(entries, feature_dim)
    labels = rng.normal(size=4).astype(np.float32)
    data = encode(rows, labels, feature_dim)
    assert data == reference_sparse(rows, labels, feature_dim)
    back, _, _ = read_sparse_records(io.BytesIO(data))
    assert back.indices.tolist() == rows.indices.tolist()
    dense = rng.normal(size=(3, nnz)).astype(np.float32)
    stream = io.BytesIO()
    write_dense_records(stream, dense, labels[:3])
    assert stream.getvalue() == reference_dense(dense, labels[:3])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2**64 - 1), st.lists(st.integers(0, 3), max_size=4))
def test_shapes_up_to_the_uint64_limit(feature_dim: int, counts: list[int]) -> None:
    n_cols = min(feature_dim, INT64_MAX)  # scipy's indices stop at int64; the shape field does not
    rows = csr([[(n_cols - 1 - k, float(k)) for k in range(min(c, n_cols))] for c in counts], n_cols)
    labels = np.arange(len(counts), dtype=np.float32)
    assert encode(rows, labels, feature_dim) == reference_sparse(rows, labels, feature_dim)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 6).flatmap(
        lambda d: st.lists(st.lists(FLOATS, min_size=d, max_size=d), max_size=6).map(
            lambda rows: np.array(rows, dtype=np.float32).reshape(len(rows), d)
        )
    ),
    st.booleans(),
)
def test_dense_bytes_equal_the_message_classes(rows: npt.NDArray[np.float32], with_labels: bool) -> None:
    labels = np.linspace(0, 1, rows.shape[0], dtype=np.float32) if with_labels else None
    stream = io.BytesIO()
    written = write_dense_records(stream, rows, labels)
    assert stream.getvalue() == reference_dense(rows, labels)
    assert written == len(stream.getvalue())


def test_input_is_cast_to_float32_as_fm_requires() -> None:
    rows64 = golden_matrix().astype(np.float64)
    assert encode(rows64, np.ones(2, dtype=np.int64), FEATURE_DIM)[:64] == GOLDEN
    as_array = sp.csr_array(golden_matrix())
    assert encode(as_array, np.ones(2), FEATURE_DIM)[:64] == GOLDEN
    assert encode(golden_matrix().tocoo(), np.ones(2), FEATURE_DIM)[:64] == GOLDEN


def test_bad_writer_input_is_refused() -> None:
    with pytest.raises(TypeError, match="sparse"):
        write_sparse_records(io.BytesIO(), np.ones((2, 3)), np.ones(2), 3)
    with pytest.raises(ValueError, match="feature_dim"):
        write_sparse_records(io.BytesIO(), golden_matrix(), np.ones(2), FEATURE_DIM - 1)
    with pytest.raises(ValueError, match="feature_dim"):
        write_sparse_records(io.BytesIO(), golden_matrix(), np.ones(2), 2**64)
    with pytest.raises(ValueError, match="labels"):
        write_sparse_records(io.BytesIO(), golden_matrix(), np.ones(3), FEATURE_DIM)
    with pytest.raises(ValueError, match="matrix"):
        write_dense_records(io.BytesIO(), np.ones(3), None)


# --- round trips -----------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(sparse_inputs())
def test_sparse_round_trip(case: tuple[sp.csr_matrix, npt.NDArray[np.float32], int]) -> None:
    rows, labels, feature_dim = case
    back, back_labels, back_dim = read_sparse_records(io.BytesIO(encode(rows, labels, feature_dim)))
    assert back_dim == (feature_dim if rows.shape[0] else 0)
    assert back.shape == (rows.shape[0], back_dim)
    assert back.indptr.tolist() == rows.indptr.tolist()
    assert back.indices.tolist() == rows.indices.tolist()  # stored order, duplicates and zeros kept
    assert back.data.dtype == np.float32
    assert bits(back.data).tolist() == bits(rows.data).tolist()  # -0.0, subnormals, inf exactly
    assert bits(back_labels).tolist() == bits(labels).tolist()


def test_round_trip_with_columns_beyond_2_to_the_32() -> None:
    rows = csr([[(2**32 - 1, 1.0), (2**32, 2.0)], [], [(INT64_MAX - 1, -3.5), (0, 1e-45)]], INT64_MAX)
    back, labels, dim = read_sparse_records(io.BytesIO(encode(rows, np.array([1, 2, 3]), INT64_MAX)))
    assert dim == INT64_MAX
    assert back.indices.tolist() == [2**32 - 1, 2**32, INT64_MAX - 1, 0]
    assert back.data.tolist() == rows.data.tolist()
    assert labels.tolist() == [1.0, 2.0, 3.0]


def test_dense_records_read_back_as_their_nonzeros() -> None:
    dense = np.array([[0, 1.5, 0], [0, 0, 0], [-2, 0, np.inf]], dtype=np.float32)
    stream = io.BytesIO()
    write_dense_records(stream, dense, np.array([1, 0, 1]))
    stream.seek(0)
    rows, labels, dim = read_sparse_records(stream)
    assert dim == 3
    np.testing.assert_array_equal(rows.toarray(), dense)
    assert labels.tolist() == [1, 0, 1]


def test_records_without_labels() -> None:
    data = encode(golden_matrix(), None, FEATURE_DIM)
    rows, labels, _ = read_sparse_records(io.BytesIO(data), require_labels=False)
    assert rows.nnz == 4
    assert np.isnan(labels).all()
    with pytest.raises(RecordIOError, match="no label") as caught:
        read_sparse_records(io.BytesIO(data))
    assert caught.value.offset == 0


def test_an_empty_stream_reads_as_nothing() -> None:
    assert list(read_records(io.BytesIO(b""))) == []
    rows, labels, dim = read_sparse_records(io.BytesIO(b""))
    assert rows.shape == (0, 0)
    assert labels.size == 0
    assert dim == 0
    assert encode(csr([], 5), np.array([]), 5) == b""


# --- framing ---------------------------------------------------------------------------------------------


def test_framing_matches_sagemakers_sdk() -> None:
    assert frame(b"hello") == bytes.fromhex("0a23d7ce 05000000 68656c6c6f 000000")
    assert MAGIC_BYTES.hex() == "0a23d7ce"
    for length in range(9):
        framed = frame(b"x" * length)
        assert len(framed) % 4 == 0
        assert len(framed) == 8 + length + (-length % 4)
        assert framed[8 + length :] == b"\0" * (-length % 4)
        assert struct.unpack_from("<II", framed) == (MAGIC, length)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=8))
def test_read_records_returns_each_payload(payloads: list[bytes]) -> None:
    data = b"".join(frame(p) for p in payloads)
    assert list(read_records(io.BytesIO(data))) == payloads
    offsets = [offset for offset, _ in iter_records(io.BytesIO(data))]
    assert offsets == [sum(len(frame(p)) for p in payloads[:k]) for k in range(len(payloads))]


def part(cflag: int, payload: bytes) -> bytes:
    return struct.pack("<II", MAGIC, (cflag << 29) | len(payload)) + payload + b"\0" * (-len(payload) % 4)


def test_split_records_are_joined_with_the_magic_between_parts() -> None:
    # dmlc splits where an aligned word equals the magic and drops that word; the reader puts it back.
    data = part(1, b"abcd") + part(2, b"efgh") + part(3, b"ij") + frame(b"next")
    assert list(read_records(io.BytesIO(data))) == [
        b"abcd" + MAGIC_BYTES + b"efgh" + MAGIC_BYTES + b"ij",
        b"next",
    ]
    assert [offset for offset, _ in iter_records(io.BytesIO(data))] == [0, 36]


@pytest.mark.parametrize(
    ("data", "offset", "message"),
    [
        (part(3, b"ab"), 0, "without its start"),
        (part(1, b"abcd") + frame(b"x"), 12, "inside a split record"),
        (part(1, b"abcd") + part(1, b"efgh"), 12, "starts inside another"),
        (part(1, b"abcd"), 0, "no end part"),
        (part(5, b"ab"), 0, "unknown part flag"),
    ],
)
def test_split_records_out_of_order(data: bytes, offset: int, message: str) -> None:
    with pytest.raises(RecordIOError, match=message) as caught:
        list(read_records(io.BytesIO(data)))
    assert caught.value.offset == offset


# --- errors name the byte offset ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cut", "message"),
    [(64 + 3, "header"), (64 + 8, "payload"), (64 + 8 + 52, "payload"), (64 + 8 + 53 + 1, "padding")],
)
def test_a_truncated_file(cut: int, message: str) -> None:
    data = encode(golden_matrix(), np.ones(2), FEATURE_DIM)[:cut]
    with pytest.raises(RecordIOError, match=f"truncated file.*{message}") as caught:
        read_sparse_records(io.BytesIO(data))
    assert caught.value.offset == 64
    assert "at byte 64" in str(caught.value)


def test_a_bad_magic_number() -> None:
    data = bytearray(encode(golden_matrix(), np.ones(2), FEATURE_DIM))
    data[64] ^= 0xFF
    with pytest.raises(RecordIOError, match="bad magic number 0xCED723F5") as caught:
        list(read_records(io.BytesIO(bytes(data))))
    assert caught.value.offset == 64


def record_bytes(build: Any) -> bytes:
    record = record_class()()
    build(record)
    return frame(record.SerializeToString())


def sparse_tensor(record: Any, keys: list[int], values: list[float], shape: list[int]) -> Any:
    tensor = record.features["values"].float32_tensor
    tensor.keys.extend(keys)
    tensor.values.extend(values)
    tensor.shape.extend(shape)
    return tensor


def one_label(record: Any, values: tuple[float, ...] = (1.0,)) -> Any:
    record.label["values"].float32_tensor.values.extend(values)
    return record


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (frame(b"\x0f\x00"), "does not decode"),
        (frame(b"hello world"), "does not decode"),
        (record_bytes(one_label), "no features"),
        (record_bytes(lambda r: r.features["values"].int32_tensor.values.extend([1])), "holds int32_tensor"),
        (record_bytes(lambda r: r.features["values"]), "holds no tensor"),
        (record_bytes(lambda r: sparse_tensor(r, [1, 2], [1.0], [9])), "2 keys for 1 values"),
        (record_bytes(lambda r: sparse_tensor(r, [1], [1.0], [])), "has no shape"),
        (record_bytes(lambda r: sparse_tensor(r, [9], [1.0], [9])), "key 9 outside shape"),
        (record_bytes(lambda r: sparse_tensor(r, [1], [1.0], [3, 3])), "shape \\[3, 3\\]"),
        (record_bytes(lambda r: sparse_tensor(r, [], [1.0, 2.0], [3])), "2 dense values for shape"),
        (record_bytes(lambda r: (sparse_tensor(r, [1], [1.0], [5]), one_label(r))), "differs from 2625"),
        (record_bytes(lambda r: (sparse_tensor(r, [1], [1.0], [2**63]), one_label(r))), "differs"),
        (record_bytes(lambda r: (sparse_tensor(r, [1], [1.0], [2625]), one_label(r, (1, 2)))), "2 values"),
        (
            record_bytes(
                lambda r: (
                    sparse_tensor(r, [1], [1.0], [2625]),
                    r.label["values"].float64_tensor.values.append(1),
                )
            ),
            "label\\['values'\\] holds float64_tensor",
        ),
    ],
)
def test_a_record_that_does_not_decode_as_fm_data(bad: bytes, message: str) -> None:
    data = encode(golden_matrix(), np.ones(2), FEATURE_DIM) + bad
    with pytest.raises(RecordIOError, match=message) as caught:
        read_sparse_records(io.BytesIO(data))
    assert caught.value.offset == 128
    assert str(caught.value).startswith("recordIO error at byte 128:")


def test_a_feature_dim_too_wide_for_scipy() -> None:
    rows = csr([[(0, 1.0)]], 1)
    with pytest.raises(RecordIOError, match="too large") as caught:
        read_sparse_records(io.BytesIO(encode(rows, np.ones(1), 2**63)))
    assert caught.value.offset == 0


# --- sharding --------------------------------------------------------------------------------------------


@pytest.fixture
def fm_rows() -> tuple[sp.csr_matrix, npt.NDArray[np.float32]]:
    """300 one-hot user × item rows, some with a category column, so record sizes vary."""
    rng = np.random.default_rng(7)
    users = rng.integers(0, N_USERS, 300)
    items = N_USERS + rng.integers(0, FEATURE_DIM - N_USERS - 1, 300)
    entries = [
        [(int(u), 1.0), (int(i), 1.0)] + ([(FEATURE_DIM - 1, 0.5)] if u % 3 == 0 else [])
        for u, i in zip(users, items, strict=True)
    ]
    return csr(entries, FEATURE_DIM), rng.integers(1, 6, 300).astype(np.float32)


@pytest.mark.parametrize(("max_bytes", "batch_rows"), [(None, 7), (1000, 7), (4096, 64), (10**6, 1 << 16)])
def test_shards_respect_max_bytes_and_concatenate_to_the_whole(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fm_rows: tuple[sp.csr_matrix, npt.NDArray[np.float32]],
    max_bytes: int | None,
    batch_rows: int,
) -> None:
    monkeypatch.setattr(writer_module, "BATCH_ROWS", batch_rows)  # shard cuts across batch boundaries
    rows, labels = fm_rows
    whole = encode(rows, labels, FEATURE_DIM)
    sizes = [len(frame(p)) for p in read_records(io.BytesIO(whole))]
    assert len(set(sizes)) > 1
    max_bytes = max_bytes or max(sizes)  # None: the largest record alone fills a shard
    paths = write_sharded(tmp_path / "train", rows, labels, FEATURE_DIM, max_bytes=max_bytes)
    assert [p.name for p in paths] == [f"part-{k:05d}.pbr" for k in range(len(paths))]
    shards = [p.read_bytes() for p in paths]
    assert b"".join(shards) == whole
    assert all(0 < len(s) <= max_bytes for s in shards)
    first_sizes = [len(frame(next(read_records(io.BytesIO(s))))) for s in shards[1:]]
    for shard, next_size in zip(shards[:-1], first_sizes, strict=True):  # a new file only when needed
        assert len(shard) + next_size > max_bytes
    back, back_labels, dim = read_sparse_records(io.BytesIO(b"".join(shards)))
    assert (back != rows).nnz == 0
    assert back_labels.tolist() == labels.tolist()
    assert dim == FEATURE_DIM


def test_sharding_dense_rows(tmp_path: Path) -> None:
    dense = np.arange(40, dtype=np.float32).reshape(10, 4)
    paths = write_sharded(tmp_path, dense, np.ones(10), 4, max_bytes=150, prefix="dense")
    stream = io.BytesIO()
    write_dense_records(stream, dense, np.ones(10))
    assert b"".join(p.read_bytes() for p in paths) == stream.getvalue()
    assert all(p.stat().st_size <= 150 for p in paths)
    assert paths[0].name == "dense-00000.pbr"
    with pytest.raises(ValueError, match="5 wide"):
        write_sharded(tmp_path / "other", dense, None, 5)


def test_sharding_refusals(tmp_path: Path, fm_rows: tuple[sp.csr_matrix, npt.NDArray[np.float32]]) -> None:
    rows, labels = fm_rows
    assert write_sharded(tmp_path / "empty", csr([], 5), np.array([]), 5) == []
    largest = max(len(frame(p)) for p in read_records(io.BytesIO(encode(rows, labels, FEATURE_DIM))))
    with pytest.raises(ValueError, match=f"a record of {largest} bytes does not fit in {largest - 1}"):
        write_sharded(tmp_path / "small", rows, labels, FEATURE_DIM, max_bytes=largest - 1)
    write_sharded(tmp_path / "twice", rows, labels, FEATURE_DIM)
    with pytest.raises(FileExistsError, match="part-"):
        write_sharded(tmp_path / "twice", rows, labels, FEATURE_DIM)
