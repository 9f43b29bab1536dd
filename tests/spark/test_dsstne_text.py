"""The Arrow-built DSSTNE lines against the text Spark's own functions give (the former groupBy path,
kept here as the reference): same lines per user, same user order in the input and output datasets."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue.dsstne_arrow import JAVA_SHORTEST, SPARK_RATING, java_double, user_lines
from glue.dsstne_text import spark_rating_text
from glue.settings import DsstneTarget

SCHEMA = (
    "user_idx long, item_idx long, user_id string, item_id string, timestamp long, rating double, "
    "event_type string, events long, label int, split string"
)
AWKWARD = ["a,b", "t\tab", "c:o:l", "sp ace", "ünï", "日本", "50%", "1+1", "ti~de", "st*r", "a.b-c_d", "42"]
AWKWARD += ["%2C", "new\nline"]
RATINGS = [None, 4.0, 3.5, 0.1, 1e-05, 12345678.0, 1e20, -0.0, 0.0, 1e23, 5e-324, 0.0009999, 2.5e-310]


def reference_lines(
    interactions: DataFrame, target: DsstneTarget, values: bool
) -> tuple[DataFrame, DataFrame]:
    """The text as Spark SQL writes it: url_encode, cast(double as string), a sorted list per user."""
    element = F.url_encode(F.col("item_id"))
    if values:
        element = F.when(
            F.col("rating").isNotNull(), F.concat(element, F.lit(","), F.col("rating").cast("string"))
        ).otherwise(element)
    train = interactions.where(F.col("split") == "train").select(
        "user_id", F.struct("timestamp", "item_idx", element.alias("name"), "label").alias("_e")
    )
    per_user = train.groupBy("user_id").agg(F.array_sort(F.collect_list("_e")).alias("_items"))
    everything = F.transform("_items", lambda e: e["name"])
    positives = F.transform(F.filter("_items", lambda e: e["label"] > 0), lambda e: e["name"])

    def lines(items: Any) -> DataFrame:
        name = F.url_encode(F.col("user_id"))
        return per_user.select(F.concat(name, F.lit("\t"), F.array_join(items, ":")).alias("value"))

    return lines(everything), lines(everything if target is DsstneTarget.ALL else positives)


def interactions(spark: Any) -> tuple[DataFrame, pa.Table]:
    """Awkward ids, null and extreme ratings, ties on time, users with only test rows and users whose
    train rows are all negatives: as a DataFrame, and as the Arrow table the per-user pass holds (with
    Spark's text of the ratings outside `JAVA_SHORTEST`), rows in the same order."""
    draw = random.Random(7)
    users = AWKWARD + [f"user {n}" for n in range(40)]
    items = AWKWARD + [f"item:{n}" for n in range(30)]
    rows = []
    for u, user in enumerate(users):
        only_test, all_negative = u % 7 == 3, u % 5 == 1
        for i in draw.sample(range(len(items)), draw.randint(1, 12)):
            split = "test" if only_test or draw.random() < 0.2 else "train"
            label = 0 if all_negative else draw.randint(0, 1)
            rating = draw.choice(RATINGS)
            rows.append((u, i, user, items[i], draw.randint(0, 3), rating, "view", 1, label, split))
    df = spark.createDataFrame(rows, SCHEMA).withColumn(SPARK_RATING, spark_rating_text())
    collected = df.collect()
    table = pa.table(
        {
            name: pa.array([r[name] for r in collected], arrow_type)
            for name, arrow_type in (
                ("user_idx", pa.int64()),
                ("item_idx", pa.int64()),
                ("user_id", pa.string()),
                ("item_id", pa.string()),
                ("timestamp", pa.int64()),
                ("rating", pa.float64()),
                ("label", pa.int32()),
                ("split", pa.string()),
                (SPARK_RATING, pa.string()),
            )
        }
    )
    return df, table


def train_lines(table: pa.Table, values: bool, positives_only: bool) -> list[str]:
    train = table.filter(pc.equal(table.column("split"), "train"))
    return user_lines(train, values, positives_only).to_pylist()


def texts(df: DataFrame) -> list[str]:
    return [r.value for r in df.collect()]


@pytest.mark.parametrize("values", [False, True])
def test_arrow_lines_are_the_spark_text(spark: Any, values: bool) -> None:
    df, table = interactions(spark)
    got_in = train_lines(table, values, positives_only=False)
    got_out = train_lines(table, values, positives_only=True)
    want_in, want_out = (texts(d) for d in reference_lines(df, DsstneTarget.POSITIVE, values))
    assert sorted(got_in) == sorted(want_in)
    assert sorted(got_out) == sorted(want_out)
    assert [line.split("\t")[0] for line in got_in] == [line.split("\t")[0] for line in got_out]
    train_users = df.where(F.col("split") == "train").select("user_id").distinct().count()
    assert len(got_in) == len(set(got_in)) == train_users < 54  # one line per train user, none for the rest
    assert any(line.endswith("\t") for line in got_out)  # train users without a positive keep a line
    if values:
        assert any(",1.0E20" in line for line in got_in)  # Spark's own text (outside `JAVA_SHORTEST`)
        assert any(",1.2345678E7" in line for line in got_in)  # formatted on the Arrow side


def test_order_does_not_depend_on_the_row_order(spark: Any) -> None:
    _, table = interactions(spark)
    shuffled = table.take(pa.array(random.Random(1).sample(range(table.num_rows), table.num_rows)))
    assert train_lines(shuffled, True, False) == train_lines(table, True, False)
    names = [line.split("\t")[0] for line in train_lines(table, False, False)]
    users = [int(name.removeprefix("user+")) for name in names if name.startswith("user+")]
    assert users == sorted(users)  # users by index ("user n" has a larger index than "user n-1")


def test_java_double_is_spark_cast_in_its_range(spark: Any) -> None:
    draw = random.Random(3)
    listed = [4.0, 3.5, 0.1, 1e-05, 12345678.0, 0.001, 0.0009999, 9999999.0, 1e7, -2.5, 0.0, -0.0, 1e15]
    listed += [JAVA_SHORTEST[0], 2.0**53 - 1, 0.10000000149011612, 123456789012345.67]
    spread = [draw.uniform(1, 10) * 10.0 ** draw.randint(-307, 15) for _ in range(3000)]
    short = [round(draw.uniform(-100, 100), draw.randint(0, 4)) for _ in range(3000)]
    values = listed + spread + short
    cast = spark.createDataFrame([(v,) for v in values], "v double").select(F.col("v").cast("string"))
    assert [java_double(v) for v in values] == [r[0] for r in cast.collect()]
