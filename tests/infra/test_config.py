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


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"ingest_memory_mb": 127}, r"ingest_memory_mb': expected 128 to 10240 \(MB\), got 127"),
        ({"events_memory_mb": 10241}, r"events_memory_mb': expected 128 to 10240 \(MB\), got 10241"),
        ({"ingest_timeout_seconds": 0}, r"ingest_timeout_seconds': expected 1 to 900 \(Lambda's limit\)"),
        ({"events_timeout_seconds": 901}, r"events_timeout_seconds': expected 1 to 900 \(Lambda's limit\)"),
        ({"ingest_reserved_concurrency": 1}, r"ingest_reserved_concurrency': expected a whole number >= 2"),
        ({"events_reserved_concurrency": 0}, r"events_reserved_concurrency': expected a whole number >= 1"),
        ({"lambda_log_retention_days": 31}, r"lambda_log_retention_days': expected one of CloudWatch Logs'"),
        ({"lambda_log_retention_days": 0}, r"lambda_log_retention_days': expected a whole number >= 1"),
        ({"ingest_memory_mb": "1024"}, r"ingest_memory_mb': expected a whole number, got a string"),
    ],
)
def test_bad_lambda_settings_are_rejected_by_name(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"stages\.dev\.{message}"):
        parse(raw)


def test_lambda_defaults_are_production_sized_and_within_lambdas_limits() -> None:
    config = parse({})
    assert (config.ingest_memory_mb, config.ingest_timeout_seconds) == (3584, 900)  # two full vCPUs
    assert config.ingest_reserved_concurrency >= 2
    assert config.events_reserved_concurrency >= 1
    assert config.lambda_log_retention_days == 365
    dev = StageConfig.from_context("dev", cdk_json_context()["stages"])
    assert dev.ingest_timeout_seconds < config.ingest_timeout_seconds  # dev's queue turns around faster


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"serving_api": "rest-api"}, r"serving_api': expected one of \('function-url', 'http-api'\)"),
        ({"serving_api": None}, r"serving_api': expected a string, got null"),
        ({"recommend_memory_mb": 64}, r"recommend_memory_mb': expected 128 to 10240 \(MB\), got 64"),
        ({"publish_memory_mb": 20000}, r"publish_memory_mb': expected 128 to 10240 \(MB\), got 20000"),
        (
            {"recommend_timeout_seconds": 0},
            r"recommend_timeout_seconds': expected 1 to 900 \(the function-url",
        ),
        (
            {"serving_api": "http-api", "recommend_timeout_seconds": 60},
            r"recommend_timeout_seconds': expected 1 to 30 \(the http-api front end's limit\), got 60",
        ),
        ({"publish_timeout_seconds": 901}, r"publish_timeout_seconds': expected 1 to 900 \(Lambda's limit\)"),
        (
            {"recommend_reserved_concurrency": 0},
            r"recommend_reserved_concurrency': expected a whole number >= 1",
        ),
        (
            {"recommend_reserved_concurrency": 5, "recommend_provisioned_concurrency": 6},
            r"recommend_provisioned_concurrency': expected 0 to 5 \(at most the reserved concurrency\)",
        ),
        ({"recommend_provisioned_concurrency": -1}, r"recommend_provisioned_concurrency': expected 0 to 100"),
        ({"serving_throttle_rate_limit": 0}, r"serving_throttle_rate_limit': expected a whole number >= 1"),
        (
            {"serving_throttle_burst_limit": 1.5},
            r"serving_throttle_burst_limit': expected a whole number, got",
        ),
        (
            {"publish_ephemeral_storage_mb": 511},
            r"publish_ephemeral_storage_mb': expected 512 to 10240 \(MB\)",
        ),
        ({"publish_ephemeral_storage_mb": 10241}, r"publish_ephemeral_storage_mb': expected 512 to 10240"),
    ],
)
def test_bad_serving_settings_are_rejected_by_name(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"stages\.dev\.{message}"):
        parse(raw)


def test_serving_defaults_are_a_function_url_without_provisioned_concurrency() -> None:
    config = parse({})
    assert config.serving_api == "function-url"
    assert (config.recommend_reserved_concurrency, config.recommend_provisioned_concurrency) == (100, 0)
    assert config.recommend_timeout_seconds <= 30  # fits behind an HTTP API too
    assert (config.publish_timeout_seconds, config.publish_ephemeral_storage_mb) == (900, 2048)
    stages = cdk_json_context()["stages"]
    dev, prod = (StageConfig.from_context(s, stages) for s in ("dev", "prod"))
    assert dev.recommend_provisioned_concurrency == 0 < prod.recommend_provisioned_concurrency
    assert dev.publish_ephemeral_storage_mb < prod.publish_ephemeral_storage_mb


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"pipeline_schedule": "daily"}, r"pipeline_schedule': expected \"\" or an EventBridge Scheduler"),
        ({"pipeline_schedule": "cron(0 3 * *)"}, r"pipeline_schedule': expected"),
        (
            {"pipeline_timeout_minutes": 1440},
            r"pipeline_timeout_minutes': expected 1 to 1439 \(below the run",
        ),
        ({"eval_k": 101}, r"eval_k': expected 1 to 100, got 101"),
        (
            {"gate_metric": "auc@10"},
            r"gate_metric': expected one of \('precision', 'recall', 'ndcg', 'map'\)",
        ),
        ({"gate_metric": "precision@20"}, r"gate_metric': .* followed by '@10' \(eval_k\)"),
        ({"gate_margin": 1.5}, r"gate_margin': expected 0.0 to 1.0, got 1.5"),
        ({"gate_tolerance": 0}, r"gate_tolerance': expected a decimal, got a whole number 0"),
        ({"evaluate_memory_mb": 100}, r"evaluate_memory_mb': expected 128 to 10240 \(MB\)"),
        ({"evaluate_timeout_seconds": 901}, r"evaluate_timeout_seconds': expected 1 to 900"),
        ({"evaluate_ephemeral_storage_mb": 20000}, r"evaluate_ephemeral_storage_mb': expected 512 to 10240"),
        ({"fm_topk_vcpus": 3}, r"fm_topk_vcpus': expected one of \(1, 2, 4, 8, 16\), got 3"),
        ({"fm_topk_memory_mb": 4096}, r"fm_topk_memory_mb': expected whole GiB from 8192 to 32768"),
        ({"fm_topk_memory_mb": 9000}, r"fm_topk_memory_mb': expected whole GiB"),
        ({"alarm_email": "ops"}, r"alarm_email': expected \"\" or an e-mail address, got 'ops'"),
    ],
)
def test_bad_pipeline_settings_are_rejected_by_name(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"stages\.dev\.{message}"):
        parse(raw)


def test_pipeline_defaults_and_committed_stages() -> None:
    config = parse({"eval_k": 20, "gate_metric": "ndcg@20", "pipeline_schedule": "rate(12 hours)"})
    assert (config.eval_k, config.gate_metric, config.pipeline_schedule) == (20, "ndcg@20", "rate(12 hours)")
    defaults = parse({})
    assert defaults.pipeline_schedule == ""  # runs start from uploads unless a stage asks for a schedule
    assert (defaults.gate_metric, defaults.gate_margin, defaults.gate_tolerance) == (
        "precision@10",
        0.10,
        0.02,
    )
    assert defaults.pipeline_timeout_minutes * 60 < 24 * 3600  # below the trigger's lease
    stages = cdk_json_context()["stages"]
    dev, prod = (StageConfig.from_context(s, stages) for s in ("dev", "prod"))
    assert dev.pipeline_schedule == ""
    assert prod.pipeline_schedule.startswith("cron(")
