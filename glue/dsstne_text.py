"""DSSTNE generateNetCDF text input: `user<TAB>item:item:…`, or `item,value` elements, one user per line.

Names in that format cannot hold a TAB (it ends the sample name), `:` (it separates features) or `,` (it
starts a value), and a newline would end the line. Ids are therefore written **form-URL-encoded**
(UTF-8, Java's `URLEncoder` as Spark's `url_encode` applies it): letters, digits and `.-*_` stay as
they are, a space becomes `+`, every other byte becomes `%XX`. MovieLens' numeric ids come out unchanged;
`a,b:c` becomes `a%2Cb%3Ac`. Reading DSSTNE's outputs (its feature and sample indexes, `recs.txt`) back
to ids is `urllib.parse.unquote_plus` (`decode_name`), with no map needed.

One line per user means one list per user; it is built from the user's distinct train items (pairs are
unique after the pair collapse), so its length is bounded by the catalog, not by the user's event count.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from glue.settings import DsstneTarget
from glue.transforms import ITEM_IDX, LABEL, SPLIT, TRAIN
from recsys.csv_contract import ITEM_ID, RATING, TIMESTAMP, USER_ID

LINE = "value"  # Spark's text writer takes one string column named `value`


def encode_name(column: Column) -> Column:
    """An id as a DSSTNE-safe name (see the module docstring)."""
    return F.url_encode(column)


def decode_name(name: str) -> str:
    """The id a DSSTNE name stands for (inverse of `encode_name`)."""
    return unquote_plus(name)


def dsstne_lines(interactions: DataFrame, target: DsstneTarget, values: bool) -> tuple[DataFrame, DataFrame]:
    """(input lines, output lines) from the train split: one line per train user in both, so the two
    datasets share DSSTNE's sample index and row order. Input: every train item. Output: the same, or only
    the positives (a user without any gets a line with no features, which DSSTNE reads as an empty row).

    Items are listed oldest first (then by index), so the text is reproducible.
    """
    element = encode_name(F.col(ITEM_ID))
    if values:
        element = F.when(
            F.col(RATING).isNotNull(), F.concat(element, F.lit(","), F.col(RATING).cast("string"))
        ).otherwise(element)
    train = interactions.where(F.col(SPLIT) == TRAIN).select(
        USER_ID, F.struct(TIMESTAMP, ITEM_IDX, element.alias("name"), F.col(LABEL).alias("label")).alias("_e")
    )
    per_user = train.groupBy(USER_ID).agg(F.array_sort(F.collect_list("_e")).alias("_items"))
    name = encode_name(F.col(USER_ID))
    everything = F.transform("_items", lambda e: e["name"])
    positives = F.transform(F.filter("_items", lambda e: e["label"] > 0), lambda e: e["name"])

    def lines(items: Column) -> DataFrame:
        return per_user.select(F.concat(name, F.lit("\t"), F.array_join(items, ":")).alias(LINE))

    return lines(everything), lines(everything if target is DsstneTarget.ALL else positives)
