"""The preprocessing knobs, parsed once (from Glue arguments or CLI flags) and passed down as plain values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_POSITIVE_EVENTS = ("purchase", "view")
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class DsstneTarget(StrEnum):
    """What the DSSTNE output dataset (the autoencoder's target) holds for each user."""

    ALL = "all"  # every train interaction, as the input (DSSTNE's MovieLens sample)
    POSITIVE = "positive"  # only the train interactions labelled positive


class SettingsError(ValueError):
    """A setting out of range; the message names it."""


@dataclass(frozen=True)
class PreprocessSettings:
    """Split, label and sampling rules of one run. Every field lands in manifest.json."""

    test_ratio: float = 0.2  # newest share of each user's interactions held out
    min_history: int = 2  # users with fewer interactions stay wholly in train
    positive_threshold: float = 4.0  # rating >= this is a positive (5-point scale)
    positive_events: tuple[str, ...] = field(default=DEFAULT_POSITIVE_EVENTS)
    negatives_per_positive: int = 4
    negative_exponent: float = 0.75  # negatives drawn with probability ∝ train popularity ** exponent
    seed: int = 42
    categories: bool = True  # item-category one-hot block in the FM features
    dsstne_target: DsstneTarget = DsstneTarget.ALL
    dsstne_values: bool = False  # write `item,rating` (DSSTNE analog) where a rating exists
    max_file_bytes: int = 100 * 2**20  # FM channel files (SageMaker ShardedByS3Key)

    def __post_init__(self) -> None:
        if not 0.0 < self.test_ratio < 1.0:
            raise SettingsError(f"test_ratio must be strictly between 0 and 1, got {self.test_ratio}")
        if self.min_history < 2:
            raise SettingsError(f"min_history must be >= 2 (one train, one test), got {self.min_history}")
        if self.negatives_per_positive < 0:
            raise SettingsError(f"negatives_per_positive must be >= 0, got {self.negatives_per_positive}")
        if not 0.0 <= self.negative_exponent <= 2.0:
            raise SettingsError(f"negative_exponent must be in [0, 2], got {self.negative_exponent}")
        if self.max_file_bytes < 1024:
            raise SettingsError(f"max_file_bytes must be >= 1024, got {self.max_file_bytes}")
        events = tuple(e.strip().lower() for e in self.positive_events if e.strip())
        object.__setattr__(self, "positive_events", events)
        object.__setattr__(self, "dsstne_target", DsstneTarget(self.dsstne_target))


def check_run_id(run_id: str) -> str:
    """Run ids become path segments: letters, digits, `.`, `_`, `-`, at most 128, not starting with a dot."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise SettingsError(
            f"run id {run_id!r} must be 1-128 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return run_id
