"""`glue.spark_hash` is Spark SQL's `xxhash64` bit for bit (ints, longs, UTF-8 strings of every length class,
chained columns), and the executors' numpy draws (`glue.sampling.candidate_positions`) are exactly the
positions Spark's own formulation (`glue.sampling.draw_positions`) gives: the FM negatives depend on it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyspark.sql.functions as F

from glue import spark_hash as sh
from glue.sampling import candidate_positions, draw_positions

ALPHABET = ["a", "Z", "7", " ", "é", "ß", "€", "中", "😀"]  # 1- to 4-byte UTF-8


def _strings(rng: np.random.Generator) -> list[str]:
    """ASCII strings of every byte length 0 … 70, and unicode strings of mixed widths."""
    ascii_ = ["".join(rng.choice(list("abcXYZ019 _"), size=n)) for n in range(71)]
    mixed = ["".join(rng.choice(ALPHABET, size=n)) for n in range(0, 40, 3)]
    return ascii_ + mixed


def test_numpy_hash_equals_spark_xxhash64(spark) -> None:
    rng = np.random.default_rng(3)
    strings = _strings(rng)
    n = len(strings)
    ints = rng.integers(-(2**31), 2**31, size=n, dtype=np.int64)
    ints[:3] = [0, -(2**31), 2**31 - 1]
    longs = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64, endpoint=True)
    longs[:3] = [0, -(2**63), 2**63 - 1]
    rows = [(int(i), int(v), s) for i, v, s in zip(ints, longs, strings, strict=True)]
    frame = spark.createDataFrame(rows, "i int, l long, s string")
    got = frame.select(
        F.xxhash64("i").alias("i"),
        F.xxhash64("l").alias("l"),
        F.xxhash64("s").alias("s"),
        F.xxhash64("i", "s", "l", "i").alias("chained"),
        F.xxhash64(F.lit(7), F.lit("train"), "l").alias("prefix"),
    ).collect()
    text = pa.array(strings, pa.string())
    chained = sh.hash_int(ints, sh.hash_long(longs, sh.hash_strings(text, sh.hash_int(ints))))
    prefix = sh.hash_long(longs, sh.hash_strings(pa.array(["train"]), sh.hash_int([7])))
    expected = {
        "i": sh.hash_int(ints),
        "l": sh.hash_long(longs),
        "s": sh.hash_strings(text),
        "chained": chained,
        "prefix": prefix,
    }
    for name, hashes in expected.items():
        assert [r[name] for r in got] == sh.signed(hashes).tolist(), name


def test_numpy_draws_equal_spark_draw_positions(spark) -> None:
    rng = np.random.default_rng(5)
    n, draws = 300, 12
    users = rng.integers(0, 10**6, size=n, dtype=np.int64)
    items = rng.integers(0, 10**5, size=n, dtype=np.int64)
    rows = [(int(u), int(i)) for u, i in zip(users, items, strict=True)]
    frame = spark.createDataFrame(rows, "user_idx long, item_idx long").coalesce(1)
    for seed, salt, total in ((42, "train", 2_836_550_340), (2**40 + 3, "test", 97), (-5, "spät", 2**62)):
        spark_draws = frame.select(draw_positions(seed, F.lit(salt), total, draws).alias("d")).collect()
        ours = candidate_positions(seed, salt, users, items, total, draws)
        assert ours.shape == (n, draws)
        assert [r["d"] for r in spark_draws] == ours.tolist(), (seed, salt)
