"""An embedded AWS (moto) with the ingest bucket, the curated bucket and the manifest table."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from recsys import contracts
from recsys.ingest.manifest import IngestResult
from recsys.ingest.process import process_object
from recsys.ingest.settings import IngestSettings

INGEST = "recsys-test-ingest"
CURATED = "recsys-test-curated"
MANIFEST = "recsys-test-manifest"
REGION = "us-east-1"


DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
REAL_AWS_SWITCHES = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB")


def dummy_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region: nothing here may ever reach real AWS."""
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in REAL_AWS_SWITCHES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    dummy_aws_environment(monkeypatch)


@dataclass(frozen=True)
class Clients:
    s3: Any
    dynamodb: Any
    manifest: Any


@pytest.fixture(scope="session")
def clients() -> Clients:
    """Clients made once (about 0.1 s each); moto intercepts them inside every test's `mock_aws`."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dummy_aws_environment(monkeypatch)
        return Clients(
            s3=boto3.client("s3", region_name=REGION),
            dynamodb=boto3.client("dynamodb", region_name=REGION),
            manifest=boto3.resource("dynamodb", region_name=REGION).Table(MANIFEST),
        )


@dataclass
class Uploaded:
    key: str
    version_id: str
    etag: str
    size: int


class Lake:
    """The buckets and the manifest, with helpers to upload, ingest and read every output back."""

    def __init__(self, clients: Clients, settings: IngestSettings) -> None:
        self.s3 = clients.s3
        self.manifest = clients.manifest
        self.settings = settings

    def upload(self, key: str, body: bytes) -> Uploaded:
        response = self.s3.put_object(Bucket=INGEST, Key=key, Body=body)
        return Uploaded(key, response["VersionId"], response["ETag"].strip('"'), len(body))

    def ingest(self, obj: Uploaded, settings: IngestSettings | None = None, **kwargs: Any) -> IngestResult:
        return process_object(
            self.s3,
            self.manifest,
            settings or self.settings,
            INGEST,
            obj.key,
            obj.version_id,
            obj.etag,
            obj.size,
            **kwargs,
        )

    def curated(self, result: IngestResult) -> pa.Table:
        assert result.curated_key is not None
        body = self.s3.get_object(Bucket=CURATED, Key=result.curated_key)["Body"].read()
        return pq.read_table(io.BytesIO(body))

    def quarantined(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=INGEST, Key=contracts.QUARANTINE_PREFIX + key)["Body"].read())

    def error_report(self, key: str) -> dict[str, Any]:
        errors_key = contracts.QUARANTINE_PREFIX + key + contracts.QUARANTINE_ERRORS_SUFFIX
        return dict(json.loads(self.s3.get_object(Bucket=INGEST, Key=errors_key)["Body"].read()))

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in listed)

    def open_uploads(self) -> list[str]:
        found = []
        for bucket in (INGEST, CURATED):
            found += [u["Key"] for u in self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
        return found

    def manifest_item(self, key: str, version: str) -> dict[str, Any]:
        item = self.manifest.get_item(
            Key={contracts.MANIFEST_PARTITION_KEY: f"{INGEST}/{key}", contracts.MANIFEST_SORT_KEY: version}
        ).get("Item")
        assert item is not None, f"no manifest item for {key} {version}"
        return dict(item)

    def manifest_items(self) -> list[dict[str, Any]]:
        return [dict(i) for i in self.manifest.scan()["Items"]]


def create_lake(clients: Clients) -> None:
    for bucket in (INGEST, CURATED):
        clients.s3.create_bucket(Bucket=bucket)
        clients.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    clients.dynamodb.create_table(
        TableName=MANIFEST,
        KeySchema=[
            {"AttributeName": contracts.MANIFEST_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contracts.MANIFEST_SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": contracts.MANIFEST_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contracts.MANIFEST_SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings(ingest_bucket=INGEST, curated_bucket=CURATED, manifest_table=MANIFEST)


@pytest.fixture
def lake(clients: Clients, settings: IngestSettings) -> Iterator[Lake]:
    with mock_aws():
        create_lake(clients)
        yield Lake(clients, settings)
