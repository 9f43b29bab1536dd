"""Ingest settings: parsed once from the Lambda's environment (names in `recsys.contracts`), then plain
values.

Local mode builds the same object from its own flags; the domain code never reads the environment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from recsys import contracts

MIB = 1 << 20
MIN_PART_BYTES = 8 * MIB  # S3 allows 5 MiB; 8 MiB parts halve the request count for a few MiB of memory
MAX_PARTS = 10_000  # S3's limit per multipart upload: 8 MiB parts cap one output at 78 GiB


class Policy(StrEnum):
    """What happens to the good rows of a file that also has bad ones."""

    KEEP_GOOD_ROWS = contracts.INGEST_POLICY_KEEP_GOOD_ROWS  # good rows curated, bad ones quarantined
    REJECT_FILE = contracts.INGEST_POLICY_REJECT_FILE  # the whole file quarantined, nothing curated


DEFAULT_RUN_LEASE_S = 24 * 3600.0  # a run holding the lock longer than this is taken as crashed


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class IngestSettings:
    ingest_bucket: str
    curated_bucket: str
    manifest_table: str
    idempotency_table: str = ""
    policy: Policy = Policy.KEEP_GOOD_ROWS
    # Stop streaming (and hand the file off) when fewer seconds than this are left: enough to abort the
    # uploads, write the manifest and let the batch report its result.
    safety_margin_s: float = 60.0
    idempotency_expiry_s: int = 7 * 24 * 3600  # longer than any redelivery by S3 or SQS
    part_bytes: int = MIN_PART_BYTES
    row_group_rows: int = 256 * 1024  # rows per Parquet row group (bounded memory, Spark-friendly size)
    max_report_errors: int = 10_000  # errors listed in <key>.errors.json; the rest are counted
    s3_max_attempts: int = 8  # botocore's standard retry mode: throttling and 5xx, exponential backoff
    # Optional parts: "" turns each off. Catalog items for serving; the training trigger (the state table
    # and the state machine, both needed to start runs).
    items_table: str = ""
    pipeline_state_table: str = ""
    state_machine_arn: str = ""
    run_lease_s: float = DEFAULT_RUN_LEASE_S

    def __post_init__(self) -> None:
        if self.part_bytes < MIN_PART_BYTES:
            raise SettingsError(f"part_bytes must be at least {MIN_PART_BYTES:,}")
        if self.row_group_rows < 1 or self.max_report_errors < 0 or self.s3_max_attempts < 1:
            raise SettingsError("row_group_rows, s3_max_attempts must be positive; max_report_errors >= 0")
        if self.safety_margin_s < 0 or self.idempotency_expiry_s < 1:
            raise SettingsError("safety_margin_s must be >= 0 and idempotency_expiry_s >= 1")
        if self.run_lease_s <= 0:
            raise SettingsError(f"run_lease_s ({contracts.PIPELINE_RUN_LEASE_ENV}) must be positive")
        if self.state_machine_arn and not self.pipeline_state_table:
            raise SettingsError(
                f"{contracts.STATE_MACHINE_ARN_ENV} is set but {contracts.PIPELINE_STATE_TABLE_ENV} is not: "
                "runs are started only through the pipeline state table"
            )

    @property
    def starts_training(self) -> bool:
        """Whether accepted transactions uploads request pipeline runs (a state machine is configured)."""
        return bool(self.state_machine_arn)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        """Settings from environment variables; raises SettingsError naming the variable at fault."""
        return cls(
            ingest_bucket=_required(env, contracts.INGEST_BUCKET_ENV),
            curated_bucket=_required(env, contracts.CURATED_BUCKET_ENV),
            manifest_table=_required(env, contracts.INGEST_MANIFEST_TABLE_ENV),
            idempotency_table=_required(env, contracts.INGEST_IDEMPOTENCY_TABLE_ENV),
            policy=_policy(env),
            safety_margin_s=_number(env, contracts.INGEST_SAFETY_MARGIN_ENV, 60.0),
            idempotency_expiry_s=int(_number(env, contracts.INGEST_IDEMPOTENCY_EXPIRY_ENV, 7 * 24 * 3600)),
            items_table=env.get(contracts.ITEMS_TABLE_ENV, "").strip(),
            pipeline_state_table=env.get(contracts.PIPELINE_STATE_TABLE_ENV, "").strip(),
            state_machine_arn=env.get(contracts.STATE_MACHINE_ARN_ENV, "").strip(),
            run_lease_s=lease_from_env(env),
        )


def lease_from_env(env: Mapping[str, str]) -> float:
    """The pipeline run lease (PIPELINE_RUN_LEASE_ENV, DEFAULT_RUN_LEASE_S when unset), for every place that
    builds the trigger (the ingest and pipeline Lambdas, `recsys pipeline`); SettingsError naming the
    variable when it is not a positive number."""
    raw = env.get(contracts.PIPELINE_RUN_LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_RUN_LEASE_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 0:
        name = contracts.PIPELINE_RUN_LEASE_ENV
        raise SettingsError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _policy(env: Mapping[str, str]) -> Policy:
    raw = env.get(contracts.INGEST_POLICY_ENV, "").strip() or Policy.KEEP_GOOD_ROWS.value
    try:
        return Policy(raw)
    except ValueError:
        allowed = ", ".join(p.value for p in Policy)
        raise SettingsError(f"{contracts.INGEST_POLICY_ENV}={raw!r}: expected one of {allowed}") from None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    return value
