"""Fixtures shared by the serving, publish, Lambda and local-mode tests: an embedded AWS (moto) with the
serving resources, and helpers to publish into it and to build a runtime reading it.

Each test folder's conftest imports them (`*_fixture`, registered as `aws_credentials`, `clients`, `aws`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from recsys.publish.publish import PublishResult, publish
from recsys.publish.settings import PublishSettings
from recsys.serving.runtime import Runtime, build_runtime
from recsys.serving.settings import ServingSettings
from tests.unit.recsys.serving.helpers import (
    ARTIFACTS,
    DUMMY_CREDENTIALS,
    EVENTS,
    ITEMS,
    REAL_AWS_SWITCHES,
    REGION,
    SERVING,
    create_resources,
)


def dummy_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region: nothing here may ever reach real AWS."""
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in REAL_AWS_SWITCHES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True, name="aws_credentials")
def aws_credentials_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    dummy_aws_environment(monkeypatch)


@dataclass(frozen=True)
class Clients:
    dynamodb: Any
    s3: Any


@pytest.fixture(scope="session", name="clients")
def clients_fixture() -> Clients:
    """Made once (about 0.1 s each); moto intercepts them inside every test's `mock_aws`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dummy_aws_environment(monkeypatch)
        return Clients(boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION))


class Aws:
    """The resources, plus helpers to publish a folder and to build a fresh runtime (empty caches)."""

    def __init__(self, clients: Clients, tmp_path: Path) -> None:
        self.dynamodb = clients.dynamodb
        self.s3 = clients.s3
        self.tmp_path = tmp_path
        create_resources(self.dynamodb, self.s3)
        self.publish_settings = PublishSettings(
            serving_table=SERVING, artifacts_bucket=ARTIFACTS, concurrency=2, backoff_base_s=0.0
        )

    def publish(self, folder: Path, **kwargs: Any) -> PublishResult:
        return publish(str(folder), self.dynamodb, self.s3, self.publish_settings, **kwargs)

    def settings(self, **overrides: Any) -> ServingSettings:
        values: dict[str, Any] = {
            "serving_table": SERVING,
            "items_table": ITEMS,
            "recent_events_table": EVENTS,
            "cache_seconds": 0.0,
        }
        return ServingSettings(**(values | overrides))

    def runtime(self, post_events: Any = None, **overrides: Any) -> Runtime:
        return build_runtime(self.settings(**overrides), self.dynamodb, lambda: self.s3, post_events)


@pytest.fixture(name="aws")
def aws_fixture(clients: Clients, tmp_path: Path) -> Iterator[Aws]:
    with mock_aws():
        yield Aws(clients, tmp_path)
