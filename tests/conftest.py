"""Test tiers follow the tree: a test under tests/<tier>/ gets the marker <tier> (DESIGN.md §7).

`pytest -m unit` runs the fast tier; `gpu` tests skip cleanly where CUDA is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "infra", "spark", "e2e", "gpu")
TESTS_ROOT = Path(__file__).parent


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
