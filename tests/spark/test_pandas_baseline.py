"""The pandas baseline of `benchmarks/preprocess_scale.py` does the Spark run's work: on the bundled sample
and on a small input full of edge cases, both give the same counts and the same outputs (maps, split,
labels, negatives, FM records, DSSTNE lines). Without this, the benchmark's Spark/pandas ratio would
compare different jobs."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

from glue.pipeline import run_preprocess
from glue.readers import read_csvs
from glue.settings import DsstneTarget, PreprocessSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import preprocess_pandas  # benchmarks/ is a folder of scripts, not a package
from _preprocess_compare import compare_runs

TRANSACTIONS_A = """userId,movieId,Rating,timestamp,event_type
u1,i1,4.5,1000,
u1,i1,4.5,1000,
u1,i1,2.0,1000,
u1,i2,,2000,view
u1,i3,,2001,Click
u1, i4 ,3,2002-01-01T00:00:00Z,
 u2 ,"a,b:c",5,1500,
u2,i1,1,1600,purchase
u2,i1,,1700,click
u2,x y~z,4,1800,
u2,i9,4,not a time,
,i1,4,1000,
u3,i1,5,1000,
u3,i2,NaN,1001,
u4,i2,4,1000,
u4,i3,4,1000,
u4,i4,4,1000,
u4,i5,4,1000,
u4,i6,2,1000,
u5,i2,4,1000000000.7,
u5,i5,4,-5,
u5,i6,4,4102444801,
u5,i7,5,900,
u5,i3,5,901,
"""
TRANSACTIONS_B = """user_id,item_id,timestamp,rating
u1,i1,1000,5.0
u6,i1,10,4
u6,i2,20,4
u6,i3,30,4
u6,i4,40,4
u6,i5,50,4
u6,i6,60,4
u6,i7,70,4
"""
CATALOG_A = """movieId,title,genres,year
i1,"One, the",Drama|Comedy,1999
i2,Two,Drama| Drama |(no genres listed),
i3,"Three \"\"quoted\"\"",,2001
i1,One again,Drama|Horror,2000
i8,Eight,Western,
"""
CATALOG_B = 'item_id,title,categories\ni5,Five,Sci-Fi\ni6,"Six\nlines",Noir|Sci-Fi\n'


def _both(
    spark: Any, tmp_path: Path, catalog: list[Path], transactions: list[Path], settings: PreprocessSettings
) -> dict[str, Any]:
    """Run Spark and the baseline on the same files; compare everything."""
    spark_out, pandas_out = tmp_path / "spark", tmp_path / "pandas"
    inputs = read_csvs(spark, [str(p) for p in catalog], [str(p) for p in transactions])
    run_preprocess(spark, inputs, str(spark_out), "r", settings, previous="none")
    preprocess_pandas.run(catalog, transactions, pandas_out, "r", settings)
    return compare_runs(spark_out / "runs" / "r", pandas_out / "runs" / "r", contents=True)


def test_the_baseline_matches_the_spark_run_on_the_sample(spark, sample_dir, tmp_path) -> None:
    report = _both(
        spark, tmp_path, [sample_dir / "movies.csv"], [sample_dir / "ratings.csv"], PreprocessSettings()
    )
    assert report["counts_differ"] == {}
    counts = report["counts"]
    assert (counts["users"], counts["items"], counts["interactions"]) == (610, 9742, 100836)
    assert counts["feature_dim"] == 610 + 9742 + 19
    assert counts["train_negatives"] > 3 * counts["train_fm_positives"]  # 4 per positive, a few short
    assert report["identical"] == dict.fromkeys(report["identical"], True)


def test_the_baseline_matches_the_spark_run_on_edge_cases(spark, tmp_path) -> None:
    """Duplicates, repeated pairs, missing and unparsable values, ISO times, event types without ratings,
    ids needing DSSTNE escapes, items without a catalog row, a catalog item listed twice, extra columns;
    with the non-default settings (positive-only DSSTNE target with ratings, 2 negatives per positive)."""
    settings = PreprocessSettings(
        dsstne_target=DsstneTarget.POSITIVE, dsstne_values=True, negatives_per_positive=2
    )
    files = {"tx_a.csv": TRANSACTIONS_A, "tx_b.csv": TRANSACTIONS_B, "cat_a.csv": CATALOG_A}
    files["cat_b.csv"] = CATALOG_B
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    catalog = [tmp_path / "cat_a.csv", tmp_path / "cat_b.csv"]
    transactions = [tmp_path / "tx_a.csv", tmp_path / "tx_b.csv"]
    report = _both(spark, tmp_path, catalog, transactions, settings)
    assert report["counts_differ"] == {}
    counts = report["counts"]
    assert (counts["rows"], counts["incomplete"], counts["exact_duplicates"]) == (32, 4, 1)
    assert (counts["users"], counts["items"], counts["pairs"]) == (6, 10, 24)
    assert report["identical"] == dict.fromkeys(report["identical"], True)


def test_the_baseline_matches_the_spark_run_on_the_curated_ingest_layout(spark, tmp_path) -> None:
    """The production input (what the Glue job reads): the edge cases through the validator into typed
    Parquet with lineage, two ingest dates, read by `read_ingest` and by the baseline's `--ingest`."""
    from preprocess_scale import write_curated

    from glue.readers import read_ingest
    from recsys.csv_contract import Kind

    files = {"tx_a.csv": TRANSACTIONS_A, "tx_b.csv": TRANSACTIONS_B, "cat_a.csv": CATALOG_A}
    files["cat_b.csv"] = CATALOG_B
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    root = tmp_path / "curated"
    write_curated(root, [(Kind.TRANSACTIONS, tmp_path / "tx_b.csv"), (Kind.CATALOG, tmp_path / "cat_a.csv")])
    later = date(2024, 1, 2)
    write_curated(
        root, [(Kind.TRANSACTIONS, tmp_path / "tx_a.csv"), (Kind.CATALOG, tmp_path / "cat_b.csv")], later
    )
    settings = PreprocessSettings(negatives_per_positive=2)
    spark_out, pandas_out = tmp_path / "spark", tmp_path / "pandas"
    run_preprocess(spark, read_ingest(spark, str(root)), str(spark_out), "r", settings, previous="none")
    preprocess_pandas.run([], [], pandas_out, "r", settings, ingest=root)
    report = compare_runs(spark_out / "runs" / "r", pandas_out / "runs" / "r", contents=True)
    assert report["counts_differ"] == {}
    counts = report["counts"]
    assert (counts["rows"], counts["incomplete"], counts["exact_duplicates"]) == (27, 0, 1)
    assert report["identical"] == dict.fromkeys(report["identical"], True)
