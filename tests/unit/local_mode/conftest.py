"""An embedded AWS (a moto server on loopback, as `recsys serve` uses) with a published model, and the
recommendation Lambda's own handler behind the local HTTP adapter, reading it through AWS_ENDPOINT_URL."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lambdas.recommend import handler
from local_mode.aws import EmbeddedAws, clients, ensure_serving_resources, environment
from local_mode.http import LocalHttpServer
from recsys import contracts
from recsys.publish.publish import publish
from recsys.publish.settings import PublishSettings
from tests.unit.recsys.serving.helpers import REAL_AWS_SWITCHES, write_model_folder

RECS = {f"u{n}": [(f"i{(n + j) % 40:02d}", 1.0 - j / 50) for j in range(30)] for n in range(20)}
POPULAR = [(f"i{n:02d}", float(100 - n)) for n in range(40)]
VECTORS = {f"i{n:02d}": ([float(n % 5), float(n % 7)], 0.0) for n in range(40)}


def write_model(path: Path, version: str = "v1") -> Path:
    return write_model_folder(
        path,
        version=version,
        recommendations=RECS,
        popularity=POPULAR,
        similar={f"i{n:02d}": [(f"i{(n + 1) % 40:02d}", 0.5)] for n in range(40)},
        vectors=VECTORS,
    )


@dataclass(frozen=True)
class Local:
    endpoint: str
    url: str
    server: LocalHttpServer


@pytest.fixture(scope="package")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    aws = EmbeddedAws()
    # moto's state is per process: start from nothing, whatever other tests left in it
    urllib.request.urlopen(
        urllib.request.Request(f"{aws.endpoint}/moto-api/reset", method="POST"), timeout=10
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in REAL_AWS_SWITCHES:
            monkeypatch.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
        env = environment(aws.endpoint, {})
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        embedded = clients(aws.endpoint)
        ensure_serving_resources(embedded, env)
        settings = PublishSettings(
            serving_table=env[contracts.SERVING_TABLE_ENV],
            artifacts_bucket=env[contracts.ARTIFACTS_BUCKET_ENV],
        )
        publish(str(write_model(tmp_path_factory.mktemp("model"))), embedded.dynamodb, embedded.s3, settings)
        handler.runtime.cache_clear()
        server = LocalHttpServer(handler.lambda_handler).start()
        try:
            yield Local(aws.endpoint, server.url, server)
        finally:
            server.stop()
            handler.runtime.cache_clear()
            aws.stop()
