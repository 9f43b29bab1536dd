"""DSSTNE generateNetCDF text input: `user<TAB>item:item:…`, or `item,value` elements, one user per line.

Names in that format cannot hold a TAB (it ends the sample name), `:` (it separates features) or `,` (it
starts a value), and a newline would end the line. Ids are therefore written **form-URL-encoded**
(UTF-8, Java's `URLEncoder` as Spark's `url_encode` applies it): letters, digits and `.-*_` stay as
they are, a space becomes `+`, every other byte becomes `%XX`. MovieLens' numeric ids come out unchanged;
`a,b:c` becomes `a%2Cb%3Ac`. Reading DSSTNE's outputs (its feature and sample indexes, `recs.txt`) back
to ids is `urllib.parse.unquote_plus` (`decode_name`), with no map needed. A value is the rating as
Spark's `cast(double as string)` writes it (`4.0`, `1.0E-5`).

One line per user means one list per user; it is built from the user's distinct train items (pairs are
unique after the pair collapse), so its length is bounded by the catalog, not by the user's event count.
The lines are built per partition with Arrow (`glue.dsstne_arrow`), which needs every row of a user in
one partition: no groupBy, and no shuffle at all when the caller's rows are grouped by user already.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import unquote_plus

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from glue.dsstne_arrow import JAVA_SHORTEST, LINE, SPARK_RATING, partition_lines
from glue.settings import DsstneTarget
from glue.transforms import ITEM_IDX, LABEL, SPLIT, TRAIN, USER_IDX
from recsys.csv_contract import ITEM_ID, RATING, TIMESTAMP, USER_ID


def decode_name(name: str) -> str:
    """The id a DSSTNE name stands for (inverse of the encoding in the module docstring)."""
    return unquote_plus(name)


def spark_rating_text() -> Column:
    """The rating as Spark writes it, only where the Arrow side could not reproduce it (null elsewhere)."""
    size = F.abs(F.col(RATING))
    reproducible = (size < JAVA_SHORTEST[1]) & ((size >= JAVA_SHORTEST[0]) | (F.col(RATING) == 0))
    return F.when(~reproducible, F.col(RATING).cast("string"))


def dsstne_lines(
    interactions: DataFrame, target: DsstneTarget, values: bool, grouped: bool = False
) -> tuple[DataFrame, DataFrame]:
    """(input lines, output lines) from the train split: one line per train user in both, in the same
    order, so the two datasets share DSSTNE's sample index and row order. Input: every train item. Output:
    the same, or only the positives (a user without any gets a line with no features, which DSSTNE reads
    as an empty row).

    `grouped`: the caller promises every partition holds all rows of each of its users; otherwise the
    train rows are repartitioned by user first. Lines come in partition order, users by index within a
    partition, items oldest first (then by index), so the text is reproducible.
    """
    train = interactions.where(F.col(SPLIT) == TRAIN)
    if not grouped:
        train = train.repartition(USER_IDX)
    columns = [F.col(c) for c in (USER_IDX, USER_ID, TIMESTAMP, ITEM_IDX, ITEM_ID, LABEL)]
    if values:
        columns += [F.col(RATING), spark_rating_text().alias(SPARK_RATING)]
    rows = train.select(*columns)

    def lines(positives_only: bool) -> DataFrame:
        def body(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return partition_lines(batches, values, positives_only)

        return rows.mapInArrow(body, f"{LINE} string")

    lines_in = lines(positives_only=False)
    return lines_in, lines_in if target is DsstneTarget.ALL else lines(positives_only=True)
