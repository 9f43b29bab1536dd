"""Reading one model version's output folder (the publish format of `recsys.contracts`), in one place.

    <folder>/model.json              {"model_version", "model_kind", "k", "created_at", "run_id", ...}
    <folder>/recommendations/*.parquet  user_id, item_ids list<string>, scores list<float>, model_version
    <folder>/similar_items/*.parquet    item_id, item_ids, scores, model_version        (optional)
    <folder>/popularity.parquet         item_id, score, best first
    <folder>/item_vectors.npz           item_ids, factors (n, f) float32, bias (n,) float32 (optional)

Every row is checked as it is read; a bad one stops the publish with the file, the row and the column.
pyarrow and numpy load inside the functions: the API imports this module for the vectors only.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys import contracts
from recsys.serving.table import VersionError, check_version
from recsys.serving.validation import CONTROL_CHARACTERS, BadRequestError, check_id

BATCH_ROWS = 4096
RECOMMENDATIONS = "recommendations"
SIMILAR = "similar"
_KEY_COLUMN = {RECOMMENDATIONS: contracts.RECS_USER_COLUMN, SIMILAR: contracts.RECS_ITEM_COLUMN}
_DIR = {RECOMMENDATIONS: contracts.MODEL_RECS_DIR, SIMILAR: contracts.MODEL_SIMILAR_DIR}


class ModelFormatError(ValueError):
    """The folder does not follow the publish format; the message names the file, row and column."""


@dataclass(frozen=True)
class ModelInfo:
    version: str
    kind: str
    k: int
    created_at: str
    created_ms: int  # epoch milliseconds: events after this are unknown to the model
    run_id: str
    raw: dict[str, Any]


def read_model_info(folder: Path) -> ModelInfo:
    path = folder / contracts.MODEL_INFO_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(
            f"{path}: missing (every model folder has {contracts.MODEL_INFO_FILE})"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{path}: expected a JSON object")
    for name in ("model_version", "model_kind", "created_at"):
        if name not in raw:
            raise ModelFormatError(f"{path}: field {name!r} is missing")
    try:
        version = check_version(str(raw["model_version"]))
    except VersionError as exc:
        raise ModelFormatError(f"{path}: model_version: {exc}") from None
    k = raw.get("k", contracts.MAX_TOP_K)
    if not isinstance(k, int) or not 1 <= k <= contracts.MAX_TOP_K:
        raise ModelFormatError(f"{path}: k: expected an integer from 1 to {contracts.MAX_TOP_K}, got {k!r}")
    created_at = raw["created_at"]
    created_ms = epoch_ms(created_at)
    if created_ms is None:
        raise ModelFormatError(f"{path}: created_at: {created_at!r} is neither ISO-8601 nor epoch seconds")
    return ModelInfo(
        version=version,
        kind=str(raw["model_kind"]),
        k=k,
        created_at=str(created_at),
        created_ms=created_ms,
        run_id=str(raw.get("run_id", "")),
        raw=raw,
    )


def epoch_ms(value: object) -> int | None:
    """Epoch milliseconds of an ISO-8601 string (naive means UTC) or of epoch seconds; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(value * 1000) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of a folder written by Spark, pandas or Arrow (markers like _SUCCESS skipped)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if p.is_file() and not p.name.startswith(("_", ".")))


def has_similar_items(folder: Path) -> bool:
    similar = folder / contracts.MODEL_SIMILAR_DIR
    return similar.is_dir() and bool(parquet_parts(similar))


def iter_lists(folder: Path, kind: str, version: str) -> Iterator[tuple[str, list[str], list[float]]]:
    """(user or item id, item ids best first, scores) for every row of recommendations/ or similar_items/."""
    import pyarrow.parquet as pq

    key_column = _KEY_COLUMN[kind]
    columns = [key_column, contracts.RECS_ITEM_IDS_COLUMN, contracts.RECS_SCORES_COLUMN]
    version_column = contracts.RECS_MODEL_VERSION_COLUMN
    parts = parquet_parts(folder / _DIR[kind])
    if not parts:
        raise ModelFormatError(f"{folder / _DIR[kind]}: no Parquet files")
    seen: set[str] = set()
    for part in parts:
        reader = pq.ParquetFile(part)
        names = set(reader.schema_arrow.names)
        missing = [c for c in (*columns, version_column) if c not in names]
        if missing:
            raise ModelFormatError(f"{part}: missing column(s) {', '.join(missing)}")
        row = 0
        for batch in reader.iter_batches(batch_size=BATCH_ROWS, columns=[*columns, version_column]):
            keys, ids, scores, versions = (batch.column(i).to_pylist() for i in range(4))
            for key, item_ids, item_scores, row_version in zip(keys, ids, scores, versions, strict=True):
                where = f"{part}: row {row}"
                row += 1
                if row_version != version:
                    raise ModelFormatError(
                        f"{where}: {version_column} is {row_version!r}, expected {version!r}"
                    )
                key = _id(key, where, key_column)
                if key in seen:
                    raise ModelFormatError(f"{where}: {key_column} {key!r} appears twice")
                seen.add(key)
                yield key, *_scored_list(item_ids, item_scores, where)


def _id(value: object, where: str, column: str) -> str:
    if not isinstance(value, str):
        raise ModelFormatError(f"{where}: {column}: expected a string, got {value!r}")
    try:
        return check_id(value, column)
    except BadRequestError as exc:
        raise ModelFormatError(f"{where}: {exc.message}") from None


def _scored_list(ids: object, scores: object, where: str) -> tuple[list[str], list[float]]:
    if not isinstance(ids, list) or not isinstance(scores, list):
        raise ModelFormatError(f"{where}: item_ids and scores must be lists")
    if len(ids) != len(scores):
        raise ModelFormatError(f"{where}: {len(ids)} item_ids but {len(scores)} scores")
    if len(ids) > contracts.MAX_TOP_K:
        raise ModelFormatError(f"{where}: {len(ids)} items; at most {contracts.MAX_TOP_K} are allowed")
    if not _plain_ids(ids):  # the row-at-once check failed: find the id at fault and say why
        ids = [_id(i, where, contracts.RECS_ITEM_IDS_COLUMN) for i in ids]
    if len(set(ids)) != len(ids):
        raise ModelFormatError(f"{where}: item_ids has duplicates")
    if not all(type(s) is float and math.isfinite(s) for s in scores):
        for s in scores:
            if not isinstance(s, int | float) or isinstance(s, bool) or not math.isfinite(s):
                raise ModelFormatError(f"{where}: scores: {s!r} is not a finite number")
    return ids, [float(s) for s in scores]


def _plain_ids(ids: list[Any]) -> bool:
    """The id rule of `check_id` for a whole list at once (publish reads millions of ids)."""
    return (
        all(type(i) is str and i.strip(" ") for i in ids)
        and max(map(len, ids), default=0) <= contracts.MAX_ID_LENGTH
        and not CONTROL_CHARACTERS.search("".join(ids))
    )


def read_popularity(folder: Path, limit: int) -> tuple[list[str], list[float]]:
    """The first `limit` rows of popularity.parquet (the file is best first)."""
    import pyarrow.parquet as pq

    path = folder / contracts.MODEL_POPULARITY_FILE
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing")
    reader = pq.ParquetFile(path)
    missing = [c for c in (contracts.RECS_ITEM_COLUMN, "score") if c not in reader.schema_arrow.names]
    if missing:
        raise ModelFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    ids: list[str] = []
    scores: list[float] = []
    seen: set[str] = set()
    for batch in reader.iter_batches(batch_size=max(1, limit), columns=[contracts.RECS_ITEM_COLUMN, "score"]):
        for item_id, score in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            if len(ids) >= limit:
                return ids, scores
            where = f"{path}: row {len(ids)}"
            [checked], [value] = _scored_list([item_id], [score], where)
            if checked in seen:
                raise ModelFormatError(f"{where}: item_id {checked!r} appears twice")
            seen.add(checked)
            ids.append(checked)
            scores.append(value)
    return ids, scores


@dataclass(frozen=True)
class VectorArrays:
    item_ids: list[str]
    factors: Any  # numpy float32 (n, f)
    bias: Any  # numpy float32 (n,)


def read_item_vectors(data: bytes, source: str) -> VectorArrays:
    """Parse item_vectors.npz bytes; checks names, shapes and finiteness (source names it in errors)."""
    import numpy as np

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {n: npz[n] for n in ("item_ids", "factors", "bias") if n in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ModelFormatError(f"{source}: not a readable .npz file: {exc}") from None
    missing = [n for n in ("item_ids", "factors", "bias") if n not in arrays]
    if missing:
        raise ModelFormatError(f"{source}: missing array(s) {', '.join(missing)}")
    ids, factors, bias = arrays["item_ids"], arrays["factors"], arrays["bias"]
    if ids.ndim != 1 or factors.ndim != 2 or bias.ndim != 1 or not len(ids) == len(factors) == len(bias):
        raise ModelFormatError(
            f"{source}: expected item_ids (n,), factors (n, f), bias (n,); got "
            f"{ids.shape}, {factors.shape}, {bias.shape}"
        )
    if ids.dtype.kind not in "U":
        raise ModelFormatError(f"{source}: item_ids must be a string array, got {ids.dtype}")
    factors = np.ascontiguousarray(factors, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32)
    if not (np.isfinite(factors).all() and np.isfinite(bias).all()):
        raise ModelFormatError(f"{source}: factors and bias must be finite")
    return VectorArrays(ids.tolist(), factors, bias)
