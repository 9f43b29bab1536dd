"""StageConfig: cdk.json context → typed config, with mistakes named by their context key."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_cdk import App

from stacks.app_factory import cdk_json_context, stage_config
from stacks.config import ConfigError, StageConfig

DEV = {"removal_policy": "destroy", "auto_delete_objects": True, "quarantine_expiry_days": 14}


def parse(raw: Any, stage: Any = "dev") -> StageConfig:
    return StageConfig.from_context(stage, {"dev": raw})


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_stage_in_cdk_json_parses(stage: str) -> None:
    # GIVEN the committed cdk.json WHEN a stage is parsed THEN it is that stage's typed config
    config = StageConfig.from_context(stage, cdk_json_context()["stages"])
    assert config.name == stage


def test_values_are_taken_and_omitted_keys_get_safe_defaults() -> None:
    config = parse(DEV)
    assert config.removal_policy == "destroy"
    assert config.auto_delete_objects is True
    assert config.quarantine_expiry_days == 14
    assert config.noncurrent_version_expiry_days == StageConfig(name="x").noncurrent_version_expiry_days
    assert parse({}).removal_policy == "retain"


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse(DEV).quarantine_expiry_days = 1  # type: ignore[misc]


def test_unknown_key_is_rejected_by_name() -> None:
    with pytest.raises(
        ConfigError, match=r"stages\.dev\.quarantine_days': unknown key \(allowed: .*quarantine_expiry_days"
    ):
        parse({"quarantine_days": 3})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("quarantine_expiry_days", "30", "a whole number"),
        ("quarantine_expiry_days", 30.0, "a whole number"),
        ("quarantine_expiry_days", True, "a whole number"),
        ("auto_delete_objects", 1, "true/false"),
        ("auto_delete_objects", "true", "true/false"),
        ("removal_policy", None, "a string"),
    ],
)
def test_wrong_type_is_rejected_by_name(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"'stages\.dev\.{key}': expected {expected}, got"):
        parse({key: value})


def test_bad_values_are_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match=r"stages\.dev\.removal_policy': expected one of"):
        parse({"removal_policy": "snapshot"})
    with pytest.raises(
        ConfigError, match=r"stages\.dev\.access_log_retention_days': expected a whole number >= 1"
    ):
        parse({"access_log_retention_days": 0})
    with pytest.raises(ConfigError, match=r"stages\.dev\.auto_delete_objects': true needs removal_policy"):
        parse({"removal_policy": "retain", "auto_delete_objects": True})


def test_unknown_or_malformed_stage_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown stage 'qa' \(stages in cdk.json: dev\)"):
        parse(DEV, stage="qa")
    with pytest.raises(ConfigError, match=r"context 'stage': expected a lower-case name"):
        parse(DEV, stage="Prod_1")
    with pytest.raises(ConfigError, match=r"context 'stages': expected an object"):
        StageConfig.from_context("dev", '{"dev": {}}')
    with pytest.raises(ConfigError, match=r"context 'stages\.dev': expected an object, got list"):
        parse([])


def test_stage_comes_from_context_and_defaults_to_dev() -> None:
    stages = cdk_json_context()["stages"]
    assert stage_config(App(context={"stages": stages})).name == "dev"
    assert stage_config(App(context={"stages": stages, "stage": "prod"})).name == "prod"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"preprocessing_worker_type": "G.025X"}, r"preprocessing_worker_type': expected one of"),
        ({"preprocessing_worker_type": "g.1x"}, r"preprocessing_worker_type': expected one of"),
        ({"preprocessing_worker_count": 1}, r"preprocessing_worker_count': expected a whole number >= 2"),
        ({"preprocessing_timeout_minutes": 0}, r"preprocessing_timeout_minutes': expected 1 to 10080"),
        ({"preprocessing_timeout_minutes": 10081}, r"preprocessing_timeout_minutes': expected 1 to 10080"),
        ({"preprocessing_worker_count": "2"}, r"preprocessing_worker_count': expected a whole number, got"),
    ],
)
def test_bad_preprocessing_settings_are_rejected_by_name(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"stages\.dev\.{message}"):
        parse(raw)


def test_preprocessing_defaults_are_a_small_glue_job() -> None:
    config = parse({})
    assert (config.preprocessing_worker_type, config.preprocessing_worker_count) == ("G.1X", 2)
    assert config.preprocessing_timeout_minutes == 120
