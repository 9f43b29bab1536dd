"""Publish settings: table and bucket names (from the environment or CLI flags) and the loading knobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recsys import contracts

HOUR = 3600


class PublishSettingsError(ValueError):
    """A setting is missing or malformed; the message names the flag or environment variable."""


@dataclass(frozen=True)
class PublishSettings:
    serving_table: str
    artifacts_bucket: str = ""  # needed when the model has item vectors (they are copied there)
    concurrency: int = 8  # BatchWriteItem requests in flight
    max_batch_attempts: int = 10  # rounds per batch while DynamoDB returns unprocessed items
    backoff_base_s: float = 0.05  # full-jitter backoff: uniform(0, min(cap, base * 2**attempt))
    backoff_cap_s: float = 5.0
    # Versions neither live nor previous get expires_at = now + grace: until then `recsys rollback --to`
    # cannot pick them (they are retired) but their data is still there for inspection.
    grace_s: float = 72 * HOUR
    # A version still "loading" after this long is an interrupted publish: retired like the others.
    stale_loading_s: float = 24 * HOUR
    # The popularity list is stored longer than MAX_TOP_K so that k items remain after removing a user's
    # recently consumed items (the API reads at most 100 recent events).
    popular_size: int = 2 * contracts.MAX_TOP_K

    def __post_init__(self) -> None:
        if not self.serving_table:
            raise PublishSettingsError(f"no serving table: set {contracts.SERVING_TABLE_ENV} or pass --table")
        if self.concurrency < 1 or self.max_batch_attempts < 1 or self.popular_size < 1:
            raise PublishSettingsError("concurrency, max_batch_attempts and popular_size must be positive")
        if min(self.backoff_base_s, self.backoff_cap_s, self.grace_s, self.stale_loading_s) < 0:
            raise PublishSettingsError("durations must not be negative")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> PublishSettings:
        """Names from the environment (contracts names); keyword arguments override (CLI flags)."""
        values: dict[str, object] = {
            "serving_table": env.get(contracts.SERVING_TABLE_ENV, "").strip(),
            "artifacts_bucket": env.get(contracts.ARTIFACTS_BUCKET_ENV, "").strip(),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
