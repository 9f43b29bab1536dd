"""MXNet / dmlc-core recordIO framing as SageMaker uses it: magic, length word, payload, zero padding.

Why a module of its own: the framing is independent of what the payload holds, and both the fast writer
and the message-class reader need it. All words are little-endian uint32.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

MAGIC = 0xCED7230A  # dmlc kMagic; on disk 0A 23 D7 CE
MAGIC_BYTES = struct.pack("<I", MAGIC)
MAX_LENGTH = (1 << 29) - 1  # the length lives in the low 29 bits of the length word
HEADER = struct.Struct("<II")

# cflag (bits 29-31 of the length word): dmlc's writer splits a payload wherever an aligned word equals
# the magic, drops that word and marks the parts start / middle / end. SageMaker always writes 0.
WHOLE, START, MIDDLE, END = 0, 1, 2, 3


class RecordIOError(ValueError):
    """A file that is not valid recordIO-protobuf; `offset` is the byte where the bad record starts."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"recordIO error at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


def padding(length: int) -> int:
    """Zero bytes after a payload of `length` bytes, so the next record starts at a multiple of 4."""
    return -length % 4


def frame(payload: bytes) -> bytes:
    """One complete record (cflag 0), exactly as SageMaker's SDK writes it."""
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"a recordIO payload holds at most {MAX_LENGTH} bytes, got {len(payload)}")
    return HEADER.pack(MAGIC, len(payload)) + payload + b"\0" * padding(len(payload))


def _read_exactly(stream: IO[bytes], size: int, offset: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise RecordIOError(offset, f"truncated file: {what} needs {size} bytes, only {len(data)} left")
    return data


def iter_records(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(offset of the record's first header, payload) for each record; split records are joined.

    Strict where SageMaker's own reader is lax: a short header, payload or padding, a bad magic number
    and an out-of-order part flag all raise `RecordIOError` naming the byte offset.
    """
    offset = 0
    parts: list[bytes] = []
    record_offset = 0
    while True:
        header = stream.read(HEADER.size)
        if not header:
            if parts:
                raise RecordIOError(record_offset, "truncated file: a split record has no end part")
            return
        if len(header) < HEADER.size:
            raise RecordIOError(offset, f"truncated file: {len(header)} bytes where a record header starts")
        magic, word = HEADER.unpack(header)
        if magic != MAGIC:
            raise RecordIOError(offset, f"bad magic number 0x{magic:08X} (expected 0x{MAGIC:08X})")
        cflag, length = word >> 29, word & MAX_LENGTH
        payload = _read_exactly(stream, length, offset, "the payload")
        pad = padding(length)
        if pad:
            _read_exactly(stream, pad, offset, "the padding")
        if cflag == WHOLE:
            if parts:
                raise RecordIOError(offset, "a whole record inside a split record")
            yield offset, payload
        elif cflag == START:
            if parts:
                raise RecordIOError(offset, "a split record starts inside another")
            record_offset = offset
            parts = [payload]
        elif cflag in (MIDDLE, END):
            if not parts:
                raise RecordIOError(offset, f"a split-record part (flag {cflag}) without its start")
            parts += [MAGIC_BYTES, payload]
            if cflag == END:
                yield record_offset, b"".join(parts)
                parts = []
        else:
            raise RecordIOError(offset, f"unknown part flag {cflag}")
        offset += HEADER.size + length + pad


def read_records(stream: IO[bytes]) -> Iterator[bytes]:
    """The payload of each record in a recordIO stream (each one serialized `Record`)."""
    for _, payload in iter_records(stream):
        yield payload
