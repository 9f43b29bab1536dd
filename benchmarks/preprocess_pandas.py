"""The Glue preprocessing run in one process with pandas, numpy and pyarrow: the baseline Spark is measured
against (`benchmarks/preprocess_scale.py`), not product code.

It does what `glue.pipeline.run_preprocess` does for a fresh run (no previous maps), written as a
competent engineer would on one machine: columnar reads, integer codes, sorts and bincounts, no Python
loop per row. Ids are numbered and negatives drawn with Spark's own xxhash64 (`glue.spark_hash`), so on the
same inputs both runs produce the same id maps, split, labels and negatives, and their counts can be
compared exactly. What differs, on purpose and without changing a count:

- the FM rows are shuffled by a seeded permutation and written in blocks (Spark: hash order, one set of
  shards per partition); the DSSTNE lines come in user-index order (Spark: hash-partition order);
- ISO-8601 timestamps go through pandas' parser rather than Spark's cast (epoch seconds are the same;
  exotic ISO forms one accepts and the other not would be the only place they can differ).

`benchmarks/_preprocess_compare.py` checks the claim; tests/spark/test_pandas_baseline.py runs it on the
bundled sample and on an input full of edge cases.

pyarrow's CSV reader and Parquet writer use their thread pool (that is how one would use them); every
numpy step runs on one core.

    python benchmarks/preprocess_pandas.py (--catalog PATH --transactions PATH [PATH …] | --ingest DIR)
        --out DIR [--run-id ID] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import scipy.sparse as sp

from glue import spark_hash as sh
from glue.settings import DsstneTarget, PreprocessSettings  # plain dataclasses, no Spark
from glue.sort_keys import sort_order
from recsys import contracts
from recsys.csv_contract import (
    CATEGORIES,
    CATEGORY_SEPARATOR,
    EVENT_TYPE,
    ITEM_ID,
    RATING,
    TIMESTAMP,
    TITLE,
    USER_ID,
    Kind,
    map_header,
)
from recsys.recordio import write_sharded

# The same constants as glue.transforms / glue.indexing / glue.sampling / glue.features (not imported:
# those modules load pyspark).
MAX_EPOCH = 4_102_444_800
PLACEHOLDER_TITLE = "(unknown item)"
NO_CATEGORY = ("(no genres listed)",)
BUCKETS = 1024
WEIGHT_SCALE = 1000.0
NUMERIC = re.compile(r"^[+-]?\d+(\.\d+)?$")
DSSTNE_SAFE = "^[A-Za-z0-9.*_-]*$"  # what java.net.URLEncoder leaves as it is

NEGATIVE_CHUNK = 1 << 20  # positives per negative-sampling step: bounds the draw arrays (12 per positive)
FM_BLOCK_ROWS = 1 << 21  # FM rows per CSR block handed to the recordIO writer

I64 = npt.NDArray[np.int64]


class Clock:
    """Seconds per stage (the stage names of the Spark run's stats.json)."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


# ------------------------------------------------------------------------------------------------ read


def _header(path: Path, kind: Kind) -> tuple[str, ...]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        cells = next(csv.reader(handle), [])
    return map_header([c.lstrip("\ufeff") for c in cells], kind).names


def read_csv(path: Path, kind: Kind, wanted: Sequence[str] | None, strings: Sequence[str] | None) -> pa.Table:
    """One CSV with canonical column names: the `wanted` columns (None: all), `strings` read as text (None:
    all), the others typed by Arrow. An empty cell is null, as Spark's CSV reader has it."""
    names = _header(path, kind)
    return pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(skip_rows=1, column_names=list(names)),
        parse_options=pa_csv.ParseOptions(newlines_in_values=kind is Kind.CATALOG),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in names if strings is None or c in strings},
            include_columns=[c for c in names if wanted is None or c in wanted],
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def _clean_ids(column: pa.ChunkedArray) -> pa.Array:
    """Trimmed (spaces, as Spark's trim), blank = null."""
    trimmed = pc.utf8_trim(column.cast(pa.string()).combine_chunks(), characters=" ")
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _epoch_seconds(column: pa.ChunkedArray) -> tuple[I64, npt.NDArray[np.bool_]]:
    """(epoch seconds, valid): numbers floored; text as epoch or ISO-8601 (naive = UTC); kept in
    [0, MAX_EPOCH) as the validator's range."""
    kind = column.type
    if pa.types.is_integer(kind):
        values = column.to_numpy(zero_copy_only=False)
        valid = ~pc.is_null(column).to_numpy(zero_copy_only=False)
        seconds = np.where(valid, values, 0).astype(np.int64)
    elif pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        valid = np.isfinite(values)
        seconds = np.where(valid, np.floor(np.where(valid, values, 0)), 0).astype(np.int64)
    elif pa.types.is_timestamp(kind):
        seconds_array = pc.cast(column.cast(pa.timestamp("s", kind.tz)), pa.int64())
        valid = ~pc.is_null(seconds_array).to_numpy(zero_copy_only=False)
        seconds = pc.fill_null(seconds_array, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        text = pd.Series(pc.utf8_trim(column.cast(pa.string()), characters=" "))
        numeric = text.str.fullmatch(NUMERIC.pattern).fillna(False).to_numpy(dtype=bool)
        number = pd.to_numeric(text.where(numeric), errors="coerce").to_numpy(dtype=np.float64)
        iso = pd.to_datetime(text.where(~numeric), errors="coerce", utc=True, format="ISO8601")
        iso_valid = iso.notna().to_numpy()
        epoch = pd.Timestamp(0, tz="UTC")
        iso_seconds = ((iso.fillna(epoch) - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
        valid = (numeric & np.isfinite(number)) | (~numeric & iso_valid)
        seconds = np.where(numeric, np.floor(np.nan_to_num(number)), iso_seconds).astype(np.int64)
    valid &= (seconds >= 0) & (seconds < MAX_EPOCH)
    return seconds, valid


def _ratings(column: pa.ChunkedArray | None, n: int) -> npt.NDArray[np.float64]:
    """Float ratings with NaN for missing or unparsable values."""
    if column is None:
        return np.full(n, np.nan)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    text = pd.Series(column.cast(pa.string()))
    return pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _event_types(column: pa.ChunkedArray | None, n: int) -> pa.Array:
    if column is None:
        return pa.nulls(n, pa.string())
    return pc.utf8_lower(_clean_ids(column))


@dataclass
class Transactions:
    """Normalised transactions in arrival order (files by path, then line)."""

    user: pa.Array
    item: pa.Array
    timestamp: I64
    timestamp_valid: npt.NDArray[np.bool_]
    rating: npt.NDArray[np.float64]
    event_type: pa.Array


def _read_transactions(path: Path) -> Transactions:
    wanted = (USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_TYPE)
    table = read_csv(path, Kind.TRANSACTIONS, wanted, (USER_ID, ITEM_ID, EVENT_TYPE))
    n = table.num_rows
    ts, ts_valid = _epoch_seconds(table.column(TIMESTAMP))
    present = set(table.column_names)
    return Transactions(
        user=_clean_ids(table.column(USER_ID)),
        item=_clean_ids(table.column(ITEM_ID)),
        timestamp=ts,
        timestamp_valid=ts_valid,
        rating=_ratings(table.column(RATING) if RATING in present else None, n),
        event_type=_event_types(table.column(EVENT_TYPE) if EVENT_TYPE in present else None, n),
    )


def read_transactions(paths: Sequence[Path]) -> Transactions:
    """Every file normalised on its own (each may type its columns differently), then concatenated."""
    parts = [_read_transactions(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    return Transactions(
        user=pa.concat_arrays([t.user for t in parts]),
        item=pa.concat_arrays([t.item for t in parts]),
        timestamp=np.concatenate([t.timestamp for t in parts]),
        timestamp_valid=np.concatenate([t.timestamp_valid for t in parts]),
        rating=np.concatenate([t.rating for t in parts]),
        event_type=pa.concat_arrays([t.event_type for t in parts]),
    )


def _json_text(column: pa.Array) -> pa.Array:
    """Text escaped for a JSON string (backslash, quote and the usual control characters)."""
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        column = pc.replace_substring(column, raw, escaped)
    return column


def _attributes(table: pa.Table, extra: Sequence[str]) -> pa.Array:
    """The catalog's columns outside the contract as one JSON object per row, null fields left out (as
    Spark's `to_json` writes them)."""
    if not extra:
        return pa.array(["{}"] * table.num_rows, pa.string())
    fields = []  # '"name":"value",' per column, or "" where the value is null
    for name in extra:
        value = _json_text(table.column(name).combine_chunks())
        text = pc.binary_join_element_wise(f'{json.dumps(name)}:"', value, '",', "")
        fields.append(pc.fill_null(text, ""))
    joined = pc.utf8_rtrim(pc.binary_join_element_wise(*fields, ""), characters=",")
    return pc.binary_join_element_wise("{", joined, "}", "")


def read_catalog(paths: Sequence[Path]) -> pd.DataFrame:
    """The latest row per item id (files by path, then line; the last one wins), ids trimmed."""
    frames = []
    for path in paths:
        table = read_csv(path, Kind.CATALOG, None, None)
        extra = [c for c in table.column_names if c not in (ITEM_ID, TITLE, CATEGORIES)]
        frame = pd.DataFrame(
            {
                ITEM_ID: pd.Series(_clean_ids(table.column(ITEM_ID)), dtype="str"),
                TITLE: table.column(TITLE).to_pandas() if TITLE in table.column_names else None,
                CATEGORIES: table.column(CATEGORIES).to_pandas()
                if CATEGORIES in table.column_names
                else None,
            }
        )
        frame["attributes"] = _attributes(table, extra).to_pandas()
        frames.append(frame)
    catalog = pd.concat(frames, ignore_index=True)
    catalog = catalog[catalog[ITEM_ID].notna()]
    return catalog.drop_duplicates(subset=ITEM_ID, keep="last").reset_index(drop=True)


# ------------------------------------------------------------------------------- curated ingest Parquet

INGEST_DATE = contracts.INGEST_DATE_PARTITION
SOURCE_KEY, LINE = "source_key", "line"
ARRIVAL = (INGEST_DATE, SOURCE_KEY, LINE)


def _read_kind(root: Path, kind: Kind, columns: Sequence[str]) -> tuple[pa.Table | None, list[Path]]:
    """Every curated file of one kind (`kind=<kind>/ingest_date=<date>/*.parquet`) as one table in arrival
    order (ingest date, source key, line; nulls first, as Spark orders them), columns a file lacks as null."""
    files = sorted((root / f"{contracts.INGEST_KIND_PARTITION}={kind.value}").glob("*=*/*.parquet"))
    tables = []
    for path in files:
        table = pq.read_table(path)
        n = table.num_rows
        parts = {}
        for name in columns:
            if name in table.column_names:
                parts[name] = table.column(name)
            else:
                parts[name] = pa.nulls(n, pa.int64() if name == LINE else pa.string())
        parts[INGEST_DATE] = pa.repeat(path.parent.name.split("=", 1)[1], n)
        tables.append(pa.table(parts))
    if not tables:
        return None, files
    table = pa.concat_tables(tables, promote_options="permissive")
    if len(tables) > 1:
        order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_start") for c in ARRIVAL])
        table = table.take(order)
    return table, files


def read_ingest(root: Path) -> tuple[Transactions, pd.DataFrame | None, list[Path]]:
    """The curated ingest layout (typed columns, see recsys.ingest.curated), as `glue.readers.read_ingest`
    reads it: (transactions in arrival order, the latest catalog row per item or None, the files)."""
    columns = (USER_ID, ITEM_ID, TIMESTAMP, RATING, EVENT_TYPE, SOURCE_KEY, LINE)
    table, tx_files = _read_kind(root, Kind.TRANSACTIONS, columns)
    if table is None:
        raise ValueError(f"no transactions under {root}")
    ts, ts_valid = _epoch_seconds(table.column(TIMESTAMP).cast(pa.int64()))
    tx = Transactions(
        user=_clean_ids(table.column(USER_ID)),
        item=_clean_ids(table.column(ITEM_ID)),
        timestamp=ts,
        timestamp_valid=ts_valid,
        rating=_ratings(table.column(RATING).cast(pa.float64()), table.num_rows),
        event_type=_event_types(table.column(EVENT_TYPE), table.num_rows),
    )
    del table
    cat, cat_files = _read_kind(
        root, Kind.CATALOG, (ITEM_ID, TITLE, CATEGORIES, "attributes", SOURCE_KEY, LINE)
    )
    catalog = None
    if cat is not None:
        catalog = pd.DataFrame(
            {
                ITEM_ID: pd.Series(_clean_ids(cat.column(ITEM_ID)), dtype="str"),
                TITLE: cat.column(TITLE).to_pandas(),
                CATEGORIES: cat.column(CATEGORIES).to_pandas(),
                "attributes": pc.fill_null(cat.column("attributes").cast(pa.string()), "{}").to_pandas(),
            }
        )
        catalog = catalog[catalog[ITEM_ID].notna()]
        catalog = catalog.drop_duplicates(subset=ITEM_ID, keep="last").reset_index(drop=True)
    return tx, catalog, tx_files + cat_files


# ----------------------------------------------------------------------------------------------- clean


@dataclass
class Pairs:
    """One row per user–item pair (collapsed), users and items as codes into `users` / `items`."""

    users: pa.Array  # distinct user ids (strings)
    items: pa.Array  # distinct item ids seen in transactions
    user_code: I64
    item_code: I64
    timestamp: I64
    rating: npt.NDArray[np.float64]
    event_type: pa.Array
    events: I64
    label: I64


def _codes(values: pa.Array) -> tuple[I64, pa.Array]:
    """(code per row, -1 for null; the distinct values)."""
    encoded = pc.dictionary_encode(values)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary


def clean(tx: Transactions, settings: PreprocessSettings) -> tuple[Pairs, dict[str, int]]:
    """Drop incomplete rows and exact duplicates, collapse to pairs: latest time, latest rating (by time,
    then arrival), latest event type, event count and the implicit label."""
    missing_user = pc.is_null(tx.user).to_numpy(zero_copy_only=False)
    missing_item = pc.is_null(tx.item).to_numpy(zero_copy_only=False)
    missing_ts = ~tx.timestamp_valid
    incomplete = missing_user | missing_item | missing_ts
    quality = {
        "rows": int(tx.timestamp.size),
        "missing_user_id": int(missing_user.sum()),
        "missing_item_id": int(missing_item.sum()),
        "missing_timestamp": int(missing_ts.sum()),
        "incomplete": int(incomplete.sum()),
        "without_rating": int(np.isnan(tx.rating).sum()),
    }
    keep = ~incomplete
    mask = pa.array(keep)
    user_code, users = _codes(pc.filter(tx.user, mask))
    item_code, items = _codes(pc.filter(tx.item, mask))
    event_code, events_dict = _codes(pc.filter(tx.event_type, mask))
    ts, rating = tx.timestamp[keep], tx.rating[keep]
    if ts.size == 0:
        raise ValueError("no usable transactions: every row lacks a user id, an item id or a valid timestamp")

    pair = user_code * len(items) + item_code
    order = sort_order(pair, ts)  # stable: arrival order within equal (pair, time)
    pair, ts, rating, event_code = pair[order], ts[order], rating[order], event_code[order]

    # Exact duplicates share pair and time, so only rows next to an equal (pair, time) can be one.
    same = (pair[1:] == pair[:-1]) & (ts[1:] == ts[:-1])
    suspect = np.zeros(pair.size, dtype=bool)
    suspect[1:] |= same
    suspect[:-1] |= same
    if suspect.any():
        rows = np.flatnonzero(suspect)
        frame = pd.DataFrame({"p": pair[rows], "t": ts[rows], "r": rating[rows], "e": event_code[rows]})
        duplicate = np.zeros(pair.size, dtype=bool)
        duplicate[rows] = frame.duplicated(keep="first").to_numpy()
        kept = ~duplicate
        pair, ts, rating, event_code = pair[kept], ts[kept], rating[kept], event_code[kept]
    quality["exact_duplicates"] = int(keep.sum() - pair.size)
    quality["events"] = int(pair.size)

    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    ends = np.r_[starts[1:], pair.size]
    position = np.arange(pair.size, dtype=np.int64)
    rated = ~np.isnan(rating)
    last_rated = np.maximum.reduceat(np.where(rated, position, -1), starts)
    pair_rating = np.where(last_rated >= 0, rating[np.maximum(last_rated, 0)], np.nan)
    positive_events = np.isin(
        event_code, [i for i, e in enumerate(events_dict.to_pylist()) if e in settings.positive_events]
    ) | (event_code < 0)
    event_positive = np.maximum.reduceat(np.where(~rated, positive_events.astype(np.int64), -1), starts)
    label = np.where(
        last_rated >= 0,
        (pair_rating >= settings.positive_threshold).astype(np.int64),
        np.maximum(event_positive, 0),
    )
    last_event = event_code[ends - 1]
    event_type = pa.nulls(starts.size, pa.string())
    if len(events_dict):
        event_type = pc.take(events_dict, pa.array(np.maximum(last_event, 0), mask=last_event < 0))
    pairs = Pairs(
        users=users,
        items=items,
        user_code=pair[starts] // len(items),
        item_code=pair[starts] % len(items),
        timestamp=ts[ends - 1],
        rating=pair_rating,
        event_type=event_type,
        events=(ends - starts).astype(np.int64),
        label=label,
    )
    quality["pairs"] = int(starts.size)
    quality["repeat_events_collapsed"] = quality["events"] - quality["pairs"]
    return pairs, quality


# --------------------------------------------------------------------------------------------- indices


def fresh_index(ids: pa.Array) -> I64:
    """The index of each distinct id as `glue.indexing.stable_index` numbers a fresh map: ids ordered by
    (pmod(xxhash64(id), 1024), id), i.e. hash bucket, then id within the bucket."""
    buckets = sh.pmod(sh.hash_strings(ids), BUCKETS)
    table = pa.table({"b": buckets, "id": ids, "row": np.arange(len(ids))})
    order = table.sort_by([("b", "ascending"), ("id", "ascending")]).column("row").to_numpy()
    index = np.empty(len(ids), dtype=np.int64)
    index[order] = np.arange(len(ids))
    return index


@dataclass
class ItemMap:
    """Items by index: id, title, categories, attributes, in_catalog."""

    ids: pa.Array
    title: pa.Array
    categories: pa.Array
    attributes: pa.Array
    in_catalog: npt.NDArray[np.bool_]
    index_of_code: I64  # transaction item code -> item_idx


def item_map(catalog: pd.DataFrame | None, seen: pa.Array) -> ItemMap:
    """Every catalog item plus every item with interactions; the latter without a catalog row get the
    placeholder title and no categories."""
    catalog_ids = (
        pa.array(catalog[ITEM_ID], pa.string()) if catalog is not None else pa.array([], pa.string())
    )
    everything = pc.unique(pa.concat_arrays([catalog_ids, seen.cast(pa.string())]))
    index = fresh_index(everything)
    ids = pc.take(everything, pa.array(np.argsort(index)))
    row = pc.index_in(ids, value_set=catalog_ids)
    in_catalog = ~pc.is_null(row).to_numpy(zero_copy_only=False)

    def column(name: str, missing: str, placeholder: str) -> pa.Array:
        if catalog is None:
            return pa.array(np.full(len(ids), placeholder, dtype=object), pa.string())
        values = pa.array(catalog[name].astype(object).where(catalog[name].notna(), None), pa.string())
        taken = pc.fill_null(pc.take(values, row), missing)
        return pc.if_else(pa.array(in_catalog), taken, placeholder)

    return ItemMap(
        ids=ids,
        title=column(TITLE, "", PLACEHOLDER_TITLE),
        categories=column(CATEGORIES, "", ""),
        attributes=column("attributes", "{}", "{}"),
        in_catalog=in_catalog,
        index_of_code=pc.index_in(seen, value_set=ids).to_numpy(zero_copy_only=False).astype(np.int64),
    )


# ----------------------------------------------------------------------------------------------- split


@dataclass
class Interactions:
    """Indexed pairs sorted by (user_idx, timestamp, item_idx), with their split."""

    user_idx: I64
    item_idx: I64
    timestamp: I64
    rating: npt.NDArray[np.float64]
    event_type: pa.Array
    events: I64
    label: I64
    test: npt.NDArray[np.bool_]


def temporal_split(
    pairs: Pairs, user_index: I64, items: ItemMap, settings: PreprocessSettings
) -> Interactions:
    """Each user's newest round-half-up(n × test_ratio) pairs are test (ties on time: larger item index is
    newer); users for whom that leaves no train or no test row, or with n < min_history, stay in train."""
    user_idx = user_index[pairs.user_code]
    item_idx = items.index_of_code[pairs.item_code]
    order = sort_order(user_idx, pairs.timestamp, item_idx)
    user_idx, item_idx = user_idx[order], item_idx[order]
    n_users = int(user_index.size)
    n = np.bincount(user_idx, minlength=n_users)
    n_test = np.floor(n * settings.test_ratio + 0.5).astype(np.int64)
    held = np.where((n_test < 1) | (n - n_test < 1) | (n < settings.min_history), 0, n_test)
    first = np.r_[0, np.cumsum(n)[:-1]]
    rank = np.arange(user_idx.size) - first[user_idx] + 1
    return Interactions(
        user_idx=user_idx,
        item_idx=item_idx,
        timestamp=pairs.timestamp[order],
        rating=pairs.rating[order],
        event_type=pc.take(pairs.event_type, pa.array(order)),
        events=pairs.events[order],
        label=pairs.label[order],
        test=rank > n[user_idx] - held[user_idx],
    )


def popularity(inter: Interactions, n_items: int) -> dict[str, I64]:
    """Per item index: interactions and positives, overall and in train (zeros included)."""
    train = ~inter.test

    def count(weights: npt.NDArray[Any] | None, where: npt.NDArray[np.bool_] | None = None) -> I64:
        items = inter.item_idx if where is None else inter.item_idx[where]
        w = None if weights is None else (weights if where is None else weights[where])
        return np.bincount(items, weights=w, minlength=n_items).astype(np.int64)

    return {
        "count": count(None),
        "positives": count(inter.label),
        "train_count": count(None, train),
        "train_positives": count(inter.label, train),
    }


# ------------------------------------------------------------------------------------------ categories


def item_categories(items: ItemMap) -> tuple[pa.Array, sp.csr_matrix]:
    """(category names by index, item × category 0/1 CSR with sorted columns): categories split on "|",
    trimmed, "(no genres listed)" dropped, numbered as a fresh stable map."""
    split = pc.split_pattern(items.categories, CATEGORY_SEPARATOR)
    names = pc.utf8_trim(pc.list_flatten(split), characters=" ")
    parent = pc.list_parent_indices(split).to_numpy(zero_copy_only=False).astype(np.int64)
    keep = pc.and_(pc.not_equal(names, ""), pc.invert(pc.is_in(names, pa.array(list(NO_CATEGORY)))))
    names, parent = pc.filter(names, keep), parent[keep.to_numpy(zero_copy_only=False)]
    codes, distinct = _codes(names)
    if len(distinct) == 0:
        return distinct, sp.csr_matrix((len(items.ids), 0), dtype=np.float32)
    index = fresh_index(distinct)
    matrix = sp.csr_matrix(
        (np.ones(parent.size, dtype=np.float32), (parent, index[codes])),
        shape=(len(items.ids), len(distinct)),
    )
    matrix.sum_duplicates()  # an item listing a category twice has it once
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return pc.take(distinct, pa.array(np.argsort(index))), matrix


# ------------------------------------------------------------------------------------------- negatives


def item_ranges(train_count: I64, exponent: float) -> tuple[I64, I64]:
    """(item_idx, hi) of the items with a positive weight round(train_count ** exponent × 1000), in index
    order; item k owns [hi[k-1], hi[k]) of [0, total)."""
    with np.errstate(divide="ignore"):
        weight = np.floor(np.power(train_count.astype(np.float64), exponent) * WEIGHT_SCALE + 0.5)
    weight = weight.astype(np.int64)
    items = np.flatnonzero((train_count > 0) & (weight > 0))
    return items.astype(np.int64), np.cumsum(weight[items])


def _seed_hash(seed: int, salt: str) -> np.uint64:
    first = sh.hash_int([seed]) if -(2**31) <= seed < 2**31 else sh.hash_long([seed])
    return sh.hash_strings(pa.array([salt]), first)[0]


def sample_negatives(
    pos_user: I64,
    pos_item: I64,
    interacted: I64,
    n_items: int,
    ranges: tuple[I64, I64],
    settings: PreprocessSettings,
    salt: str,
) -> tuple[I64, I64]:
    """(user_idx, item_idx) of up to `negatives_per_positive` negatives per positive, exactly as
    `glue.sampling.sample_negatives` draws them: candidate j of positive (u, i) is the item whose range holds
    pmod(xxhash64(seed, salt, u, i, j), total); items the user interacted with are dropped; the first
    survivors by j are kept. `interacted` holds the sorted keys user_idx × n_items + item_idx."""
    per = settings.negatives_per_positive
    draws = 2 * per + 4 if per else 0
    ranged_items, hi = ranges
    if draws == 0 or hi.size == 0 or pos_user.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    total = int(hi[-1])
    base = _seed_hash(settings.seed, salt)
    users, items = [], []
    for lo in range(0, pos_user.size, NEGATIVE_CHUNK):
        u, i = pos_user[lo : lo + NEGATIVE_CHUNK], pos_item[lo : lo + NEGATIVE_CHUNK]
        seed = sh.hash_long(i, sh.hash_long(u, base))
        hashes = np.empty((u.size, draws), dtype=np.uint64)
        for j in range(draws):
            hashes[:, j] = sh.hash_int(np.full(u.size, j, dtype=np.int32), seed)
        drawn = ranged_items[np.searchsorted(hi, sh.pmod(hashes, total), side="right")]
        keys = u[:, None] * n_items + drawn
        # only this chunk's users' keys: searches stay within a small, cached slice
        lo_key, hi_key = np.searchsorted(interacted, [u.min() * n_items, (u.max() + 1) * n_items])
        window = interacted[lo_key:hi_key]
        at = np.minimum(np.searchsorted(window, keys), max(window.size - 1, 0))
        fresh = window[at] != keys if window.size else np.ones(keys.shape, dtype=bool)
        kept = fresh & (np.cumsum(fresh, axis=1) <= per)
        users.append(np.broadcast_to(u[:, None], keys.shape)[kept])
        items.append(drawn[kept])
    return np.concatenate(users), np.concatenate(items)


# -------------------------------------------------------------------------------------------- outputs


@dataclass
class Channel:
    files: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    records: int = 0
    positives: int = 0


def fm_rows(
    users: I64, items: I64, categories: sp.csr_matrix, n_users: int, n_items: int, feature_dim: int
) -> sp.csr_matrix:
    """CSR rows: user one-hot, n_users + item, then n_users + n_items + each of the item's categories."""
    lengths = 2 + np.diff(categories.indptr)[items]
    indptr = np.zeros(users.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    starts = indptr[:-1]
    indices[starts] = users
    indices[starts + 1] = n_users + items
    extra = lengths - 2
    if extra.sum():
        row = np.repeat(np.arange(users.size), extra)
        offset = np.arange(row.size) - np.repeat(np.cumsum(extra) - extra, extra)
        source = categories.indptr[items][row] + offset
        indices[starts[row] + 2 + offset] = n_users + n_items + categories.indices[source]
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(users.size, feature_dim))


def write_channel(
    folder: Path,
    users: I64,
    items: I64,
    labels: I64,
    categories: sp.csr_matrix,
    sizes: tuple[int, int, int],
    settings: PreprocessSettings,
) -> Channel:
    """Shuffle (seeded) and write recordIO-protobuf shards of at most max_file_bytes, block by block."""
    folder.mkdir(parents=True, exist_ok=True)
    n_users, n_items, feature_dim = sizes
    order = np.random.default_rng(settings.seed).permutation(users.size)
    channel = Channel(records=int(users.size), positives=int((labels > 0).sum()))
    for block, lo in enumerate(range(0, users.size, FM_BLOCK_ROWS)):
        rows = order[lo : lo + FM_BLOCK_ROWS]
        matrix = fm_rows(users[rows], items[rows], categories, n_users, n_items, feature_dim)
        paths = write_sharded(
            folder,
            matrix,
            labels[rows].astype(np.float32),
            feature_dim,
            settings.max_file_bytes,
            f"part-{block:05d}",
        )
        channel.files += [p.name for p in paths]
        channel.sizes += [p.stat().st_size for p in paths]
    return channel


def dsstne_names(ids: pa.Array) -> pa.Array:
    """Ids as java.net.URLEncoder writes them (Spark's url_encode); only ids that need it are encoded."""
    safe = pc.match_substring_regex(ids, DSSTNE_SAFE).to_numpy(zero_copy_only=False)
    if safe.all():
        return ids
    values = np.array(ids.to_pylist(), dtype=object)
    values[~safe] = [quote_plus(v, safe="*").replace("~", "%7E") for v in values[~safe]]
    return pa.array(values, pa.string())


def dsstne_text(
    inter: Interactions, user_names: pa.Array, item_names: pa.Array, keep: npt.NDArray[np.bool_], values: bool
) -> bytes:
    """One line per train user: name<TAB>item:item:… (items oldest first, then by index); the kept rows
    give the elements, a train user without any gets an empty line. Built as one Arrow string array whose
    data buffer is the file."""
    train = ~inter.test
    users = inter.user_idx[train]  # sorted by user, then time, then item
    element = pc.take(item_names, pa.array(inter.item_idx[train]))
    if values:
        rating = inter.rating[train]
        distinct = np.unique(rating[~np.isnan(rating)])
        text = pa.array([repr(float(v)) for v in distinct], pa.string())  # Spark: 4.0 -> "4.0"
        where = np.searchsorted(distinct, np.nan_to_num(rating))
        suffix = pc.take(text, pa.array(np.minimum(where, max(distinct.size - 1, 0)), mask=np.isnan(rating)))
        element = pc.if_else(pc.is_null(suffix), element, pc.binary_join_element_wise(element, suffix, ","))
    kept = keep[train]
    line_users = np.unique(users)
    # every train user appears once even with no kept element: add an empty element for those
    has_any = np.zeros(int(users.max()) + 1 if users.size else 0, dtype=bool)
    has_any[users[kept]] = True
    empty_users = line_users[~has_any[line_users]]
    all_users = np.concatenate([users[kept], empty_users])
    all_elements = pa.concat_arrays(
        [pc.filter(element, pa.array(kept)), pa.array([""] * empty_users.size, pa.string())]
    )
    order = np.argsort(all_users, kind="stable")
    users_sorted = all_users[order]
    elements = pc.take(all_elements, pa.array(order))
    first = np.r_[True, users_sorted[1:] != users_sorted[:-1]] if users_sorted.size else np.zeros(0, bool)
    last = np.r_[first[1:], True] if users_sorted.size else np.zeros(0, bool)
    heads = pc.binary_join_element_wise(pc.take(user_names, pa.array(users_sorted)), "\t", "")
    prefix = pc.if_else(pa.array(first), heads, ":")
    suffix = pc.if_else(pa.array(last), "\n", "")
    joined = pc.binary_join_element_wise(prefix, elements, suffix, "").cast(pa.large_string())
    if len(joined) == 0:
        return b""
    offsets = np.frombuffer(
        joined.buffers()[1], dtype=np.int64, count=len(joined) + 1, offset=joined.offset * 8
    )
    return bytes(memoryview(joined.buffers()[2])[offsets[0] : offsets[-1]])


def write_parquet(table: pa.Table, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-00000.parquet")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)


# ------------------------------------------------------------------------------------------------ run


def _write_maps(root: Path, user_ids: pa.Array, items: ItemMap) -> None:
    n_users, n_items = len(user_ids), len(items.ids)
    write_parquet(
        pa.table({"user_idx": np.arange(n_users), USER_ID: user_ids, "is_new": np.ones(n_users, bool)}),
        root / contracts.RUN_USER_MAP_DIR,
    )
    columns = {TITLE: items.title, CATEGORIES: items.categories, "attributes": items.attributes}
    write_parquet(
        pa.table(
            {
                "item_idx": np.arange(n_items),
                ITEM_ID: items.ids,
                **columns,
                "in_catalog": items.in_catalog,
                "is_new": np.ones(n_items, bool),
            }
        ),
        root / contracts.RUN_ITEM_MAP_DIR,
    )


def _write_interactions(root: Path, inter: Interactions, user_ids: pa.Array, items: ItemMap) -> None:
    """interactions/split=train/ and split=test/, with the Spark run's columns and types."""
    for rows, folder in ((~inter.test, contracts.RUN_TRAIN_DIR), (inter.test, contracts.RUN_TEST_DIR)):
        users, item_idx, rating = inter.user_idx[rows], inter.item_idx[rows], inter.rating[rows]
        table = {
            "user_idx": users,
            "item_idx": item_idx,
            USER_ID: pc.take(user_ids, pa.array(users)),
            ITEM_ID: pc.take(items.ids, pa.array(item_idx)),
            TIMESTAMP: inter.timestamp[rows],
            RATING: pa.array(rating, mask=np.isnan(rating)),
            EVENT_TYPE: pc.filter(inter.event_type, pa.array(rows)),
            "events": inter.events[rows],
            "label": inter.label[rows].astype(np.int32),
        }
        write_parquet(pa.table(table), root / folder)


def _run_counts(inter: Interactions, n_users: int, items: ItemMap, pop: dict[str, I64]) -> dict[str, int]:
    not_in_catalog = ~items.in_catalog
    return {
        "interactions": int(inter.user_idx.size),
        "train": int((~inter.test).sum()),
        "test": int(inter.test.sum()),
        "test_users": int(np.unique(inter.user_idx[inter.test]).size),
        "positives": int(inter.label.sum()),
        "users": n_users,
        "new_users": n_users,
        "items": len(items.ids),
        "new_items": len(items.ids),
        "catalog_items": int(items.in_catalog.sum()),
        "items_without_catalog_row": int(not_in_catalog.sum()),
        "unknown_items_with_interactions": int((not_in_catalog & (pop["count"] > 0)).sum()),
    }


def _fm_channels(
    root: Path,
    inter: Interactions,
    pop: dict[str, I64],
    categories: sp.csr_matrix,
    sizes: tuple[int, int, int],
    settings: PreprocessSettings,
) -> tuple[dict[str, Channel], dict[str, dict[str, int]]]:
    """Each split's interactions (their labels) plus negatives for its positives, as one channel."""
    n_items = sizes[1]
    ranges = item_ranges(pop["train_count"], settings.negative_exponent)
    interacted = np.sort(inter.user_idx * n_items + inter.item_idx)
    channels: dict[str, Channel] = {}
    negatives: dict[str, dict[str, int]] = {}
    for name, folder in (("train", contracts.RUN_FM_TRAIN_DIR), ("test", contracts.RUN_FM_TEST_DIR)):
        rows = inter.test if name == "test" else ~inter.test
        users, items, labels = inter.user_idx[rows], inter.item_idx[rows], inter.label[rows]
        positive = labels == 1
        neg_users, neg_items = sample_negatives(
            users[positive], items[positive], interacted, n_items, ranges, settings, salt=name
        )
        channels[name] = write_channel(
            root / folder,
            np.concatenate([users, neg_users]),
            np.concatenate([items, neg_items]),
            np.concatenate([labels, np.zeros(neg_users.size, np.int64)]),
            categories,
            sizes,
            settings,
        )
        wanted = int(positive.sum()) * settings.negatives_per_positive
        negatives[name] = {
            "positives": int(positive.sum()),
            "wanted": wanted,
            "sampled": int(neg_users.size),
            "shortfall": wanted - int(neg_users.size),
        }
    return channels, negatives


def _write_dsstne(
    root: Path, inter: Interactions, user_ids: pa.Array, items: ItemMap, settings: PreprocessSettings
) -> None:
    user_names, item_names = dsstne_names(user_ids), dsstne_names(items.ids)
    everything = np.ones(inter.user_idx.size, dtype=bool)
    text_in = dsstne_text(inter, user_names, item_names, everything, settings.dsstne_values)
    text_out = text_in
    if settings.dsstne_target is DsstneTarget.POSITIVE:
        text_out = dsstne_text(inter, user_names, item_names, inter.label > 0, settings.dsstne_values)
    for folder, text in (
        (contracts.RUN_DSSTNE_INPUT_DIR, text_in),
        (contracts.RUN_DSSTNE_OUTPUT_DIR, text_out),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "part-00000.txt").write_bytes(text)


def _manifest(
    run_id: str,
    sizes: tuple[int, int, int],
    counts: dict[str, int],
    channels: dict[str, Channel],
    sources: Sequence[Path],
    settings: PreprocessSettings,
) -> dict[str, Any]:
    """The Spark manifest's fields that the comparison and a reader need."""
    n_users, n_items, feature_dim = sizes
    return {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "implementation": "pandas baseline (benchmarks/preprocess_pandas.py)",
        "feature_dim": feature_dim,
        "blocks": {
            "users": {"offset": 0, "size": n_users},
            "items": {"offset": n_users, "size": n_items},
            "categories": {"offset": n_users + n_items, "size": feature_dim - n_users - n_items},
        },
        "counts": counts,
        "fm": {
            "channels": {
                name: {
                    "files": c.files,
                    "records": c.records,
                    "positives": c.positives,
                    "bytes": sum(c.sizes),
                }
                for name, c in channels.items()
            }
        },
        "source_files": [str(p) for p in sources],
        "settings": {**asdict(settings), "dsstne_target": str(settings.dsstne_target)},
    }


def run(
    catalog_paths: Sequence[Path],
    transaction_paths: Sequence[Path],
    out: Path,
    run_id: str,
    settings: PreprocessSettings | None = None,
    ingest: Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write `<out>/runs/<run_id>/` as the Spark run does (fresh maps) and return (manifest, stats); the
    inputs are the CSVs, or with `ingest` the curated ingest layout under that folder."""
    settings = settings or PreprocessSettings()
    clock = Clock()
    root = out / contracts.RUNS_PREFIX / run_id
    if (root / contracts.RUN_MANIFEST_FILE).exists():
        raise FileExistsError(f"run {run_id!r} is already complete at {root}")
    shutil.rmtree(root, ignore_errors=True)  # leftovers of a failed attempt
    if ingest is not None:
        tx, catalog, sources = read_ingest(Path(ingest).resolve())
    else:
        tx_files = sorted(Path(p).resolve() for p in transaction_paths)
        cat_files = sorted(Path(p).resolve() for p in catalog_paths)
        tx, sources = read_transactions(tx_files), tx_files + cat_files
    pairs, quality = clean(tx, settings)
    del tx
    if ingest is None:
        catalog = read_catalog(cat_files) if cat_files else None
    clock.lap("clean")

    user_index = fresh_index(pairs.users)
    user_ids = pc.take(pairs.users, pa.array(np.argsort(user_index)))
    items = item_map(catalog, pairs.items)
    _write_maps(root, user_ids, items)
    clock.lap("index")

    inter = temporal_split(pairs, user_index, items, settings)
    del pairs
    _write_interactions(root, inter, user_ids, items)
    n_users, n_items = len(user_ids), len(items.ids)
    pop = popularity(inter, n_items)
    write_parquet(
        pa.table({"item_idx": np.arange(n_items), ITEM_ID: items.ids, **pop}),
        root / contracts.RUN_POPULARITY_DIR,
    )
    clock.lap("split")

    category_names, categories = pa.array([], pa.string()), sp.csr_matrix((n_items, 0), dtype=np.float32)
    if settings.categories:
        category_names, categories = item_categories(items)
        n_cat = len(category_names)
        write_parquet(
            pa.table(
                {"category_idx": np.arange(n_cat), "category": category_names, "is_new": np.ones(n_cat, bool)}
            ),
            root / contracts.RUN_CATEGORY_MAP_DIR,
        )
    counts = {**_run_counts(inter, n_users, items, pop), "categories": len(category_names)}
    sizes = (n_users, n_items, n_users + n_items + len(category_names))
    clock.lap("features")

    channels, negatives = _fm_channels(root, inter, pop, categories, sizes, settings)
    counts["fm_train_records"] = channels["train"].records
    counts["fm_test_records"] = channels["test"].records
    clock.lap("fm")

    _write_dsstne(root, inter, user_ids, items, settings)
    clock.lap("dsstne")

    stats = {
        "run_id": run_id,
        "transactions": quality,
        "counts": counts,
        "negatives": negatives,
        "fm_bytes": {name: sum(c.sizes) for name, c in channels.items()},
        "seconds": {**clock.stages, "total": clock.total()},
    }
    manifest = _manifest(run_id, sizes, counts, channels, sources, settings)
    write_json(root / contracts.RUN_STATS_FILE, stats)
    write_json(root / contracts.RUN_MANIFEST_FILE, manifest)  # last: the run is complete
    return manifest, stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", nargs="+", default=[], type=Path, metavar="PATH")
    parser.add_argument("--transactions", nargs="+", default=[], type=Path, metavar="PATH")
    parser.add_argument("--ingest", type=Path, metavar="DIR", help="read the curated ingest layout instead")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--run-id", default=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    parser.add_argument("--json", action="store_true", help="print manifest and stats as one JSON object")
    args = parser.parse_args(argv)
    if bool(args.transactions) == bool(args.ingest):
        parser.error("give either --transactions PATH [PATH ...] (with --catalog) or --ingest DIR")
    manifest, stats = run(args.catalog, args.transactions, args.out, args.run_id, ingest=args.ingest)
    if args.json:
        print(json.dumps({"manifest": manifest, "stats": stats}, sort_keys=True))
    else:
        counts = manifest["counts"]
        print(
            f"run {args.run_id}: {counts['users']} users, {counts['items']} items, {counts['interactions']} "
            f"interactions ({counts['train']} train, {counts['test']} test); FM records "
            f"{counts['fm_train_records']} train, {counts['fm_test_records']} test; feature_dim "
            f"{manifest['feature_dim']}; {stats['seconds']['total']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
