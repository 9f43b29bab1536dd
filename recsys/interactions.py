"""One in-memory representation of user–item interactions, whatever file format they came from.

Users and items carry contiguous integer indices (0..n-1) so that models work on arrays; `user_ids` and
`item_ids` map an index back to the external id (a string, as in the CSV contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ItemCatalog:
    """Item metadata aligned with `Interactions.item_ids` (position i describes item index i)."""

    titles: np.ndarray  # str objects; "" where unknown
    categories: np.ndarray  # str objects, "|"-separated; "" where unknown


@dataclass(frozen=True)
class Interactions:
    """Interactions as parallel arrays (one entry per event) plus the id maps.

    `item_ids` lists items with interactions first (first-seen order), then catalog items that have no
    interaction, so `n_items` covers the whole catalog.
    """

    user: np.ndarray  # int32 user index per interaction
    item: np.ndarray  # int32 item index per interaction
    timestamp: np.ndarray  # int64 epoch seconds per interaction
    rating: np.ndarray  # float32 per interaction; NaN where the source has no rating
    user_ids: np.ndarray  # external user id per user index (str objects)
    item_ids: np.ndarray  # external item id per item index (str objects)
    catalog: ItemCatalog | None = field(default=None)

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "timestamp", "rating"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Interactions.{name} has {len(getattr(self, name))} entries, expected {n}")
        if self.catalog is not None and len(self.catalog.titles) != len(self.item_ids):
            raise ValueError("ItemCatalog must have one entry per item id")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def has_ratings(self) -> bool:
        return bool(len(self.rating)) and not bool(np.isnan(self.rating).all())

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """The same users, items and maps, restricted to some interactions (a split)."""
        return Interactions(
            user=self.user[mask_or_index],
            item=self.item[mask_or_index],
            timestamp=self.timestamp[mask_or_index],
            rating=self.rating[mask_or_index],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            catalog=self.catalog,
        )
