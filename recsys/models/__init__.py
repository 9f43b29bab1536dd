"""Models by name, so the CLI, benchmarks and the pipeline pick them with a string."""

from __future__ import annotations

from collections.abc import Callable

from recsys.models.base import Recommender
from recsys.models.popularity import Popularity
from recsys.models.random_model import RandomModel

MODELS: dict[str, Callable[[int], Recommender]] = {
    Popularity.name: Popularity,
    RandomModel.name: RandomModel,
}


def make_model(name: str, seed: int = 42) -> Recommender:
    """A fresh, unfitted model; ValueError naming the known models when `name` is not one."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
    return factory(seed)


__all__ = ["MODELS", "Popularity", "RandomModel", "Recommender", "make_model"]
