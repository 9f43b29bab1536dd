"""DSSTNE text lines from one partition's Arrow rows (numpy and pyarrow.compute, no Python loop per row).

The text is the one `glue.dsstne_text` describes; this module only knows how to build it from a table that
holds every row of each of its users, so a task of the per-user pass writes its users' lines itself.
The two places where Java's formatting must be reproduced exactly are here:

- names: `java.net.URLEncoder` (UTF-8), which is what Spark's `url_encode` runs;
- ratings: `Double.toString`, which is what Spark's `cast(double as string)` runs. On Java 17 it writes
  the shortest digits that round-trip (Python's `repr` digits) for zero and every double of magnitude
  in `JAVA_SHORTEST` (checked against Spark's cast on ~1.5M values), but not always above (1e23 ->
  `9.999999999999999E22`) nor for subnormals (5e-324 -> `4.9E-324`); ratings outside that range
  therefore arrive already formatted by Spark.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote_plus

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from glue.transforms import ITEM_IDX, LABEL, USER_IDX
from recsys.csv_contract import ITEM_ID, RATING, TIMESTAMP, USER_ID

SPARK_RATING = "_rating_text"  # a rating Spark formatted itself (outside the range `java_double` covers)
URL_SAFE = "^[A-Za-z0-9.*_-]*$"  # what java.net.URLEncoder leaves as it is
JAVA_SHORTEST = (2.0**-1022, 2.0**53)  # |rating| range where `java_double` is Java's Double.toString
PLAIN_RANGE = (1e-3, 1e7)  # Double.toString writes |v| in this range without an exponent


def url_encode(ids: pa.Array) -> pa.Array:
    """Ids as java.net.URLEncoder writes them: one Python call per distinct id that needs encoding (most
    ids, e.g. numeric ones, need none)."""
    safe = pc.match_substring_regex(ids, URL_SAFE)
    if pc.all(safe).as_py() is not False:
        return ids
    unsafe = pc.unique(pc.filter(ids, pc.invert(safe)))
    encoded = pa.array([quote_plus(v, safe="*").replace("~", "%7E") for v in unsafe.to_pylist()], pa.string())
    return pc.if_else(safe, ids, pc.take(encoded, pc.index_in(ids, value_set=unsafe)))


def java_double(value: float) -> str:
    """`Double.toString(value)` for zero and |value| in `JAVA_SHORTEST` (see the module docstring):
    shortest round-trip digits, plain between 1e-3 and 1e7, else `d.dddE±n`."""
    if value == 0:
        return str(value)  # "0.0" or "-0.0", as Java
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # digits before the decimal point
    minus = "-" if sign else ""
    if not PLAIN_RANGE[0] <= abs(value) < PLAIN_RANGE[1]:
        return f"{minus}{text[0]}.{text[1:] or '0'}E{point - 1}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{minus}{text}{'0' * (point - len(text))}.0"
    return f"{minus}{text[:point]}.{text[point:]}"


def rating_text(ratings: pa.Array, formatted: pa.Array) -> pa.Array:
    """Each rating as Spark casts it to a string (null stays null): Spark's own text where it sent one,
    else `java_double` once per distinct value (bit pattern, so -0.0 and 0.0 stay apart)."""
    mine = pc.and_(pc.is_valid(ratings), pc.is_null(formatted)).to_numpy(zero_copy_only=False)
    bits = ratings.to_numpy(zero_copy_only=False).astype(np.float64).view(np.int64)
    distinct, where = np.unique(bits[mine], return_inverse=True)
    text = pa.array([java_double(v) for v in distinct.view(np.float64).tolist()], pa.string())
    ours = np.zeros(bits.size, dtype=np.int64)
    ours[mine] = where
    return pc.if_else(pa.array(mine), pc.take(text, pa.array(ours)), formatted)


def elements(rows: pa.Table, values: bool) -> pa.Array:
    """Each row's element: the item's name, followed by `,rating` when values are kept and it has one."""
    names = url_encode(_column(rows, ITEM_ID))
    if not values:
        return names
    ratings = rating_text(_column(rows, RATING), _column(rows, SPARK_RATING))
    return pc.if_else(pc.is_null(ratings), names, pc.binary_join_element_wise(names, ratings, ","))


def user_lines(rows: pa.Table, values: bool, positives_only: bool) -> pa.Array:
    """One line per user of `rows`, users by index, elements by (timestamp, item index); with
    `positives_only` only label > 0 rows give elements, but every user keeps a line."""
    rows = rows.sort_by([(USER_IDX, "ascending"), (TIMESTAMP, "ascending"), (ITEM_IDX, "ascending")])
    users = rows.column(USER_IDX).to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    names = url_encode(pc.take(_column(rows, USER_ID), pa.array(starts)))
    kept = np.ones(users.size, dtype=bool)
    if positives_only:
        kept = rows.column(LABEL).to_numpy() > 0
        rows = rows.filter(pa.array(kept))
    offsets = np.r_[0, np.cumsum(np.add.reduceat(kept.astype(np.int64), starts))].astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), elements(rows, values)), ":")
    return pc.binary_join_element_wise(names, joined, "\t")


def _column(rows: pa.Table, name: str) -> pa.Array:
    return rows.column(name).combine_chunks()
