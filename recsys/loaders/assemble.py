"""Turn raw columns from any format into `Interactions`: one place that owns indexing and alignment.

Every reader hands over the same raw shape (string ids as Arrow arrays, numbers as numpy arrays), so
the index rules of `recsys.interactions` (first-seen order, catalog-only items appended) live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys.interactions import Interactions, ItemCatalog


@dataclass(frozen=True)
class RawEvents:
    """Validated interaction columns, one entry per event, ids still as text."""

    user: Any  # pa.Array | pa.ChunkedArray of strings
    item: Any  # pa.Array | pa.ChunkedArray of strings
    timestamp: np.ndarray  # int64 epoch seconds
    rating: np.ndarray  # float32, NaN where absent


@dataclass(frozen=True)
class RawCatalog:
    """Validated catalog columns, one entry per catalog row."""

    item_id: Any  # pa.Array | pa.ChunkedArray of strings
    title: Any  # strings ("" where unknown)
    categories: Any  # "|"-separated strings ("" where unknown)


def _encode(values: Any) -> tuple[np.ndarray, Any]:
    """Contiguous int32 codes in first-seen order, and the distinct values (a pa.Array).

    Arrow's hash kernel keeps one memo across chunks, so every chunk shares the final dictionary.
    """
    chunked = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    encoded = chunked.dictionary_encode()
    if encoded.num_chunks == 0:
        return np.empty(0, dtype=np.int32), pa.array([], type=pa.string())
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
    return codes.astype(np.int32, copy=False), encoded.chunk(encoded.num_chunks - 1).dictionary


def _strings(values: Any) -> np.ndarray:
    """Arrow strings as a numpy array of str objects (nulls become "")."""
    return np.asarray(pc.fill_null(values, "").to_numpy(zero_copy_only=False), dtype=object)


def assemble(events: RawEvents, catalog: RawCatalog | None) -> Interactions:
    """Index users and items; append catalog-only items after the interacted ones and align metadata."""
    user, user_ids = _encode(events.user)
    item, item_ids = _encode(events.item)
    item_catalog = None
    if catalog is not None:
        catalog_ids = _flat(catalog.item_id).cast(pa.string())
        distinct = pc.unique(catalog_ids)  # first occurrence wins, order kept
        only_in_catalog = pc.filter(distinct, pc.invert(pc.is_in(distinct, value_set=item_ids)))
        item_ids = pa.concat_arrays([item_ids.cast(pa.string()), only_in_catalog.cast(pa.string())])
        position = pc.index_in(item_ids, value_set=catalog_ids)  # first matching catalog row, or null
        item_catalog = ItemCatalog(
            titles=_strings(pc.take(_flat(catalog.title), position)),
            categories=_strings(pc.take(_flat(catalog.categories), position)),
        )
    return Interactions(
        user=user,
        item=item,
        timestamp=np.asarray(events.timestamp, dtype=np.int64),
        rating=np.asarray(events.rating, dtype=np.float32),
        user_ids=_strings(user_ids),
        item_ids=_strings(item_ids),
        catalog=item_catalog,
    )


def _flat(values: Any) -> Any:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
