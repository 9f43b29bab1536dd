"""The bulk recordIO decoder against the message-class reader and the writer: the golden record, random
matrices, every non-canonical encoding protobuf allows, and the errors of broken files."""

from __future__ import annotations

import io
import struct

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.recordio import (
    RecordIOError,
    bulk_read_sparse_records,
    decode_records,
    frame,
    read_sparse_records,
    write_dense_records,
    write_sparse_records,
)
from recsys.recordio.framing import MAGIC
from recsys.recordio.wire import encode_varint

GOLDEN = bytes.fromhex(
    "0a23d7ce 35000000"
    "0a1f 0a0676616c756573 1215 1213 0a080000803f0000803f 120300e007 1a02c114"
    "1212 0a0676616c756573 1208 1206 0a040000803f"
    "000000"
)


def same_as_reader(data: bytes, *, require_labels: bool = True) -> sp.csr_matrix:
    """Decode with both readers, assert identical output (float bits included), return the rows."""
    rows, labels, dim = bulk_read_sparse_records(data, require_labels=require_labels)
    ref_rows, ref_labels, ref_dim = read_sparse_records(io.BytesIO(data), require_labels=require_labels)
    assert dim == ref_dim
    assert rows.shape == ref_rows.shape
    assert rows.indptr.tolist() == ref_rows.indptr.tolist()
    assert rows.indices.tolist() == ref_rows.indices.tolist()
    assert rows.data.view(np.uint32).tolist() == ref_rows.data.astype(np.float32).view(np.uint32).tolist()
    assert labels.view(np.uint32).tolist() == ref_labels.view(np.uint32).tolist()
    return rows


def same_error(data: bytes, **kwargs: bool) -> RecordIOError:
    """Both readers refuse the data at the same byte."""
    with pytest.raises(RecordIOError) as ref:
        read_sparse_records(io.BytesIO(data), **kwargs)
    with pytest.raises(RecordIOError) as bulk:
        bulk_read_sparse_records(data, **kwargs)
    assert bulk.value.offset == ref.value.offset, (bulk.value.reason, ref.value.reason)
    return bulk.value


# --- hand-made protobuf ----------------------------------------------------------------------------


def field(number: int, wire: int, body: bytes) -> bytes:
    head = encode_varint(number << 3 | wire)
    return head + encode_varint(len(body)) + body if wire == 2 else head + body


def tensor(values: list[float], keys: list[int], shape: list[int], *, packed: bool = True) -> bytes:
    if packed:
        parts = [
            field(1, 2, struct.pack(f"<{len(values)}f", *values)) if values else b"",
            field(2, 2, b"".join(encode_varint(k) for k in keys)) if keys else b"",
            field(3, 2, b"".join(encode_varint(d) for d in shape)) if shape else b"",
        ]
    else:  # one field per element: as valid as packed for a proto2 parser
        parts = [field(1, 5, struct.pack("<f", v)) for v in values]
        parts += [field(2, 0, encode_varint(k)) for k in keys] + [
            field(3, 0, encode_varint(d)) for d in shape
        ]
    return b"".join(parts)


def entry(key: bytes, tensor_bytes: bytes, kind: int = 2) -> bytes:
    return field(1, 2, key) + field(2, 2, field(kind, 2, tensor_bytes))


def frames(*payloads: bytes) -> bytes:
    return b"".join(frame(p) for p in payloads)


# --- the golden record and writer output -----------------------------------------------------------


def test_the_golden_record() -> None:
    decoded = decode_records(GOLDEN)
    assert decoded.offsets.tolist() == [0]
    assert decoded.features.values.tolist() == [1.0, 1.0]
    assert decoded.features.keys.tolist() == [0, 992]
    assert decoded.features.shape.tolist() == [2625]
    assert decoded.label.values.tolist() == [1.0]
    rows = same_as_reader(GOLDEN)
    assert rows.shape == (1, 2625)
    assert rows.indices.tolist() == [0, 992]


FLOATS = st.floats(width=32)


@st.composite
def matrices(draw: st.DrawFn) -> tuple[sp.csr_matrix, npt.NDArray[np.float32], int]:
    feature_dim = draw(
        st.one_of(st.integers(1, 40), st.integers(2**32 - 3, 2**32 + 3), st.integers(2**62, 2**63 - 1))
    )
    column = st.integers(0, min(feature_dim, 2**63 - 1) - 1)
    rows = draw(st.lists(st.lists(st.tuples(column, FLOATS), max_size=40), max_size=12))
    counts = [len(r) for r in rows]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.array([c for r in rows for c, _ in r], np.int64)
    data = np.array([v for r in rows for _, v in r], np.float32)
    labels = np.array(draw(st.lists(FLOATS, min_size=len(rows), max_size=len(rows))), np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), feature_dim)), labels, feature_dim


@settings(max_examples=120, deadline=None)
@given(matrices(), st.booleans())
def test_writer_output_reads_back_as_the_reader_reads_it(
    case: tuple[sp.csr_matrix, npt.NDArray[np.float32], int], with_labels: bool
) -> None:
    rows, labels, feature_dim = case
    stream = io.BytesIO()
    write_sparse_records(stream, rows, labels if with_labels else None, feature_dim)
    back = same_as_reader(stream.getvalue(), require_labels=with_labels)
    assert back.indices.tolist() == rows.indices.tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 40), st.integers(0, 2**31))
def test_dense_records(n_rows: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n_rows, width)).astype(np.float32) * (rng.random((n_rows, width)) < 0.5)
    stream = io.BytesIO()
    write_dense_records(stream, dense, np.arange(n_rows, dtype=np.float32))
    rows = same_as_reader(stream.getvalue())
    assert np.array_equal(rows.toarray(), dense)


def test_several_hundred_thousand_records_in_one_buffer() -> None:
    rng = np.random.default_rng(0)
    n, dim = 200_000, 170_000
    indices = np.stack([rng.integers(0, 138_000, n), rng.integers(138_000, dim, n)], axis=1).reshape(-1)
    rows = sp.csr_matrix((np.ones(2 * n, np.float32), indices, np.arange(0, 2 * n + 1, 2)), shape=(n, dim))
    labels = rng.integers(0, 2, n).astype(np.float32)
    stream = io.BytesIO()
    write_sparse_records(stream, rows, labels, dim)
    back, back_labels, back_dim = bulk_read_sparse_records(stream.getvalue())
    assert back_dim == dim
    assert np.array_equal(back.indices, rows.indices)
    assert np.array_equal(back_labels, labels)


# --- encodings the canonical layout does not cover -------------------------------------------------


def test_fields_in_any_order_unknown_fields_and_other_map_keys() -> None:
    features = entry(b"values", tensor([1.0, 2.0], [3, 7], [10]))
    label = entry(b"values", tensor([0.5], [], []))
    other = entry(b"other", tensor([9.0], [1], [10]))
    payloads = [
        field(2, 2, label) + field(1, 2, features),  # label first
        field(3, 2, b"uid-1") + field(1, 2, other) + field(1, 2, features) + field(2, 2, label),
        field(1, 2, features) + field(4, 2, b"meta") + field(2, 2, label) + field(9, 0, encode_varint(5)),
        field(1, 2, features) + field(2, 2, label) + field(15, 1, b"\x00" * 8) + field(16, 5, b"\x00" * 4),
    ]
    rows = same_as_reader(frames(*payloads))
    assert rows.indices.tolist() == [3, 7] * 4


def test_unpacked_repeated_fields_and_merged_messages() -> None:
    unpacked = entry(b"values", tensor([1.0, 2.0], [3, 7], [10], packed=False))
    split_tensor = field(1, 2, b"values") + field(2, 2, field(2, 2, tensor([1.0], [3], [])))
    split_tensor += field(2, 2, field(2, 2, tensor([2.0], [7], [10])))  # Value given twice: they merge
    label = entry(b"values", tensor([1.0], [], []))
    rows = same_as_reader(
        frames(field(1, 2, unpacked) + field(2, 2, label), field(1, 2, split_tensor) + field(2, 2, label))
    )
    assert rows.indices.tolist() == [3, 7, 3, 7]


def test_the_last_map_entry_for_a_key_wins() -> None:
    first = entry(b"values", tensor([1.0], [1], [10]))
    second = entry(b"values", tensor([2.0], [2], [10]))
    label = entry(b"values", tensor([1.0], [], []))
    rows = same_as_reader(frames(field(1, 2, first) + field(1, 2, second) + field(2, 2, label)))
    assert rows.indices.tolist() == [2]


def test_overlong_varints() -> None:
    label = entry(b"values", tensor([1.0], [], []))
    features = entry(b"values", tensor([1.0], [5], [10]))
    overlong = b"\x0a" + bytes([len(features) | 0x80, 0x00]) + features  # a 2-byte varint for a small length
    rows = same_as_reader(frames(overlong + field(2, 2, label), field(1, 2, features) + field(2, 2, label)))
    assert rows.indices.tolist() == [5, 5]


def test_split_records_are_joined() -> None:
    """dmlc's writer cuts a payload at each aligned magic word (dropped) into start/middle/end parts."""
    magic_float = struct.unpack("<f", struct.pack("<I", MAGIC))[0]
    stream = io.BytesIO()
    row = sp.csr_matrix(np.full((1, 8), magic_float, np.float32))
    write_sparse_records(stream, row, np.ones(1), 2625)
    framed = stream.getvalue()
    payload = framed[8 : 8 + struct.unpack_from("<I", framed, 4)[0]]
    cuts = [i for i in range(0, len(payload) - 3, 4) if payload[i : i + 4] == struct.pack("<I", MAGIC)]
    assert len(cuts) >= 2
    parts, start = [], 0
    for cut in cuts:
        parts.append(payload[start:cut])
        start = cut + 4
    parts.append(payload[start:])
    flags = [1] + [2] * (len(parts) - 2) + [3]
    split = b"".join(
        struct.pack("<II", MAGIC, flag << 29 | len(part)) + part + b"\0" * (-len(part) % 4)
        for flag, part in zip(flags, parts, strict=True)
    )
    rows = same_as_reader(GOLDEN + split + GOLDEN)
    assert rows.shape == (3, 2625)
    assert rows.data[2:10].tolist() == [magic_float] * 8


def test_a_payload_holding_the_magic_word_is_not_a_header() -> None:
    magic_float = struct.unpack("<f", struct.pack("<I", MAGIC))[0]
    rows = sp.csr_matrix(np.array([[magic_float, magic_float, 1.0, magic_float]], np.float32))
    stream = io.BytesIO()
    write_sparse_records(stream, sp.vstack([rows] * 5).tocsr(), np.ones(5), 4)
    same_as_reader(stream.getvalue())


def test_empty_input() -> None:
    rows, labels, dim = bulk_read_sparse_records(b"")
    assert rows.shape == (0, 0)
    assert labels.size == 0
    assert dim == 0


# --- errors ----------------------------------------------------------------------------------------


def writer_bytes(n: int = 4, dim: int = 10) -> bytes:
    rows = sp.csr_matrix(np.eye(n, dim, dtype=np.float32))
    stream = io.BytesIO()
    write_sparse_records(stream, rows, np.ones(n), dim)
    return stream.getvalue()


def test_truncated_and_corrupt_files() -> None:
    data = writer_bytes()
    size = len(data) // 4
    same_error(data[:-3])  # truncated padding/payload of the last record
    same_error(data[: size + 5])
    corrupt = bytearray(data)
    corrupt[size * 2 : size * 2 + 4] = b"\xff\xff\xff\xff"  # somewhere inside
    with pytest.raises(RecordIOError):
        bulk_read_sparse_records(bytes(corrupt))


def test_record_level_refusals_name_the_record() -> None:
    label = field(2, 2, entry(b"values", tensor([1.0], [], [])))
    good = field(1, 2, entry(b"values", tensor([1.0], [1], [10]))) + label
    cases = {
        "float64": field(1, 2, entry(b"values", struct.pack("<d", 1.0), kind=3)) + label,
        "no features": label,
        "no label": field(1, 2, entry(b"values", tensor([1.0], [1], [10]))),
        "key outside": field(1, 2, entry(b"values", tensor([1.0], [10], [10]))) + label,
        "other dim": field(1, 2, entry(b"values", tensor([1.0], [1], [11]))) + label,
        "no shape": field(1, 2, entry(b"values", tensor([1.0], [1], []))) + label,
        "keys != values": field(1, 2, entry(b"values", tensor([1.0, 2.0], [1], [10]))) + label,
        "two labels": field(1, 2, entry(b"values", tensor([1.0], [1], [10])))
        + field(2, 2, entry(b"values", tensor([1.0, 0.0], [], []))),
        "truncated field": good[:-3] + b"\x0a\x05ab",
        "group": good + b"\x0b",
    }
    for name, bad in cases.items():
        error = same_error(frames(good, good, bad, good))
        assert error.offset == 2 * len(frame(good)), name


def test_a_missing_label_reads_as_nan_when_allowed() -> None:
    features = field(1, 2, entry(b"values", tensor([1.0], [1], [10])))
    rows = same_as_reader(frames(features, features), require_labels=False)
    _, labels, _ = bulk_read_sparse_records(frames(features), require_labels=False)
    assert rows.shape == (2, 10)
    assert np.isnan(labels).all()
