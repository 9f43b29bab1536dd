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
The lines are built with Arrow (`glue.dsstne_arrow.user_lines`) by the per-user pass
(`glue.user_outputs`), whose partitions hold every row of each of their users: no groupBy, no shuffle.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from pyspark.sql import Column
from pyspark.sql import functions as F

from glue.dsstne_arrow import JAVA_SHORTEST
from recsys.csv_contract import RATING


def decode_name(name: str) -> str:
    """The id a DSSTNE name stands for (inverse of the encoding in the module docstring)."""
    return unquote_plus(name)


def spark_rating_text() -> Column:
    """The rating as Spark writes it, only where the Arrow side could not reproduce it (null elsewhere)."""
    size = F.abs(F.col(RATING))
    reproducible = (size < JAVA_SHORTEST[1]) & ((size >= JAVA_SHORTEST[0]) | (F.col(RATING) == 0))
    return F.when(~reproducible, F.col(RATING).cast("string"))
