"""Rules for single values (ids, timestamps, ratings), in two forms that must agree.

The plain-Python checks (`check_*`) are the authority: they give the reason for a rejection. The
vectorised masks (`*_ok`) run on Arrow arrays in the fast path; each accepts only values that the
Python check accepts too (a property test holds them to that), and whatever they do not accept is
re-checked in Python, so speed never changes a verdict.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys.csv_contract import MAX_EVENT_TYPE_LENGTH, MAX_ID_LENGTH

# Epoch seconds accepted: 1970-01-01 up to (not including) 2100-01-01. A 13-digit millisecond epoch
# lands far outside, which is the mistake this bound catches.
MIN_EPOCH = 0
MAX_EPOCH = 4_102_444_800

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# Fast-path patterns (RE2 syntax): strict subsets of what the Python checks accept.
_FAST_EPOCH_FRAC = r"^\d{1,10}\.\d{1,9}$"
_ISO_DATE = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_ISO_TIME = r"(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?"
_FAST_ISO_NAIVE = rf"^{_ISO_DATE}(?:[T ]{_ISO_TIME})?$"
_FAST_ISO_ZONED = rf"^{_ISO_DATE}[T ]{_ISO_TIME}(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
_FAST_RATING = r"^(?:-?\d{1,9}(?:\.\d{1,9})?)?$"  # empty = no rating


# --- the authority -----------------------------------------------------------------------------------


def check_id(value: str, name: str) -> str | None:
    """Ids are non-empty, at most MAX_ID_LENGTH characters, with no control characters."""
    if not value.strip(" "):
        return f"empty {name}"
    if len(value) > MAX_ID_LENGTH:
        return f"{name} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed"
    if _CONTROL.search(value):
        return f"{name} contains a control character"
    return None


def parse_timestamp(value: str) -> float | None:
    """Epoch seconds for an epoch number or an ISO-8601 string (naive means UTC); None if neither."""
    if _EPOCH.fullmatch(value):
        seconds = float(value)
    else:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = parsed.timestamp()
        except (ValueError, OverflowError):
            return None
    return seconds if MIN_EPOCH <= seconds < MAX_EPOCH else None


def check_timestamp(value: str) -> str | None:
    if not value:
        return "missing timestamp"
    if parse_timestamp(value) is None:
        shown = value if len(value) <= 40 else value[:40] + "…"
        return (
            f"not a timestamp: {shown!r} (expected epoch seconds or ISO-8601 between 1970 and 2099, "
            "e.g. 1537799250 or 2018-09-24T14:27:30Z)"
        )
    return None


def check_rating(value: str) -> str | None:
    """An empty rating means 'no rating'; anything else must be a finite number."""
    if not value:
        return None
    if not _NUMBER.fullmatch(value) or not math.isfinite(float(value)):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"rating is not a finite number: {shown!r}"
    return None


def check_event_type(value: str) -> str | None:
    if len(value) > MAX_EVENT_TYPE_LENGTH:
        return f"event_type is {len(value)} characters long; at most {MAX_EVENT_TYPE_LENGTH} are allowed"
    if _CONTROL.search(value):
        return "event_type contains a control character"
    return None


# --- vectorised twins ----------------------------------------------------------------------------------
# Cheap kernels (lengths, ASCII classes) come first; regular expressions only see what those leave.


def bool_numpy(mask: pa.Array) -> np.ndarray:
    """A null-free Arrow boolean array as numpy bools (Arrow's own conversion is slow for booleans)."""
    bits = np.frombuffer(mask.buffers()[1], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[mask.offset : mask.offset + len(mask)].view(bool)


def _match(values: pa.Array, pattern: str) -> pa.Array:
    return pc.match_substring_regex(values, pattern)


def id_ok(values: pa.Array) -> pa.Array:
    """Printable (so no control characters), 1..MAX_ID_LENGTH characters, not starting with a space."""
    length = pc.utf8_length(values)
    sized = pc.and_(pc.greater(length, 0), pc.less_equal(length, MAX_ID_LENGTH))
    return pc.and_(pc.and_(sized, pc.utf8_is_printable(values)), pc.invert(pc.starts_with(values, " ")))


def rating_ok(values: pa.Array) -> pa.Array:
    return _match(values, _FAST_RATING)


def event_type_ok(values: pa.Array) -> pa.Array:
    short = pc.less_equal(pc.utf8_length(values), MAX_EVENT_TYPE_LENGTH)
    return pc.and_(short, pc.invert(_match(values, r"[\x00-\x1f\x7f]")))


def _in_range(seconds: pa.Array) -> pa.Array:
    return pc.and_(pc.greater_equal(seconds, MIN_EPOCH), pc.less(seconds, MAX_EPOCH))


def timestamp_ok(values: pa.Array) -> pa.Array:
    """Accept plain epoch seconds and common ISO-8601 shapes; leave the rest to `check_timestamp`."""
    digits = pc.and_(pc.ascii_is_decimal(values), pc.less_equal(pc.binary_length(values), 10))
    seconds = pc.cast(pc.if_else(digits, values, "0"), pa.int64())
    ok = pc.and_(digits, _in_range(seconds))
    others = pc.indices_nonzero(pc.invert(digits))
    if not len(others):
        return ok
    subset = values.take(others)
    subset_ok = np.zeros(len(subset), dtype=bool)
    for pattern, unit in (
        (_FAST_EPOCH_FRAC, pa.float64()),
        (_FAST_ISO_NAIVE, pa.timestamp("s")),
        (_FAST_ISO_ZONED, pa.timestamp("s", "UTC")),
    ):
        idx = pc.indices_nonzero(_match(subset, pattern))
        if not len(idx):
            continue
        try:  # an impossible date (2018-02-30) fails the whole cast: Python decides those rows
            converted = pc.cast(subset.take(idx), unit)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if not pa.types.is_floating(unit):
            converted = pc.cast(converted, pa.int64())
        subset_ok[idx.to_numpy()] = bool_numpy(_in_range(converted))
    merged = bool_numpy(ok).copy()
    merged[others.to_numpy()] = subset_ok
    return pa.array(merged)


# --- conversions for validated values (used by loaders and the preprocessing job) ---------------------


def epoch_seconds(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Whole epoch seconds (int64, floored) for validated timestamp strings."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    try:  # the common case, whole epoch seconds: one cast
        whole = pc.cast(values, pa.int64())
        if not whole.null_count:
            return np.asarray(whole.to_numpy(zero_copy_only=False), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = np.empty(len(values), dtype=np.int64)
    done = np.zeros(len(values), dtype=bool)
    for pattern, target in (
        (r"^\d+(?:\.\d+)?$", pa.float64()),
        (_FAST_ISO_NAIVE, pa.timestamp("s")),
        (_FAST_ISO_ZONED, pa.timestamp("s", "UTC")),
    ):
        idx = np.flatnonzero(_match(values, pattern).to_numpy(zero_copy_only=False))
        if not len(idx):
            continue
        try:
            converted = pc.cast(values.take(pa.array(idx)), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if pa.types.is_floating(converted.type):
            out[idx] = np.floor(converted.to_numpy(zero_copy_only=False)).astype(np.int64)
        else:
            out[idx] = pc.cast(converted, pa.int64()).to_numpy(zero_copy_only=False)
        done[idx] = True
    for i in np.flatnonzero(~done):  # rare shapes: ISO basic format, fractional zoned times, "+" signs
        seconds = parse_timestamp(values[int(i)].as_py())
        if seconds is None:
            raise ValueError(f"not a valid timestamp: {values[int(i)].as_py()!r}")
        out[i] = math.floor(seconds)
    return out


def parse_ratings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float32 ratings for validated rating strings; NaN where the rating is empty."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    blank = pc.equal(values, "")
    try:
        numbers = pc.cast(pc.if_else(blank, pa.scalar(None, pa.string()), values), pa.float64())
    except pa.ArrowInvalid:  # shapes Arrow does not parse ("+4", "4."): Python's float does
        return np.array([float(v) if v else np.nan for v in values.to_pylist()], dtype=np.float32)
    return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float32)
