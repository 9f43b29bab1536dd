"""Settings from the Lambda's environment: required names, defaults, and clear errors."""

from __future__ import annotations

import pytest

from recsys import contracts
from recsys.ingest.settings import MIB, IngestSettings, Policy, SettingsError

REQUIRED = {
    contracts.INGEST_BUCKET_ENV: "ingest",
    contracts.CURATED_BUCKET_ENV: "curated",
    contracts.INGEST_MANIFEST_TABLE_ENV: "manifest",
    contracts.INGEST_IDEMPOTENCY_TABLE_ENV: "idempotency",
}


def test_defaults() -> None:
    settings = IngestSettings.from_env(REQUIRED)
    assert (settings.ingest_bucket, settings.manifest_table, settings.idempotency_table) == (
        "ingest",
        "manifest",
        "idempotency",
    )
    assert settings.policy is Policy.KEEP_GOOD_ROWS
    assert settings.safety_margin_s == 60
    assert settings.part_bytes == 8 * MIB


def test_optional_settings() -> None:
    env = REQUIRED | {
        contracts.INGEST_POLICY_ENV: "reject-file",
        contracts.INGEST_SAFETY_MARGIN_ENV: "90.5",
        contracts.INGEST_IDEMPOTENCY_EXPIRY_ENV: "3600",
    }
    settings = IngestSettings.from_env(env)
    assert (settings.policy, settings.safety_margin_s, settings.idempotency_expiry_s) == (
        Policy.REJECT_FILE,
        90.5,
        3600,
    )


@pytest.mark.parametrize("missing", list(REQUIRED))
def test_a_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        IngestSettings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (contracts.INGEST_POLICY_ENV, "keep-some"),
        (contracts.INGEST_SAFETY_MARGIN_ENV, "soon"),
        (contracts.INGEST_SAFETY_MARGIN_ENV, "-1"),
        (contracts.INGEST_IDEMPOTENCY_EXPIRY_ENV, "x"),
    ],
)
def test_a_malformed_value_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        IngestSettings.from_env(REQUIRED | {name: value})


def test_parts_smaller_than_8_mib_are_refused() -> None:
    with pytest.raises(SettingsError, match="part_bytes"):
        IngestSettings("i", "c", "m", part_bytes=5 * MIB)


def test_items_table_and_training_are_off_unless_configured() -> None:
    settings = IngestSettings.from_env(REQUIRED)
    assert (settings.items_table, settings.pipeline_state_table, settings.state_machine_arn) == ("", "", "")
    assert not settings.starts_training
    assert settings.run_lease_s == 24 * 3600


def test_items_table_and_training_settings() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:recsys-pipeline"
    env = REQUIRED | {
        contracts.ITEMS_TABLE_ENV: "items",
        contracts.PIPELINE_STATE_TABLE_ENV: "state",
        contracts.STATE_MACHINE_ARN_ENV: arn,
        contracts.PIPELINE_RUN_LEASE_ENV: "7200",
    }
    settings = IngestSettings.from_env(env)
    assert (settings.items_table, settings.pipeline_state_table, settings.state_machine_arn) == (
        "items",
        "state",
        arn,
    )
    assert settings.starts_training
    assert settings.run_lease_s == 7200


def test_a_state_machine_without_a_state_table_is_refused() -> None:
    env = REQUIRED | {contracts.STATE_MACHINE_ARN_ENV: "arn:aws:states:us-east-1:1:stateMachine:x"}
    with pytest.raises(SettingsError, match=contracts.PIPELINE_STATE_TABLE_ENV):
        IngestSettings.from_env(env)


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_bad_lease_is_named(value: str) -> None:
    with pytest.raises(SettingsError, match=contracts.PIPELINE_RUN_LEASE_ENV):
        IngestSettings.from_env(REQUIRED | {contracts.PIPELINE_RUN_LEASE_ENV: value})
