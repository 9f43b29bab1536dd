"""Bulk decoding of recordIO-protobuf: whole files of `Record`s parsed with numpy over the raw bytes.

Why: the message-class reader (`reader`) costs microseconds per record, minutes for an ML-20M-sized
channel. Here every step runs over all records at once:

1. framing: the record headers are found by scanning the file's aligned words for the magic number; the
   headers must chain from byte 0 to the end (each header's length points at the next), which proves that
   no magic-looking word inside a payload was taken for a header. Files that do not chain (split records,
   truncation, garbage) go through the strict sequential framing of `framing.iter_records`, which also
   names the offending byte;
2. protobuf: a generic wire-format walker reads the fields of many messages in lock step (one numpy pass
   per field position: tag varint, then the length or the fixed-size value), level by level:
   `Record` → map entries (`features`, `label`) → `Value` → `Float32Tensor`;
3. packed (and unpacked) repeated fields are gathered per tensor and decoded in one pass each: floats by a
   view, varints by their terminal bytes.

Protobuf semantics kept: fields in any order, unknown fields skipped, a map's last entry for a key wins,
repeated occurrences of a message field merge, packed and unpacked encodings of repeated fields both
read. Not supported (a clear error): groups, and a `Value` holding anything but a `float32_tensor`
(FM reads only Float32 tensors). `bulk_read_sparse_records` has the contract of
`reader.read_sparse_records`; the tests hold the two against each other.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.recordio.framing import HEADER, MAGIC, MAX_LENGTH, RecordIOError, iter_records

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F32 = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

MAP_KEY = b"values"  # the one key SageMaker's algorithms read from `features` and `label`
_MAX_DIM = np.iinfo(np.int64).max  # scipy's index type bounds the matrix width
WIRE_VARINT, WIRE_FIXED64, WIRE_LENGTH, WIRE_FIXED32 = 0, 1, 2, 5
_VALUE_KINDS = {3: "float64_tensor", 7: "int32_tensor", 9: "bytes"}  # Value's oneof besides field 2


class _MalformedError(Exception):
    """A problem in one record (by index); turned into `RecordIOError` with its byte offset."""

    def __init__(self, record: int, reason: str) -> None:
        super().__init__(reason)
        self.record = record
        self.reason = reason


def _fail(records: I64, bad: BoolArray, reason: str) -> None:
    """Raise for the first record (lowest index) where `bad` holds."""
    if bad.any():
        raise _MalformedError(int(records[bad].min()), reason)


@dataclass(frozen=True)
class Float32Tensors:
    """One optional Float32Tensor per record, ragged: each field as a flat array plus its row pointers.

    Row r's values are `values[values_indptr[r]:values_indptr[r + 1]]`, and so on; `present[r]` says
    whether the record had the map entry at all.
    """

    present: BoolArray
    values: F32
    values_indptr: I64
    keys: U64
    keys_indptr: I64
    shape: U64
    shape_indptr: I64


@dataclass(frozen=True)
class DecodedRecords:
    """Every record of a buffer: its byte offset, and its features["values"] and label["values"]."""

    offsets: I64
    features: Float32Tensors
    label: Float32Tensors

    def __len__(self) -> int:
        return len(self.offsets)


# --- framing -----------------------------------------------------------------------------------------


def _frame_spans(data: U8) -> tuple[U8, I64, I64, I64]:
    """(buffer, payload starts, payload ends, record offsets); the buffer is `data` unless records split."""
    size = data.size
    if size == 0:
        empty = np.zeros(0, np.int64)
        return data, empty, empty, empty
    if size % 4 == 0:
        words = data.view("<u4")
        heads = np.flatnonzero(words == MAGIC).astype(np.int64)
        if heads.size and heads[0] == 0 and heads[-1] + 1 < words.size:
            word = words[heads + 1].astype(np.int64)
            lengths = word & MAX_LENGTH
            ends = heads * 4 + HEADER.size + ((lengths + 3) & ~3)
            chained = (
                not (word >> 29).any()
                and bool(np.array_equal(ends[:-1], heads[1:] * 4))
                and int(ends[-1]) == size
            )
            if chained:
                starts = heads * 4 + HEADER.size
                return data, starts, starts + lengths, heads * 4
    # Split records, truncation or a corrupt header: the strict sequential framing (it raises with the
    # offset of the first bad header); its joined payloads go into a new buffer.
    offsets: list[int] = []
    payloads: list[bytes] = []
    for offset, payload in iter_records(io.BytesIO(data.tobytes())):
        offsets.append(offset)
        payloads.append(payload)
    lengths = np.fromiter((len(p) for p in payloads), np.int64, len(payloads))
    ends = np.cumsum(lengths)
    joined = np.frombuffer(b"".join(payloads), np.uint8)
    return joined, ends - lengths, ends, np.asarray(offsets, np.int64)


# --- the wire format ---------------------------------------------------------------------------------


def _varints(buf: U8, pos: I64, end: I64, records: I64, what: str) -> tuple[I64, I64]:
    """The varint starting at each `pos` (before `end`) as int64 (wrapping above 2**63), and the position
    after it. One pass for every value, then one per further byte of the values that have one."""
    _fail(records, pos >= end, f"truncated {what}")
    byte = buf[pos]
    value = (byte & 0x7F).astype(np.int64)
    after = pos + 1
    more = np.flatnonzero(byte >= 0x80)
    shift = 7
    while more.size:
        _fail(records[more], np.full(more.size, shift >= 70), f"{what}: a varint longer than 10 bytes")
        at = after[more]
        _fail(records[more], at >= end[more], f"truncated {what}")
        byte = buf[at]
        value[more] |= (byte & 0x7F).astype(np.int64) << shift
        after[more] = at + 1
        more = more[byte >= 0x80]
        shift += 7
    return value, after


@dataclass(frozen=True)
class _Fields:
    """The fields found in a set of message spans, ordered by span, then by position in the span."""

    span: I64  # which input span (message occurrence) the field is in
    number: I64
    wire: I64
    start: I64  # the field's data: the varint's bytes, the fixed bytes, or the length-delimited bytes
    end: I64


def _walk(buf: U8, starts: I64, ends: I64, records: I64) -> _Fields:
    """Parse the fields of every span [starts[i], ends[i]) in lock step, one field position per pass."""
    pos = starts.copy()
    active = np.flatnonzero(pos < ends)
    passes: list[tuple[I64, I64, I64, I64, I64]] = []
    while active.size:
        end, recs = ends[active], records[active]
        tag, after = _varints(buf, pos[active], end, recs, "field tag")
        wire = tag & 7
        bad = (tag < 8) | (wire == 3) | (wire == 4) | (wire > 5)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            reason = "field number 0" if tag[first] < 8 else f"wire type {wire[first]} (groups or invalid)"
            raise _MalformedError(int(recs[bad].min()), reason)
        data_start = after
        data_end = after + np.where(wire == WIRE_FIXED32, 4, np.where(wire == WIRE_FIXED64, 8, 0))
        is_varint = wire == WIRE_VARINT
        if is_varint.any():
            data_end[is_varint] = _varints(buf, after[is_varint], end[is_varint], recs[is_varint], "varint")[
                1
            ]
        is_length = np.flatnonzero(wire == WIRE_LENGTH)
        if is_length.size:
            length, body = _varints(buf, after[is_length], end[is_length], recs[is_length], "field length")
            room = end[is_length] - body
            _fail(recs[is_length], (length < 0) | (length > room), "truncated length-delimited field")
            data_start = after.copy()
            data_start[is_length] = body
            data_end[is_length] = body + length
        _fail(recs, data_end > end, "truncated fixed-size field")
        passes.append((active, tag >> 3, wire, data_start, data_end))
        pos[active] = data_end
        active = active[data_end < end]
    # Lay the fields out span by span: a span active in pass j has had exactly j fields before.
    counts = np.zeros(starts.size, np.int64)
    for found in passes:
        counts[found[0]] += 1
    span_first = np.cumsum(counts) - counts
    total = int(counts.sum())
    out = np.empty((5, total), np.int64)
    for j, (span, number, wire, data_start, data_end) in enumerate(passes):
        place = span_first[span] + j
        out[0, place], out[1, place], out[2, place], out[3, place], out[4, place] = (
            span,
            number,
            wire,
            data_start,
            data_end,
        )
    return _Fields(span=out[0], number=out[1], wire=out[2], start=out[3], end=out[4])


def _gather(buf: U8, owner: I64, starts: I64, ends: I64, n_owners: int) -> tuple[U8, I64]:
    """The bytes of the spans concatenated in order (spans sorted by owner), and per-owner pointers."""
    lengths = ends - starts
    total = int(lengths.sum())
    begin = np.cumsum(lengths) - lengths
    index = np.repeat(starts - begin, lengths) + np.arange(total, dtype=np.int64)
    indptr = np.zeros(n_owners + 1, np.int64)
    np.cumsum(np.bincount(owner, weights=lengths, minlength=n_owners).astype(np.int64), out=indptr[1:])
    return buf[index], indptr


def _packed_varints(data: U8, indptr: I64, what: str) -> tuple[U64, I64]:
    """Decode each owner's concatenated varints; (values, per-owner pointers into them)."""
    owners = np.arange(indptr.size - 1, dtype=np.int64)
    last = data < 0x80
    nonempty = indptr[1:] > indptr[:-1]
    ends_badly = np.zeros(owners.size, bool)
    ends_badly[nonempty] = ~last[indptr[1:][nonempty] - 1]
    _fail(owners, ends_badly, f"{what}: truncated packed varints")
    count_before = np.zeros(data.size + 1, np.int64)
    np.cumsum(last, out=count_before[1:])
    if not data.size:
        return np.zeros(0, np.uint64), count_before[indptr]
    group = count_before[:-1]  # the varint each byte belongs to
    first_of_group = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    place = np.arange(data.size, dtype=np.int64) - first_of_group[group]
    too_long = place >= 10
    if too_long.any():
        owner = int(np.searchsorted(indptr, int(np.flatnonzero(too_long)[0]), side="right")) - 1
        raise _MalformedError(owner, f"{what}: a varint longer than 10 bytes")
    parts = (data & 0x7F).astype(np.uint64) << (7 * place).astype(np.uint64)
    values: U64 = np.bitwise_or.reduceat(parts, first_of_group)  # each varint's 7-bit groups are disjoint
    return values, count_before[indptr]


# --- the Record schema -------------------------------------------------------------------------------


def _tensors(buf: U8, entries: _Fields, entry_owner: I64, n_records: int, where: str) -> Float32Tensors:
    """The Float32Tensor of the last `values` entry of each record's map (its entries already walked).

    `entry_owner[e]` is the record of map entry e; every error names a record.
    """
    records = np.arange(n_records, dtype=np.int64)
    n_entries = entry_owner.size
    # Inside each entry: the key (field 1; the last occurrence counts) and the Value occurrences (field 2).
    key_start = np.zeros(n_entries, np.int64)
    key_end = np.zeros(n_entries, np.int64)
    is_key = (entries.number == 1) & (entries.wire == WIRE_LENGTH)
    key_start[entries.span[is_key]] = entries.start[is_key]  # later occurrences overwrite earlier ones
    key_end[entries.span[is_key]] = entries.end[is_key]
    matches = (key_end - key_start) == len(MAP_KEY)
    candidates = np.flatnonzero(matches)
    text = buf[key_start[candidates, None] + np.arange(len(MAP_KEY))]
    matches[candidates] = (text == np.frombuffer(MAP_KEY, np.uint8)).all(axis=1)
    chosen = np.full(n_records, -1, np.int64)
    chosen[entry_owner[matches]] = np.flatnonzero(matches)  # the last matching entry wins (map semantics)
    present = chosen >= 0
    is_chosen = np.zeros(n_entries, bool)
    is_chosen[chosen[present]] = True

    is_value = (entries.number == 2) & is_chosen[entries.span]
    value_owner = entry_owner[entries.span[is_value]]
    _fail(value_owner, entries.wire[is_value] != WIRE_LENGTH, f"{where}: the value is not a message")
    values = _walk(buf, entries.start[is_value], entries.end[is_value], value_owner)
    owner_of_value = value_owner[values.span]
    for number, kind in _VALUE_KINDS.items():
        _fail(owner_of_value, values.number == number, f"{where} holds {kind}; FM reads float32_tensor only")
    is_tensor = (values.number == 2) & (values.wire == WIRE_LENGTH)
    has_tensor = np.zeros(n_records, bool)
    has_tensor[owner_of_value[is_tensor]] = True
    _fail(records, present & ~has_tensor, f"{where} holds no tensor; FM reads float32_tensor only")

    tensor_owner = owner_of_value[is_tensor]
    tensor = _walk(buf, values.start[is_tensor], values.end[is_tensor], tensor_owner)
    owner = tensor_owner[tensor.span]

    def occurrences(number: int, single_wire: int) -> BoolArray:
        """The field's packed (length-delimited) and single-element occurrences."""
        mine: BoolArray = tensor.number == number
        ok = (tensor.wire == WIRE_LENGTH) | (tensor.wire == single_wire)
        _fail(owner, mine & ~ok, f"{where}: Float32Tensor field {number} has a bad wire type")
        return mine

    take = occurrences(1, WIRE_FIXED32)
    raw, byte_ptr = _gather(buf, owner[take], tensor.start[take], tensor.end[take], n_records)
    _fail(records, np.diff(byte_ptr) % 4 != 0, f"{where}: packed floats not a multiple of 4 bytes")
    floats: F32 = raw.view("<f4").astype(np.float32) if raw.size else np.zeros(0, np.float32)

    ragged = []
    for number, what in ((2, "keys"), (3, "shape")):
        take = occurrences(number, WIRE_VARINT)
        raw, ptr = _gather(buf, owner[take], tensor.start[take], tensor.end[take], n_records)
        ragged.append(_packed_varints(raw, ptr, f"{where}: {what}"))
    (keys, keys_ptr), (shape, shape_ptr) = ragged
    return Float32Tensors(present, floats, byte_ptr // 4, keys, keys_ptr, shape, shape_ptr)


# --- the canonical layout ----------------------------------------------------------------------------

# What SageMaker SDK v2's writers and `writer` produce, byte for byte except the lengths and the data:
#   0A <len> 0A 06 "values" 12 <len> 12 <len> [0A <len> floats] [12 <len> keys] [1A <len> shape]
#   [12 12 0A 06 "values" 12 08 12 06 0A 04 <float label>]
_ENTRY_HEAD = np.frombuffer(b"\x0a\x06" + MAP_KEY + b"\x12", np.uint8)
_LABEL_ENTRY = np.frombuffer(b"\x12\x12\x0a\x06" + MAP_KEY + b"\x12\x08\x12\x06\x0a\x04", np.uint8)
_LABEL_SIZE = _LABEL_ENTRY.size + 4


def _soft_varints(buf: U8, pos: I64, end: I64) -> tuple[I64, I64, BoolArray]:
    """Like `_varints`, but reports (value, after, valid) instead of raising."""
    valid = pos < end
    byte = buf[np.minimum(pos, buf.size - 1)]
    value = (byte & 0x7F).astype(np.int64)
    after = pos + 1
    more = np.flatnonzero(valid & (byte >= 0x80))
    shift = 7
    while more.size and shift < 63:
        at = after[more]
        inside = at < end[more]
        valid[more[~inside]] = False
        more, at = more[inside], at[inside]
        byte = buf[at]
        value[more] |= (byte & 0x7F).astype(np.int64) << shift
        after[more] = at + 1
        more = more[byte >= 0x80]
        shift += 7
    valid[more] = False  # longer than 9 bytes: no length in a real record is that large
    return value, after, valid & (value >= 0)


def _canonical(buf: U8, starts: I64, ends: I64) -> tuple[Float32Tensors, Float32Tensors] | None:
    """Decode records of the canonical layout in a handful of passes; None if any record differs."""
    n = starts.size
    last = buf.size - 1

    def at(pos: I64) -> U8:
        return buf[np.minimum(pos, last)]

    def matches(pos: I64, pattern: U8, end: I64) -> BoolArray:
        table = buf[np.minimum(pos[:, None] + np.arange(pattern.size), last)]
        found: BoolArray = (pos + pattern.size <= end) & (table == pattern).all(axis=1)
        return found

    ok = at(starts) == 0x0A
    entry_len, pos, valid = _soft_varints(buf, starts + 1, ends)
    ok &= valid
    entry_end = pos + entry_len
    label_bytes = ends - entry_end
    has_label = label_bytes == _LABEL_SIZE
    ok &= (label_bytes == 0) | (has_label & matches(entry_end, _LABEL_ENTRY, ends))
    ok &= matches(pos, _ENTRY_HEAD, entry_end)
    value_len, pos, valid = _soft_varints(buf, pos + _ENTRY_HEAD.size, entry_end)
    ok &= valid & (pos + value_len == entry_end) & (at(pos) == 0x12)
    tensor_len, pos, valid = _soft_varints(buf, pos + 1, entry_end)
    ok &= valid & (pos + tensor_len == entry_end)
    spans = []
    for tag in (0x0A, 0x12, 0x1A):  # values, keys, shape: each present or absent, in this order
        here = ok & (pos < entry_end) & (at(pos) == tag)
        length, body, valid = _soft_varints(buf, pos + 1, entry_end)
        here &= valid & (body + length <= entry_end)
        spans.append((np.where(here, body, 0), np.where(here, body + length, 0)))
        pos = np.where(here, body + length, pos)
    ok &= pos == entry_end
    if not ok.all():
        return None
    rows = np.arange(n, dtype=np.int64)
    (value_start, value_end), (key_start, key_end), (shape_start, shape_end) = spans
    raw, byte_ptr = _gather(buf, rows, value_start, value_end, n)
    if (np.diff(byte_ptr) % 4).any():
        return None
    keys, keys_ptr = _packed_varints(*_gather(buf, rows, key_start, key_end, n), "keys")
    shape, shape_ptr = _packed_varints(*_gather(buf, rows, shape_start, shape_end, n), "shape")
    features = Float32Tensors(
        np.ones(n, bool), raw.view("<f4").astype(np.float32), byte_ptr // 4, keys, keys_ptr, shape, shape_ptr
    )
    label_at = entry_end[has_label] + _LABEL_ENTRY.size
    label_raw = buf[label_at[:, None] + np.arange(4)].reshape(-1)
    label_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(has_label, out=label_ptr[1:])
    no_ints = np.zeros(0, np.uint64)
    label = Float32Tensors(
        has_label,
        label_raw.view("<f4").astype(np.float32),
        label_ptr,
        no_ints,
        np.zeros(n + 1, np.int64),
        no_ints,
        np.zeros(n + 1, np.int64),
    )
    return features, label


def decode_records(data: bytes | bytearray | memoryview | U8, *, base_offset: int = 0) -> DecodedRecords:
    """Decode every record of a recordIO-protobuf buffer (one whole file or a concatenation of files).

    Raises `RecordIOError` naming the byte offset (plus `base_offset`) of the first bad record.
    """
    raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    try:
        buf, starts, ends, offsets = _frame_spans(raw)
    except RecordIOError as error:
        raise RecordIOError(error.offset + base_offset, error.reason) from None
    n = offsets.size
    records = np.arange(n, dtype=np.int64)
    try:
        fast = _canonical(buf, starts, ends) if n else None
        if fast is not None:
            return DecodedRecords(offsets + base_offset, *fast)
        top = _walk(buf, starts, ends, records)
        decoded = []
        for number, where in ((1, "features['values']"), (2, "label['values']")):
            is_entry = top.number == number
            _fail(records[top.span[is_entry]], top.wire[is_entry] != WIRE_LENGTH, f"bad {where} entry")
            owner = top.span[is_entry]
            entries = _walk(buf, top.start[is_entry], top.end[is_entry], owner)
            decoded.append(_tensors(buf, entries, owner, n, where))
    except _MalformedError as error:
        offset = int(offsets[error.record]) + base_offset
        raise RecordIOError(offset, f"the payload does not decode as an FM Record: {error.reason}") from None
    return DecodedRecords(offsets + base_offset, decoded[0], decoded[1])


# --- FM rows -----------------------------------------------------------------------------------------


def records_to_csr(decoded: DecodedRecords, *, require_labels: bool = True) -> tuple[sp.csr_matrix, F32, int]:
    """(rows, labels, feature_dim) with the rules and errors of `reader.read_sparse_records`.

    Sparse rows (keys + shape) keep their entries in order; dense rows (values only) keep their nonzeros.
    Of several problems, the one in the earliest record is reported (checks in the reader's order).
    """
    n = len(decoded)
    feats, label = decoded.features, decoded.label
    problems: list[tuple[int, str]] = []

    def check(bad: BoolArray, reason: str) -> None:
        if bad.any():
            problems.append((int(np.flatnonzero(bad)[0]), reason))

    n_values = np.diff(feats.values_indptr)
    n_keys = np.diff(feats.keys_indptr)
    n_shape = np.diff(feats.shape_indptr)
    sparse = n_keys > 0
    dims = n_values.astype(np.uint64)
    has_shape = n_shape > 0
    dims[has_shape] = feats.shape[feats.shape_indptr[:-1][has_shape]]
    row_of_key = np.repeat(np.arange(n, dtype=np.int64), n_keys)
    key_outside = np.zeros(n, bool)
    key_outside[row_of_key[feats.keys >= dims[row_of_key]]] = True
    check(~feats.present, "the record has no features['values']")
    check(n_shape > 1, "features have a shape of more than one dimension; FM reads vectors")
    check(sparse & (n_keys != n_values), "the number of keys differs from the number of values")
    check(sparse & ~has_shape, "a sparse tensor (with keys) has no shape")
    check(sparse & has_shape & key_outside, "a key lies outside the shape")
    check(
        ~sparse & (n_values > 0) & (n_values.astype(np.uint64) != dims), "dense values do not fill the shape"
    )
    if n:
        check(dims > np.uint64(_MAX_DIM), "feature_dim is too large for a scipy matrix")
        check(dims != dims[0], f"feature_dim differs from {int(dims[0])} of the first record")
    n_labels = np.diff(label.values_indptr)
    if require_labels:
        check(~label.present, "the record has no label['values']")
    check(label.present & (n_labels != 1), "the label does not hold exactly one value")
    if problems:
        first, reason = min(problems, key=lambda problem: problem[0])  # min keeps the first of equals
        raise RecordIOError(int(decoded.offsets[first]), reason)

    feature_dim = int(dims[0]) if n else 0
    row_of_value = np.repeat(np.arange(n, dtype=np.int64), n_values)
    dense_value = ~sparse[row_of_value]
    columns = np.empty(feats.values.size, np.int64)
    columns[~dense_value] = feats.keys.astype(np.int64)  # a sparse row has one key per value, in order
    place = np.arange(feats.values.size, dtype=np.int64) - feats.values_indptr[row_of_value]
    columns[dense_value] = place[dense_value]
    keep = ~dense_value | (feats.values != 0)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(row_of_value[keep], minlength=n), out=indptr[1:])
    matrix = sp.csr_matrix((feats.values[keep], columns[keep], indptr), shape=(n, feature_dim))
    labels = np.full(n, np.nan, np.float32)
    labels[label.present] = label.values[label.values_indptr[:-1][label.present]]
    return matrix, labels, feature_dim


def bulk_read_sparse_records(
    source: str | Path | IO[bytes] | bytes, *, require_labels: bool = True
) -> tuple[sp.csr_matrix, F32, int]:
    """(rows, labels, feature_dim) of an FM channel file: `read_sparse_records`, decoded in bulk."""
    if isinstance(source, bytes):
        data = np.frombuffer(source, np.uint8)
    elif isinstance(source, str | Path):
        data = np.fromfile(source, np.uint8)
    else:
        data = np.frombuffer(source.read(), np.uint8)
    return records_to_csr(decode_records(data), require_labels=require_labels)
