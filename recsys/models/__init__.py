"""Models by name, so the CLI, benchmarks and the pipeline pick them with a string.

The baselines live here; learned models live in runtime packages (`training/…`) and register under
the entry-point group `recsys.models` (pyproject.toml), loaded only when asked for, so this core never
imports them (DESIGN.md §3) and `recsys evaluate --model popularity` never pays for torch.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from recsys.models.base import Recommender
from recsys.models.popularity import Popularity
from recsys.models.random_model import RandomModel

MODELS: dict[str, Callable[[int], Recommender]] = {
    Popularity.name: Popularity,
    RandomModel.name: RandomModel,
}


PLUGIN_GROUP = "recsys.models"


def model_names() -> list[str]:
    """Every model `make_model` knows: the baselines and the registered plugins."""
    return sorted(set(MODELS) | {plugin.name for plugin in entry_points(group=PLUGIN_GROUP)})


def make_model(name: str, seed: int = 42) -> Recommender:
    """A fresh, unfitted model; ValueError naming the known models when `name` is not one."""
    if name in MODELS:
        return MODELS[name](seed)
    for plugin in entry_points(group=PLUGIN_GROUP):
        if plugin.name == name:
            factory = cast(Callable[[int], Recommender], plugin.load())
            return factory(seed)
    raise ValueError(f"unknown model {name!r}; known models: {', '.join(model_names())}")


__all__ = ["MODELS", "Popularity", "RandomModel", "Recommender", "make_model", "model_names"]
