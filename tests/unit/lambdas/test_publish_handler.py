"""The publish Lambda against moto: a model folder under s3://<artifacts>/models/<version>/ becomes the live
version; bad events, a folder too large for /tmp and a bad folder fail by name and leave the live version."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.publish import handler
from lambdas.publish.handler import ModelTooLargeError, PublishRequestError
from recsys import contracts
from recsys.publish import pointer
from recsys.publish.pointer import PublishError
from recsys.serving import table
from recsys.serving.model_files import ModelFormatError
from tests.unit.recsys.serving.fixtures import (  # the fixtures register as aws_credentials, clients, aws
    Aws,
    aws_credentials_fixture,  # noqa: F401
    aws_fixture,  # noqa: F401
    clients_fixture,  # noqa: F401
)
from tests.unit.recsys.serving.helpers import ARTIFACTS, NAMES, SERVING, write_model_folder

RECS = {"u1": [("i1", 0.9), ("i2", 0.5)], "u2": [("i2", 0.7)]}
POPULAR = [("i2", 3.0), ("i1", 2.0)]
VECTORS = {"i1": ([1.0, 0.0], 0.1), "i2": ([0.0, 1.0], 0.2)}


class Context:
    function_name = "recsys-publish"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:recsys-publish"
    aws_request_id = "req-1"
    log_group_name = "g"
    log_stream_name = "s"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in NAMES.items():
        monkeypatch.setenv(name, value)
    handler.clients.cache_clear()
    yield
    handler.clients.cache_clear()


def upload_model(aws: Aws, version: str, name: str | None = None, **kwargs: Any) -> str:
    """Write a model folder locally and copy it to s3://<artifacts>/models/<name or version>/."""
    folder = write_model_folder(
        aws.tmp_path / version,
        version=version,
        recommendations=RECS,
        popularity=POPULAR,
        similar={"i1": [("i2", 0.4)]},
        vectors=VECTORS,
        **kwargs,
    )
    prefix = f"{contracts.MODELS_PREFIX}{name or version}/"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        aws.s3.put_object(
            Bucket=ARTIFACTS, Key=prefix + path.relative_to(folder).as_posix(), Body=path.read_bytes()
        )
    return f"s3://{ARTIFACTS}/{prefix}"


def invoke(event: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler.lambda_handler(event, Context())  # type: ignore[arg-type]
    return result


def live_version(aws: Aws) -> str | None:
    live = pointer.read_live(aws.dynamodb, SERVING)
    return live.version if live else None


def test_a_model_folder_in_s3_becomes_the_live_version(aws: Aws) -> None:
    uri = upload_model(aws, "v1")
    result = invoke({"model_uri": uri})
    assert (result["version"], result["previous_version"]) == ("v1", None)
    assert (result["users"], result["similar_items"], result["popular_items"]) == (2, 1, 2)
    # the vectors are already where the API reads them: not copied again
    assert result["item_vectors_uri"] == f"{uri}{contracts.MODEL_ITEM_VECTORS_FILE}"
    assert live_version(aws) == "v1"
    item = aws.dynamodb.get_item(TableName=SERVING, Key=table.key(table.user_key("v1", "u1")))["Item"]
    assert table.decode_list(item).item_ids == ("i1", "i2")


def test_a_version_named_in_the_event_is_published_with_its_own_vectors(aws: Aws) -> None:
    invoke({"model_uri": upload_model(aws, "v1")})
    result = invoke({"model_uri": upload_model(aws, "v2", name="candidate"), "version": "v2"})
    assert (result["version"], result["previous_version"]) == ("v2", "v1")
    key = f"{contracts.MODELS_PREFIX}v2/{contracts.MODEL_ITEM_VECTORS_FILE}"
    assert result["item_vectors_uri"] == f"s3://{ARTIFACTS}/{key}"
    assert aws.s3.head_object(Bucket=ARTIFACTS, Key=key)["ContentLength"] > 0
    assert live_version(aws) == "v2"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (["s3://b/models/v1/"], r"expected a JSON object, got list"),
        ({}, r"model_uri: expected an s3://bucket/prefix/ string, got None"),
        ({"model_uri": "/tmp/models/v1"}, r"model_uri: expected an s3://"),
        ({"model_uri": f"s3://{ARTIFACTS}/"}, r"does not name a model folder"),
        ({"model_uri": "s3:///models/v1/"}, r"does not name a model folder"),
        ({"model_uri": "s3://b/models/v1/", "version": 2}, r"version: expected a string or null, got 2"),
        ({"model_uri": "s3://b/models/v1/", "run": "x"}, r"unknown field\(s\) run"),
    ],
)
def test_bad_events_are_refused_naming_the_field(event: Any, message: str) -> None:
    with pytest.raises(PublishRequestError, match=message):
        invoke(event)


def test_a_folder_larger_than_tmp_is_refused_before_anything_is_written(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = upload_model(aws, "v1")
    size = handler.folder_bytes(aws.s3, uri)
    assert size > 0
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(handler.shutil, "disk_usage", lambda _: usage(size, 0, size - 1))
    with pytest.raises(ModelTooLargeError, match=r"publish_ephemeral_storage_mb"):
        invoke({"model_uri": uri})
    assert live_version(aws) is None
    assert pointer.registered_versions(aws.dynamodb, SERVING) == set()


def test_a_bad_folder_fails_by_name_and_the_live_version_stays(aws: Aws) -> None:
    invoke({"model_uri": upload_model(aws, "v1")})
    broken = upload_model(aws, "v2")
    aws.s3.delete_object(Bucket=ARTIFACTS, Key=f"{contracts.MODELS_PREFIX}v2/{contracts.MODEL_INFO_FILE}")
    with pytest.raises(ModelFormatError, match=contracts.MODEL_INFO_FILE):
        invoke({"model_uri": broken})
    with pytest.raises(PublishError, match=r"no objects under this prefix"):
        invoke({"model_uri": f"s3://{ARTIFACTS}/{contracts.MODELS_PREFIX}missing/"})
    assert live_version(aws) == "v1"


def test_folder_size_counts_every_object_under_the_prefix_only(aws: Aws) -> None:
    aws.s3.put_object(Bucket=ARTIFACTS, Key="models/v1/a", Body=b"x" * 10)
    aws.s3.put_object(Bucket=ARTIFACTS, Key="models/v1/sub/b", Body=b"x" * 5)
    aws.s3.put_object(Bucket=ARTIFACTS, Key="models/v10/c", Body=b"x" * 100)  # a sibling, not inside
    assert handler.folder_bytes(aws.s3, f"s3://{ARTIFACTS}/models/v1") == 15
    assert handler.folder_bytes(aws.s3, f"s3://{ARTIFACTS}/models/v1/") == 15
