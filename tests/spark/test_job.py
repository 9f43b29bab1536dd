"""The Glue entry script, run locally with `awsglue` faked at the boundary (it is not on PyPI).

The fakes do what the real calls do for this script: `getResolvedOptions` picks `--NAME value` pairs and
fails on a missing name, `GlueContext` hands out the SparkSession, `Job` records init and commit.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue.arguments import JOB_NAME, parse_job_arguments, present_options
from glue.settings import SettingsError
from recsys import contracts

TRANSACTIONS = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("timestamp", pa.int64()),
        ("rating", pa.float32()),
        ("event_type", pa.string()),
        ("source_key", pa.string()),
        ("source_version", pa.string()),
        ("line", pa.int64()),
    ]
)
CATALOG = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("categories", pa.string()),
        ("attributes", pa.string()),
        ("source_key", pa.string()),
        ("source_version", pa.string()),
        ("line", pa.int64()),
    ]
)


class FakeGlue:
    """What the script did with the Glue API."""

    def __init__(self) -> None:
        self.resolved: list[list[str]] = []
        self.init: tuple[str, dict[str, str]] | None = None
        self.committed = False

    def modules(self) -> dict[str, types.ModuleType]:
        fake = self

        def get_resolved_options(args: list[str], options: list[str]) -> dict[str, str]:
            fake.resolved.append(list(options))
            pairs: dict[str, str] = {}
            for position, arg in enumerate(args):
                if arg.startswith("--"):
                    name, eq, value = arg[2:].partition("=")
                    pairs[name] = value if eq else args[position + 1]
            missing = [o for o in options if o not in pairs]
            if missing:
                raise SystemExit(f"error: the following arguments are required: --{missing[0]}")
            return {o: pairs[o] for o in options}

        class GlueContext:
            def __init__(self, spark_context: Any) -> None:
                from pyspark.sql import SparkSession

                self.spark_session = SparkSession(spark_context)

        class Job:
            def __init__(self, context: GlueContext) -> None:
                self.context = context

            def init(self, name: str, args: dict[str, str]) -> None:
                fake.init = (name, dict(args))

            def commit(self) -> None:
                fake.committed = True

        root = types.ModuleType("awsglue")
        context = types.ModuleType("awsglue.context")
        context.GlueContext = GlueContext  # type: ignore[attr-defined]
        job = types.ModuleType("awsglue.job")
        job.Job = Job  # type: ignore[attr-defined]
        utils = types.ModuleType("awsglue.utils")
        utils.getResolvedOptions = get_resolved_options  # type: ignore[attr-defined]
        return {"awsglue": root, "awsglue.context": context, "awsglue.job": job, "awsglue.utils": utils}


@pytest.fixture
def glue_job(monkeypatch) -> tuple[Any, FakeGlue]:
    fake = FakeGlue()
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "glue.job", raising=False)
    module = importlib.import_module("glue.job")
    yield module, fake
    sys.modules.pop("glue.job", None)


def _write(path: Path, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    pq.write_table(
        pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema), path
    )


def _ingest(root: Path) -> None:
    """The curated layout: kind=<kind>/ingest_date=<date>/<name>.parquet, two days of transactions."""
    day1 = [
        (f"u{u}", f"m{(u + k) % 6}", 100 + k, float(1 + (u + k) % 5), None, "transactions/a.csv", "v1", k)
        for u in range(4)
        for k in range(5)
    ]
    day2 = [
        ("u0", "m9", 500, None, "purchase", "transactions/b.csv", "v1", 2),
        ("u9", "m1", 501, 5.0, None, "b", "v1", 3),
    ]
    _write(root / "kind=transactions/ingest_date=2024-05-01/a-v1.parquet", TRANSACTIONS, day1)
    no_event_type = pa.schema([f for f in TRANSACTIONS if f.name != "event_type"])
    _write(
        root / "kind=transactions/ingest_date=2024-05-02/b-v1.parquet",
        no_event_type,
        [r[:4] + r[5:] for r in day2[1:]],
    )
    _write(root / "kind=transactions/ingest_date=2024-05-02/c-v1.parquet", TRANSACTIONS, day2[:1])
    catalog = [
        (f"m{i}", f"Movie {i}", "Drama|Comedy" if i % 2 else "Drama", "{}", "catalog/m.csv", "v1", i + 2)
        for i in range(6)
    ]
    _write(root / "kind=catalog/ingest_date=2024-05-01/m-v1.parquet", CATALOG, catalog)


def test_main_runs_the_job_from_glue_arguments(spark, glue_job, tmp_path) -> None:
    module, fake = glue_job
    _ingest(tmp_path / "curated" / "ingest")
    argv = [
        "job.py",
        "--JOB_NAME", "preprocess",
        "--INPUT_URI", str(tmp_path / "curated" / "ingest"),
        "--OUTPUT_URI", str(tmp_path / "curated"),
        "--RUN_ID", "glue-1",
        "--NEGATIVES_PER_POSITIVE", "2",
        "--CATEGORY_FEATURES=false",
        "--TempDir", "s3://ignored/",  # Glue adds its own arguments; they are not asked for
    ]  # fmt: skip
    assert module.main(argv) == 0
    assert fake.init is not None
    assert fake.init[0] == "preprocess"
    assert fake.committed
    assert fake.resolved[0][-2:] == [contracts.GLUE_ARG_NEGATIVES, contracts.GLUE_ARG_CATEGORY_FEATURES]
    manifest = json.loads(
        (tmp_path / "curated" / "runs" / "glue-1" / contracts.RUN_MANIFEST_FILE).read_text()
    )
    assert manifest["settings"]["negatives_per_positive"] == 2
    assert manifest["blocks"]["categories"]["size"] == 0
    assert manifest["counts"]["users"] == 5
    assert manifest["counts"]["unknown_items_with_interactions"] == 1  # m9 has no catalog row
    assert len(manifest["source_files"]) == 4
    assert manifest["counts"]["catalog_items"] == 6


def test_main_fails_without_a_required_argument(glue_job) -> None:
    module, _ = glue_job
    with pytest.raises(SystemExit, match="--RUN_ID"):
        module.main(["job.py", "--JOB_NAME", "j", "--INPUT_URI", "s3://a/", "--OUTPUT_URI", "s3://b/"])


def _resolved(**extra: str) -> dict[str, str]:
    base = {
        JOB_NAME: "j",
        contracts.GLUE_ARG_INPUT_URI: "s3://bucket/curated/ingest/",
        contracts.GLUE_ARG_OUTPUT_URI: "s3://bucket/curated/",
        contracts.GLUE_ARG_RUN_ID: "r-1",
    }
    return {**base, **extra}


def test_arguments_parse_into_settings() -> None:
    parsed = parse_job_arguments(
        _resolved(TEST_RATIO="0.25", POSITIVE_THRESHOLD="3.5", SEED="7", PREVIOUS_RUN="none")
    )
    assert (parsed.settings.test_ratio, parsed.settings.positive_threshold, parsed.settings.seed) == (
        0.25,
        3.5,
        7,
    )
    assert parsed.previous == "none"
    assert parse_job_arguments(_resolved()).previous == "auto"
    assert present_options(["x", "--SEED", "1", "--TEST_RATIO=0.1", "--OTHER", "2"]) == ["TEST_RATIO", "SEED"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"TEST_RATIO": "lots"}, "TEST_RATIO"),
        ({"TEST_RATIO": "1.5"}, "test_ratio"),
        ({"NEGATIVES_PER_POSITIVE": "2.5"}, "integer"),
        ({"CATEGORY_FEATURES": "maybe"}, "true or false"),
        ({"RUN_ID": "../etc"}, "run id"),
        ({"OUTPUT_URI": " "}, "empty"),
    ],
)
def test_bad_arguments_are_named(extra, message) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_job_arguments(_resolved(**extra))


def test_an_ingest_prefix_without_transactions_is_an_input_error(spark, tmp_path) -> None:
    from glue.readers import InputError, read_ingest

    _write(
        tmp_path / "kind=catalog/ingest_date=2024-05-01/m.parquet",
        CATALOG,
        [("m", "M", "", "{}", "k", "v", 2)],
    )
    with pytest.raises(InputError, match="no transactions"):
        read_ingest(spark, str(tmp_path))
    (tmp_path / "kind=transactions" / "ingest_date=2024-05-01").mkdir(parents=True)  # a folder, no files
    with pytest.raises(InputError, match="no transactions"):
        read_ingest(spark, str(tmp_path))


def test_lineage_column_names_match_the_ingest_step() -> None:
    curated = pytest.importorskip("recsys.ingest.curated")
    from glue import readers

    assert (readers.SOURCE_KEY, readers.LINE, readers.ATTRIBUTES) == (
        curated.SOURCE_KEY,
        curated.LINE,
        curated.ATTRIBUTES,
    )
    for ours, kind in (
        (TRANSACTIONS, "transactions"),
        (CATALOG, "catalog"),
    ):  # the test files are like theirs
        assert [(f.name, f.type) for f in ours] == [(f.name, f.type) for f in curated.SCHEMAS[kind]]
