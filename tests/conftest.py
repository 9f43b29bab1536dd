"""Test tiers follow the tree: a test under tests/<tier>/ gets the marker <tier> (DESIGN.md §7).

`pytest -m unit` runs the fast tier; `gpu` tests skip cleanly where CUDA is absent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TIERS = ("unit", "infra", "spark", "e2e", "gpu")
TESTS_ROOT = Path(__file__).parent
SPARK_TIERS = ("spark", "e2e")
# pyspark 3.5 checks the pandas and pyarrow versions with distutils' LooseVersion on every Arrow call.
PYSPARK_NOISE = "ignore:distutils Version classes are deprecated:DeprecationWarning"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda: bool | None = None
    for item in items:
        tier = Path(str(item.fspath)).relative_to(TESTS_ROOT).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        if tier in SPARK_TIERS:
            item.add_marker(pytest.mark.filterwarnings(PYSPARK_NOISE))
        if item.get_closest_marker("gpu") is not None:
            if cuda is None:
                cuda = _cuda_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return TESTS_ROOT.parent


@pytest.fixture(scope="session")
def sample_dir(repo_root: Path) -> Path:
    """The bundled MovieLens sample (ml-latest-small, with its licence)."""
    return repo_root / "data" / "sample" / "ml-latest-small"


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local SparkSession for the spark and e2e tiers (starting one costs seconds; a test should not;
    the demo reuses an active session instead of starting its own)."""
    # Python workers are separate processes: they must run this interpreter and find this checkout.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    repo = str(TESTS_ROOT.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("recsys-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
