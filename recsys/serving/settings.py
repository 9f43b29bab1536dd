"""Serving settings: parsed once from the Lambda's environment (names in `recsys.contracts`).

Local mode builds the same object from its own flags; the domain code never reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recsys import contracts


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class ServingSettings:
    serving_table: str
    items_table: str = ""  # empty: answers carry no titles or categories
    recent_events_table: str = ""  # empty: no seen-item filtering and no fold-in
    # The live pointer is re-read after this many seconds: a publish or rollback reaches every warm
    # container within this time. Versions themselves never change, so their data is cached longer.
    cache_seconds: float = 10.0
    # Function URLs pass the path percent-encoded; API Gateway HTTP APIs pass it decoded.
    path_percent_encoded: bool = True
    # Attempts per DynamoDB call (botocore standard retry mode: throttling and 5xx, backoff with jitter).
    # Few on purpose: a request that stays throttled gets 503 + Retry-After instead of a timeout.
    dynamodb_max_attempts: int = 3
    recent_events_limit: int = 100  # newest events read per request (seen filter and fold-in)
    realtime_weight: float = 0.5  # weight of the fold-in score in the blend; 1 - weight: the precomputed one
    metadata_cache_size: int = 50_000  # item titles and categories kept per container
    metadata_cache_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.serving_table:
            raise SettingsError(f"environment variable {contracts.SERVING_TABLE_ENV} is not set")
        if self.cache_seconds < 0 or self.metadata_cache_seconds < 0:
            raise SettingsError("cache durations must not be negative")
        if self.dynamodb_max_attempts < 1 or self.recent_events_limit < 1 or self.metadata_cache_size < 0:
            raise SettingsError("dynamodb_max_attempts and recent_events_limit must be positive")
        if not 0.0 <= self.realtime_weight <= 1.0:
            raise SettingsError("realtime_weight must be between 0 and 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServingSettings:
        """Settings from environment variables; raises SettingsError naming the variable at fault."""
        api = env.get(contracts.SERVING_API_ENV, "").strip() or contracts.SERVING_API_FUNCTION_URL
        if api not in (contracts.SERVING_API_FUNCTION_URL, contracts.SERVING_API_HTTP_API):
            raise SettingsError(
                f"{contracts.SERVING_API_ENV}={api!r}: expected {contracts.SERVING_API_FUNCTION_URL} or "
                f"{contracts.SERVING_API_HTTP_API}"
            )
        return cls(
            serving_table=env.get(contracts.SERVING_TABLE_ENV, "").strip(),
            items_table=env.get(contracts.ITEMS_TABLE_ENV, "").strip(),
            recent_events_table=env.get(contracts.RECENT_EVENTS_TABLE_ENV, "").strip(),
            cache_seconds=_seconds(env, contracts.SERVING_CACHE_SECONDS_ENV, 10.0),
            path_percent_encoded=api == contracts.SERVING_API_FUNCTION_URL,
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise SettingsError(f"{name}={raw!r} must be a number of seconds >= 0")
    return value
