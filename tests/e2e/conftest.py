"""The e2e tier: `recsys demo` in-process on a reduced MovieLens sample, on the tests' one local
SparkSession (`spark` in tests/conftest.py; the demo reuses an active session instead of starting its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "ml-latest-small"


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reduced sample: batch A (users 1-40), batch B (users 41-55, new data for a follow-up run), and
    the catalog rows of the movies they rated (the bundled MovieLens files, cut down)."""
    folder = tmp_path_factory.mktemp("sample")
    ratings = pd.read_csv(SAMPLE / "ratings.csv")
    users = sorted(ratings["userId"].unique())
    batches = {"a": users[:40], "b": users[40:55]}
    paths = {}
    for name, chosen in batches.items():
        part = ratings[ratings["userId"].isin(chosen)]
        paths[name] = folder / f"ratings-{name}.csv"
        part.to_csv(paths[name], index=False)
    movies = pd.read_csv(SAMPLE / "movies.csv")
    used = ratings[ratings["userId"].isin(users[:55])]["movieId"].unique()
    paths["catalog"] = folder / "movies.csv"
    movies[movies["movieId"].isin(used)].to_csv(paths["catalog"], index=False)
    return paths


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """The demo points os.environ at its embedded AWS (as a Lambda's environment); put it back after."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
