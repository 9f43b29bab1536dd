"""Events to split interactions in one pass per user partition: exact duplicates dropped, each user–item
pair collapsed to one interaction (latest time, latest rating, latest event type, event count, implicit
label), each user's newest interactions held out for test.

Why one pass in Arrow: every one of these steps groups by user or by pair, so once the events are hashed
by user index (one shuffle) each partition holds everything its users need and is done on its own with a
few numpy sorts. As Spark aggregations (a hash aggregate per step and a window for the split) the same
steps cost several times more CPU at 20M events on two cores; the shuffle is the only part that has to be
distributed, and it still is. A user with a million events costs what a million users with one do: no
per-user lists, only sorts of the partition's columns.

The rules, which `recsys.splits.temporal_split` and the pandas baseline follow too:

- exact duplicates (same user, item, time, rating, event type) count once, whatever file or line they
  came from; the copy that arrived first is kept;
- arrival order is (ingest date, source key, line), nulls first; the latest event of a pair is the one
  with the largest (time, arrival);
- a pair's rating is that of its latest rated event; its label is rating >= `positive_threshold` when it
  has one, else 1 iff one of its events has no type or a type in `positive_events`;
- a user with n pairs gives round-half-up(n * test_ratio) of the newest to test (ties on time: the larger
  item index is newer); a user stays wholly in train when that leaves no train or no test pair, or when
  n < `min_history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from glue.dsstne_arrow import SPARK_RATING
from glue.readers import DATE_PARTITION, LINE, SOURCE_KEY
from glue.settings import PreprocessSettings
from glue.sort_keys import sort_order
from glue.transforms import EVENTS, ITEM_IDX, LABEL, SPLIT, TEST, TRAIN, USER_IDX
from recsys.csv_contract import EVENT_TYPE, ITEM_ID, RATING, TIMESTAMP, USER_ID

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

EVENT_COLUMNS = (USER_IDX, ITEM_IDX, TIMESTAMP, RATING, EVENT_TYPE, DATE_PARTITION, SOURCE_KEY, LINE)
# Columns the events may carry through to their pairs: the ids (the same on every event of a pair) and
# Spark's text of a rating (that of the pair's latest rated event; `glue.dsstne_arrow`).
PAIR_IDS = (USER_ID, ITEM_ID)
_NULL_RATING = np.int64(-1)  # the key of a null rating: the bits of a NaN, which no rating has (NaN is null)
_SPLITS = pa.array([TRAIN, TEST], pa.string())
OUTPUT_SCHEMA = pa.schema(
    [
        (USER_IDX, pa.int64()),
        (ITEM_IDX, pa.int64()),
        (TIMESTAMP, pa.int64()),
        (RATING, pa.float64()),
        (EVENT_TYPE, pa.string()),
        (EVENTS, pa.int64()),
        (LABEL, pa.int32()),
        (SPLIT, pa.string()),
    ]
)


@dataclass(frozen=True)
class PairRules:
    """What decides a pair's label and a user's split (from `glue.settings.PreprocessSettings`)."""

    positive_threshold: float
    positive_events: tuple[str, ...]
    test_ratio: float
    min_history: int

    @classmethod
    def of(cls, settings: PreprocessSettings) -> PairRules:
        """The rules of a run's settings (plain values: they travel to the executors with the pass)."""
        return cls(
            float(settings.positive_threshold),
            tuple(settings.positive_events),
            float(settings.test_ratio),
            int(settings.min_history),
        )


def _ints(column: pa.ChunkedArray | pa.Array, null: int) -> I64:
    return np.asarray(pc.fill_null(column, null).to_numpy(zero_copy_only=False), dtype=np.int64)


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[I64, pa.Array]:
    """(code per row, -1 for null; the distinct values the codes index)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    coded = pc.dictionary_encode(array)
    return _ints(coded.indices, -1), coded.dictionary


def _string_rank(column: pa.ChunkedArray | pa.Array) -> I64:
    """Rank of each value in byte order (Spark's string order), equal values equal, nulls lowest."""
    codes, values = _codes(column)
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.asarray(pc.sort_indices(values).to_numpy(), dtype=np.int64)] = np.arange(len(values))
    return np.where(codes < 0, -1, rank[np.maximum(codes, 0)]) if len(values) else codes


def _rating_keys(rating: F64) -> I64:
    """Integers equal iff the ratings are (nulls equal; -0.0 was made 0.0, as Spark groups doubles)."""
    return np.where(np.isnan(rating), _NULL_RATING, rating.view(np.int64))


def _first_copies(run: I64, rating: I64, event: I64) -> npt.NDArray[np.bool_]:
    """Rows (in arrival order within each run of equal user, item and time) that are not a repeat of an
    earlier row of their run with the same rating and event type."""
    same = run[1:] == run[:-1]
    keep = np.ones(run.size, dtype=bool)
    if not same.any():
        return keep
    suspect = np.zeros(run.size, dtype=bool)
    suspect[1:] |= same
    suspect[:-1] |= same
    rows = np.flatnonzero(suspect)
    order = np.lexsort((rows, event[rows], rating[rows], run[rows]))  # arrival order within equal content
    sorted_rows = rows[order]
    repeat = (
        (run[sorted_rows][1:] == run[sorted_rows][:-1])
        & (rating[sorted_rows][1:] == rating[sorted_rows][:-1])
        & (event[sorted_rows][1:] == event[sorted_rows][:-1])
    )
    keep[sorted_rows[1:][repeat]] = False
    return keep


def collapse_and_split(events: pa.Table, rules: PairRules) -> pa.Table:
    """The interactions (OUTPUT_SCHEMA) of `events` (EVENT_COLUMNS, complete rows, every event of each of
    their users), sorted by user, time and item. The `PAIR_IDS` and `SPARK_RATING` columns, where the
    events have them, come along (after `SPLIT`)."""
    if events.num_rows == 0:
        carried = [f for f in events.schema if f.name in (*PAIR_IDS, SPARK_RATING)]
        return pa.Table.from_pylist([], schema=pa.schema([*OUTPUT_SCHEMA, *carried]))
    user = _ints(events.column(USER_IDX), -1)
    item = _ints(events.column(ITEM_IDX), -1)
    time = _ints(events.column(TIMESTAMP), 0)
    ratings = pc.fill_null(events.column(RATING).cast(pa.float64()), np.nan)
    rating = np.asarray(ratings.to_numpy(zero_copy_only=False), dtype=np.float64) + 0.0  # -0.0 becomes 0.0
    event, event_names = _codes(events.column(EVENT_TYPE))
    line = _ints(events.column(LINE), np.iinfo(np.int64).min)
    date, source = _string_rank(events.column(DATE_PARTITION)), _string_rank(events.column(SOURCE_KEY))

    # Rows by (user, item, time, arrival): a pair's events are adjacent, its latest last.
    arrival = sort_order(date, source, line)
    row = arrival[sort_order(user[arrival], item[arrival], time[arrival])]  # the events' rows, in order
    user, item, time, rating, event = user[row], item[row], time[row], rating[row], event[row]
    pair_start = np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])]
    run = np.cumsum(pair_start | np.r_[True, time[1:] != time[:-1]])
    kept = _first_copies(run, _rating_keys(rating), event)
    if not kept.all():
        user, item, time, rating, event = user[kept], item[kept], time[kept], rating[kept], event[kept]
        row = row[kept]
        pair_start = np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])]

    starts = np.flatnonzero(pair_start)
    ends = np.r_[starts[1:], user.size] - 1
    rated = ~np.isnan(rating)
    position = np.arange(user.size, dtype=np.int64)
    last_rated = np.maximum.reduceat(np.where(rated, position, -1), starts)
    pair_rating = np.where(last_rated >= 0, rating[np.maximum(last_rated, 0)], np.nan)
    positive_codes = [k for k, name in enumerate(event_names.to_pylist()) if name in rules.positive_events]
    positive_event = (event < 0) | np.isin(event, positive_codes)
    # 1 when an unrated event of the pair is positive, 0 when none is, -1 when every event is rated
    event_positive = np.maximum.reduceat(np.where(rated, -1, positive_event.astype(np.int64)), starts)
    label = np.where(last_rated >= 0, pair_rating >= rules.positive_threshold, event_positive > 0)
    pairs = {
        USER_IDX: user[starts],
        ITEM_IDX: item[starts],
        TIMESTAMP: time[ends],
        RATING: pair_rating,
        "_event": event[ends],
        EVENTS: ends - starts + 1,
        LABEL: label.astype(np.int32),
        "_row": row[starts],
        "_rated_row": np.where(last_rated >= 0, row[np.maximum(last_rated, 0)], -1),
    }
    return _split(pairs, event_names, rules, events)


def _split(
    pairs: dict[str, npt.NDArray[Any]], names: pa.Array, rules: PairRules, events: pa.Table
) -> pa.Table:
    """The pairs sorted by (user, time, item) with their split and the columns carried from `events`."""
    user, time, item = pairs[USER_IDX], pairs[TIMESTAMP], pairs[ITEM_IDX]
    order = sort_order(user, time, item)
    columns = {name: values[order] for name, values in pairs.items()}
    user = columns[USER_IDX]
    first = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if user.size else np.zeros(0, np.int64)
    n = np.diff(np.r_[first, user.size])
    n_test = np.floor(n.astype(np.float64) * float(rules.test_ratio) + 0.5).astype(np.int64)
    held = np.where((n_test < 1) | (n - n_test < 1) | (n < rules.min_history), 0, n_test)
    rank = np.arange(user.size, dtype=np.int64) - np.repeat(first, n) + 1
    test = rank > np.repeat(n - held, n)
    event = columns.pop("_event")
    rating = columns[RATING]
    carried = {
        name: pc.take(events.column(name), columns["_row"])
        for name in PAIR_IDS
        if name in events.column_names
    }
    if SPARK_RATING in events.column_names:
        rated = columns["_rated_row"]
        rated_rows = pa.array(rated, pa.int64(), mask=rated < 0)
        carried[SPARK_RATING] = pc.take(events.column(SPARK_RATING), rated_rows)
    return pa.table(
        {
            USER_IDX: pa.array(user, pa.int64()),
            ITEM_IDX: pa.array(columns[ITEM_IDX], pa.int64()),
            TIMESTAMP: pa.array(columns[TIMESTAMP], pa.int64()),
            RATING: pa.array(rating, pa.float64(), mask=np.isnan(rating)),
            EVENT_TYPE: pc.take(names.cast(pa.string()), pa.array(event, pa.int64(), mask=event < 0))
            if len(names)
            else pa.nulls(user.size, pa.string()),
            EVENTS: pa.array(columns[EVENTS], pa.int64()),
            LABEL: pa.array(columns[LABEL], pa.int32()),
            SPLIT: pc.take(_SPLITS, pa.array(test.astype(np.int8))),
            **carried,
        }
    )
