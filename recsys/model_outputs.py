"""Writing (and reading back) one model version's output folder: the publish format of `recsys.contracts`.

    <folder>/model.json                    {"model_version", "model_kind", "k", "created_at", "run_id", ...}
    <folder>/recommendations/part-*.parquet  user_id, item_ids list<string>, scores list<float>, model_version
    <folder>/similar_items/part-*.parquet    item_id, item_ids, scores, model_version             (optional)
    <folder>/popularity.parquet              item_id, score (float64), best first
    <folder>/item_vectors.npz                item_ids (str), factors float32 (n, f), bias float32 (n,)

Every trainer that hands a model to `recsys publish` writes through this module (FM top-k, the DSSTNE
predict step), so the files cannot drift from what `recsys.serving.model_files` reads and checks. Lists
are written from the (n, k) index/score arrays of `recsys.topk` in blocks, streamed to a Parquet writer,
so memory stays that of one block whatever the number of users. -1 padding is dropped (a list may be
shorter than k); a row whose list is empty is not written, so the API falls back to popularity for it.

Part files are written under a hidden temporary name and renamed when complete: a crashed shard never
leaves a file that looks finished. Folders are local paths (a Batch job copies the folder to S3 after).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import contracts
from recsys.serving.table import check_version

ListKind = Literal["recommendations", "similar"]
RECOMMENDATIONS: ListKind = "recommendations"
SIMILAR: ListKind = "similar"
_DIRS: dict[str, str] = {RECOMMENDATIONS: contracts.MODEL_RECS_DIR, SIMILAR: contracts.MODEL_SIMILAR_DIR}
_KEYS: dict[str, str] = {RECOMMENDATIONS: contracts.RECS_USER_COLUMN, SIMILAR: contracts.RECS_ITEM_COLUMN}
POPULARITY_SCORE_COLUMN = "score"


def list_schema(kind: ListKind) -> pa.Schema:
    """The Arrow schema of recommendations/ (key user_id) or similar_items/ (key item_id) part files."""
    return pa.schema(
        [
            pa.field(_KEYS[kind], pa.string(), nullable=False),
            pa.field(contracts.RECS_ITEM_IDS_COLUMN, pa.list_(pa.string()), nullable=False),
            pa.field(contracts.RECS_SCORES_COLUMN, pa.list_(pa.float32()), nullable=False),
            pa.field(contracts.RECS_MODEL_VERSION_COLUMN, pa.string(), nullable=False),
        ]
    )


def part_name(start: int, end: int) -> str:
    """The part file of rows [start, end): zero-padded so that names sort in row order."""
    return f"part-{start:010d}-{end:010d}.parquet"


def list_dir(folder: str | Path, kind: ListKind) -> Path:
    return Path(folder) / _DIRS[kind]


class ListWriter:
    """Streams (key, ranked item ids, scores) rows of one part file; use as a context manager.

    `item_ids` maps the item indices of `write_block` to external ids. Closing renames the hidden
    temporary file to its final name; leaving the block on an exception deletes it instead."""

    def __init__(
        self,
        folder: str | Path,
        kind: ListKind,
        name: str,
        model_version: str,
        item_ids: Sequence[str] | np.ndarray,
        *,
        max_k: int = contracts.MAX_TOP_K,
    ) -> None:
        if kind not in _DIRS:
            raise ValueError(f"kind must be {RECOMMENDATIONS!r} or {SIMILAR!r}; got {kind!r}")
        self.kind = kind
        self.model_version = check_version(model_version)
        self.max_k = max_k
        self.path = list_dir(folder, kind) / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{name}.tmp")
        self._ids = pa.array(np.asarray(item_ids, dtype=str), pa.string())
        self._schema = list_schema(kind)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._tmp, self._schema)
        self.rows = 0

    def write_block(self, keys: Sequence[str] | np.ndarray, items: np.ndarray, scores: np.ndarray) -> int:
        """Write one block: keys (b,), item indices int (b, k) best first with -1 padding, scores (b, k).

        Returns the rows written (rows with an empty list are skipped)."""
        if self._writer is None:
            raise ValueError(f"{self.path}: the writer is closed")
        items = np.asarray(items)
        scores = np.asarray(scores, dtype=np.float32)
        keys_arr = np.asarray(keys, dtype=str)
        if items.ndim != 2 or items.shape != scores.shape or items.shape[0] != len(keys_arr):
            raise ValueError(
                f"{self.path}: keys {keys_arr.shape}, items {items.shape} and scores {scores.shape} do not "
                "match (keys (b,), items and scores (b, k))"
            )
        if items.shape[1] > self.max_k:
            raise ValueError(
                f"{self.path}: lists of {items.shape[1]} items; at most {self.max_k} are allowed"
            )
        valid = items >= 0
        if (items >= len(self._ids)).any():
            raise ValueError(f"{self.path}: item index out of range (the catalog has {len(self._ids)} items)")
        if not np.isfinite(scores[valid]).all():
            raise ValueError(f"{self.path}: scores of returned items must be finite")
        counts = valid.sum(axis=1)
        keep = counts > 0
        if not keep.any():
            return 0
        offsets = np.zeros(int(keep.sum()) + 1, np.int32)
        np.cumsum(counts[keep], out=offsets[1:])
        rows = valid & keep[:, None]
        ids = pa.ListArray.from_arrays(pa.array(offsets), self._ids.take(pa.array(items[rows])))
        vals = pa.ListArray.from_arrays(pa.array(offsets), pa.array(scores[rows], pa.float32()))
        n = len(offsets) - 1
        version = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([self.model_version])
        ).cast(pa.string())
        table = pa.Table.from_arrays(
            [pa.array(keys_arr[keep], pa.string()), ids, vals, version], schema=self._schema
        )
        self._writer.write_table(table)
        self.rows += n
        return n

    def close(self) -> Path:
        """Finish the file and give it its final name."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ListWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()


def write_model_info(
    folder: str | Path,
    *,
    model_version: str,
    model_kind: str,
    k: int,
    run_id: str = "",
    created_at: str | None = None,
    **extra: Any,
) -> Path:
    """Write model.json (write it last: a folder without it is incomplete). Extra fields are kept."""
    if not isinstance(k, int) or not 1 <= k <= contracts.MAX_TOP_K:
        raise ValueError(f"k must be an integer from 1 to {contracts.MAX_TOP_K}; got {k!r}")
    info = {
        "model_version": check_version(model_version),
        "model_kind": model_kind,
        "k": k,
        "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        **extra,
    }
    path = Path(folder) / contracts.MODEL_INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path


def write_popularity(folder: str | Path, item_ids: Sequence[str] | np.ndarray, scores: np.ndarray) -> Path:
    """popularity.parquet, best first (ties by the given order); items scoring 0 or less are left out."""
    ids = np.asarray(item_ids, dtype=str)
    values = np.asarray(scores, dtype=np.float64)
    if ids.shape != values.shape or ids.ndim != 1:
        raise ValueError(f"item_ids {ids.shape} and scores {values.shape} must be two (n,) arrays")
    order = np.argsort(-values, kind="stable")
    order = order[values[order] > 0]
    table = pa.table(
        {
            contracts.RECS_ITEM_COLUMN: pa.array(ids[order], pa.string()),
            POPULARITY_SCORE_COLUMN: pa.array(values[order], pa.float64()),
        }
    )
    path = Path(folder) / contracts.MODEL_POPULARITY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_item_vectors(
    folder: str | Path, item_ids: Sequence[str] | np.ndarray, factors: np.ndarray, bias: np.ndarray
) -> Path:
    """item_vectors.npz: what the API scores real-time fold-in users with (u · factors[j] + bias[j])."""
    ids = np.asarray(item_ids, dtype=str)
    f = np.ascontiguousarray(factors, dtype=np.float32)
    b = np.ascontiguousarray(bias, dtype=np.float32)
    if ids.ndim != 1 or f.ndim != 2 or b.ndim != 1 or not len(ids) == len(f) == len(b):
        raise ValueError(
            f"expected item_ids (n,), factors (n, f), bias (n,); got {ids.shape}, {f.shape}, {b.shape}"
        )
    if not (np.isfinite(f).all() and np.isfinite(b).all()):
        raise ValueError("factors and bias must be finite")
    path = Path(folder) / contracts.MODEL_ITEM_VECTORS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        np.savez(out, item_ids=ids, factors=f, bias=b)
    os.replace(tmp, path)
    return path


# --- reading back (tools and tests; `recsys.serving.model_files` is the checking reader of publish) -------


def read_model_info(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / contracts.MODEL_INFO_FILE
    info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return info


def list_parts(folder: str | Path, kind: ListKind) -> list[Path]:
    """The finished part files of recommendations/ or similar_items/, in name (row) order."""
    path = list_dir(folder, kind)
    if not path.is_dir():
        return []
    return sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))


def read_lists(folder: str | Path, kind: ListKind) -> pa.Table:
    """Every part of recommendations/ or similar_items/ as one table (part order, then row order)."""
    parts = list_parts(folder, kind)
    if not parts:
        return list_schema(kind).empty_table()
    return pa.concat_tables([pq.read_table(p, schema=list_schema(kind)) for p in parts])


def iter_list_batches(
    folder: str | Path, kind: ListKind, batch_rows: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """The lists in record batches, for folders too large to read at once."""
    for part in list_parts(folder, kind):
        yield from pq.ParquetFile(part).iter_batches(batch_size=batch_rows)


def read_popularity(folder: str | Path) -> pa.Table:
    return pq.read_table(Path(folder) / contracts.MODEL_POPULARITY_FILE)


def read_item_vectors(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item_ids, factors, bias) of item_vectors.npz."""
    with np.load(Path(folder) / contracts.MODEL_ITEM_VECTORS_FILE, allow_pickle=False) as data:
        return data["item_ids"], data["factors"], data["bias"]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
