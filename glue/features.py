"""The FM feature layout: user one-hot, item one-hot, optional item-category one-hot (a hybrid FM).

Columns of a row (feature_dim = n_users + n_items + n_categories):

    [0, n_users)                              user_idx
    [n_users, n_users + n_items)              n_users + item_idx
    [n_users + n_items, feature_dim)          n_users + n_items + category_idx, for each item category

All values are 1.0. Categories let a cold item (no interactions yet) still get a score from its
categories' factors.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue.indexing import stable_index
from glue.transforms import ITEM_IDX, LABEL, USER_IDX
from recsys.csv_contract import CATEGORIES, CATEGORY_SEPARATOR

CATEGORY = "category"
CATEGORY_IDX = "category_idx"
CATEGORY_IDXS = "category_idxs"
# MovieLens writes this where a movie has no genre: it means "none", not a category of its own.
NO_CATEGORY = ("(no genres listed)",)


@dataclass(frozen=True)
class FeatureLayout:
    """Sizes and offsets of the FM feature blocks (what manifest.json records)."""

    n_users: int
    n_items: int
    n_categories: int = 0

    @property
    def item_offset(self) -> int:
        return self.n_users

    @property
    def category_offset(self) -> int:
        return self.n_users + self.n_items

    @property
    def feature_dim(self) -> int:
        return self.n_users + self.n_items + self.n_categories

    def blocks(self) -> dict[str, dict[str, int]]:
        return {
            "users": {"offset": 0, "size": self.n_users},
            "items": {"offset": self.item_offset, "size": self.n_items},
            "categories": {"offset": self.category_offset, "size": self.n_categories},
        }


def item_category_names(items: DataFrame) -> DataFrame:
    """(item_idx, category): one row per category of each item, split on "|", trimmed, de-duplicated."""
    exploded = items.select(
        ITEM_IDX,
        F.explode(F.split(F.coalesce(F.col(CATEGORIES), F.lit("")), f"\\{CATEGORY_SEPARATOR}")).alias(
            CATEGORY
        ),
    ).select(ITEM_IDX, F.trim(F.col(CATEGORY)).alias(CATEGORY))
    return exploded.where((F.col(CATEGORY) != "") & ~F.col(CATEGORY).isin(list(NO_CATEGORY))).distinct()


def category_map(item_categories: DataFrame, previous: DataFrame | None) -> DataFrame:
    """(category, category_idx, is_new): stable across runs, like the user and item maps."""
    return stable_index(item_categories.select(CATEGORY), previous, CATEGORY, CATEGORY_IDX)


def item_category_indices(item_categories: DataFrame, categories: DataFrame) -> DataFrame:
    """(item_idx, category_idxs): each item's category indices, ascending (an item's list is bounded by the
    number of categories, not by data size)."""
    return (
        item_categories.join(categories.select(CATEGORY, CATEGORY_IDX), on=CATEGORY)
        .groupBy(ITEM_IDX)
        .agg(F.array_sort(F.collect_list(F.col(CATEGORY_IDX).cast("int"))).alias(CATEGORY_IDXS))
    )


def fm_rows(rows: DataFrame, item_categories: DataFrame | None) -> DataFrame:
    """(user_idx, item_idx, label, category_idxs) ready for the recordIO writer; label as float 1.0/0.0."""
    base = rows.select(
        F.col(USER_IDX).cast("long").alias(USER_IDX),
        F.col(ITEM_IDX).cast("long").alias(ITEM_IDX),
        F.col(LABEL).cast("float").alias(LABEL),
    )
    if item_categories is None:
        return base.withColumn(CATEGORY_IDXS, F.array().cast("array<int>"))
    joined = base.join(item_categories, on=ITEM_IDX, how="left")
    return joined.select(
        USER_IDX,
        ITEM_IDX,
        LABEL,
        F.coalesce(F.col(CATEGORY_IDXS), F.array().cast("array<int>")).alias(CATEGORY_IDXS),
    )
