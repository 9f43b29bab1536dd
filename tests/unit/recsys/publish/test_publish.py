"""Publish into an embedded AWS: versions, the atomic switch, interruption, rollback, retirement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recsys.cli import main as cli
from recsys.publish import pointer
from recsys.publish.pointer import LiveChangedError, PublishError
from recsys.publish.retire import retire_versions
from recsys.serving import table
from recsys.serving.table import COMPLETE, LOADING, RETIRED, LivePointer
from tests.unit.recsys.serving.fixtures import Aws
from tests.unit.recsys.serving.helpers import ARTIFACTS, NAMES, SERVING, write_model_folder

POPULAR = [("p1", 10.0), ("p2", 5.0)]
VECTORS = {"a": ([1.0], 0.0), "b": ([0.5], 0.0)}


def folder(aws: Aws, version: str, users: int = 3, **kwargs: Any) -> Path:
    recs = {f"u{n}": [(f"{version}-i{n}", 1.0), ("b", 0.5)] for n in range(users)}
    return write_model_folder(
        aws.tmp_path / version,
        version=version,
        recommendations=kwargs.pop("recommendations", recs),
        popularity=POPULAR,
        similar={"a": [("b", 0.5)]},
        vectors=kwargs.pop("vectors", VECTORS),
        **kwargs,
    )


def live(aws: Aws) -> LivePointer | None:
    return pointer.read_live(aws.dynamodb, SERVING)


def item(aws: Aws, pk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = aws.dynamodb.get_item(TableName=SERVING, Key=table.key(pk)).get("Item")
    return found


class FailingAfter:
    """A DynamoDB client whose BatchWriteItem fails after `calls` calls (a publish dying half-way)."""

    def __init__(self, client: Any, calls: int) -> None:
        self.client = client
        self.calls = calls

    def batch_write_item(self, **kwargs: Any) -> Any:
        self.calls -= 1
        if self.calls < 0:
            raise ConnectionError("connection lost")
        return self.client.batch_write_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_publish_loads_a_version_and_makes_it_live(aws: Aws) -> None:
    result = aws.publish(folder(aws, "v1", users=60))

    assert (result.version, result.previous_version, result.users, result.similar_items) == (
        "v1",
        None,
        60,
        1,
    )
    assert result.items_written == 62
    assert result.batch_requests == 5
    current = live(aws)
    assert current is not None
    assert (current.version, current.previous_version) == ("v1", None)
    assert current.item_vectors_uri == f"s3://{ARTIFACTS}/models/v1/item_vectors.npz"
    assert aws.s3.get_object(Bucket=ARTIFACTS, Key="models/v1/item_vectors.npz")["ContentLength"] > 0
    record = pointer.read_version(aws.dynamodb, SERVING, "v1")
    assert record is not None
    assert (record.status, record.counts) == (COMPLETE, {"popular_items": 2, "similar_items": 1, "users": 60})
    stored = table.decode_list(item(aws, "v1#u#u7") or {})
    assert stored.item_ids == ("v1-i7", "b")
    assert stored.scores == (1.0, 0.5)
    assert table.decode_list(item(aws, "v1#popular") or {}).item_ids == ("p1", "p2")
    assert pointer.registered_versions(aws.dynamodb, SERVING) == {"v1"}


def test_an_interrupted_publish_leaves_the_live_version_serving(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"))
    with pytest.raises(ConnectionError):
        _publish_failing(aws, "v2", 2)

    current = live(aws)
    assert current is not None
    assert current.version == "v1"
    record = pointer.read_version(aws.dynamodb, SERVING, "v2")
    assert record is not None
    assert record.status == LOADING
    assert item(aws, "v2#u#u0") is not None  # half loaded ...
    answer = aws.runtime().recommender.recommendations("u0", 10)
    assert (answer["model_version"], answer["items"][0]["item_id"]) == ("v1", "v1-i0")  # ... and ignored


def _publish_failing(aws: Aws, version: str, calls: int) -> None:
    from recsys.publish.publish import publish

    publish(
        str(folder(aws, version, users=100)), FailingAfter(aws.dynamodb, calls), aws.s3, aws.publish_settings
    )


def test_the_next_publish_retires_a_stale_half_loaded_version(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"))
    with pytest.raises(ConnectionError):
        _publish_failing(aws, "v2", 1)
    aws.publish_settings = type(aws.publish_settings)(
        **{**aws.publish_settings.__dict__, "stale_loading_s": 0}
    )

    result = aws.publish(folder(aws, "v3"))

    assert result.retired == ["v2"]
    half = item(aws, "v2#u#u0")
    assert half is not None
    assert table.TTL in half
    record = pointer.read_version(aws.dynamodb, SERVING, "v2")
    assert record is not None
    assert record.status == RETIRED
    assert record.expires_at == int(half[table.TTL]["N"])
    assert pointer.registered_versions(aws.dynamodb, SERVING) == {"v1", "v3"}


def test_versions_neither_live_nor_previous_expire_after_the_grace_period(aws: Aws) -> None:
    for version in ("v1", "v2"):
        aws.publish(folder(aws, version))
    result = aws.publish(folder(aws, "v3"))

    assert result.retired == ["v1"]
    expiring = [
        k
        for k in ("v1#u#u0", "v1#i#a", "v1#popular", "v2#u#u0", "v3#u#u0")
        if table.TTL in (item(aws, k) or {})
    ]
    assert expiring == ["v1#u#u0", "v1#i#a", "v1#popular"]
    record = pointer.read_version(aws.dynamodb, SERVING, "v1")
    assert record is not None
    assert record.expires_at is not None
    # a retired version cannot be rolled back to
    with pytest.raises(PublishError, match="v1 cannot be made live: it is retired"):
        pointer.rollback(aws.dynamodb, SERVING, "v1", "now")


def test_rollback_restores_the_previous_answers(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"))
    aws.publish(folder(aws, "v2"))
    assert aws.runtime().recommender.recommendations("u1", 1)["items"][0]["item_id"] == "v2-i1"

    restored = pointer.rollback(aws.dynamodb, SERVING, None, "2026-01-02T00:00:00+00:00")

    assert (restored.version, restored.previous_version) == ("v1", "v2")
    answer = aws.runtime().recommender.recommendations("u1", 1)
    assert (answer["model_version"], answer["items"][0]["item_id"]) == ("v1", "v1-i1")
    assert pointer.rollback(aws.dynamodb, SERVING, None, "later").version == "v2"  # and forward again


def test_rollback_refuses_what_it_cannot_do(aws: Aws) -> None:
    with pytest.raises(PublishError, match="nothing is live"):
        pointer.rollback(aws.dynamodb, SERVING, None, "now")
    aws.publish(folder(aws, "v1"))
    with pytest.raises(PublishError, match="no previous version"):
        pointer.rollback(aws.dynamodb, SERVING, None, "now")
    with pytest.raises(PublishError, match="already live"):
        pointer.rollback(aws.dynamodb, SERVING, "v1", "now")
    with pytest.raises(PublishError, match="does not exist"):
        pointer.rollback(aws.dynamodb, SERVING, "v9", "now")


def test_the_switch_is_conditional(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"))
    aws.publish(folder(aws, "v2"))
    record = pointer.read_version(aws.dynamodb, SERVING, "v1")
    assert record is not None
    new = LivePointer("v1", "v2", record.model_created_ms, None, "now")
    with pytest.raises(LiveChangedError, match="expected v0, found v2"):
        pointer.switch_live(aws.dynamodb, SERVING, new, expected="v0")  # another publish won meanwhile
    pointer.put_version(aws.dynamodb, SERVING, table.VersionRecord("v9", LOADING, "fm", "", 0, ""))
    with pytest.raises(PublishError, match="v9 is not complete"):
        pointer.switch_live(aws.dynamodb, SERVING, LivePointer("v9", "v2", 0, None, "now"), expected="v2")
    current = live(aws)
    assert current is not None
    assert current.version == "v2"


def test_publishing_the_live_version_again_is_refused(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"))
    with pytest.raises(PublishError, match="already live"):
        aws.publish(folder(aws, "v1"))


def test_a_version_can_be_published_under_another_id(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"), version="v1-retry")
    current = live(aws)
    assert current is not None
    assert current.version == "v1-retry"
    assert item(aws, "v1-retry#u#u0") is not None


def test_a_list_of_100_ids_of_256_characters_fits_in_one_item(aws: Aws) -> None:
    long_ids = [(f"{n:03d}".ljust(256, "x"), 1.0 / (n + 1)) for n in range(100)]
    aws.publish(folder(aws, "v1", recommendations={"u" * 256: long_ids}, vectors=None))
    stored = item(aws, "v1#u#" + "u" * 256)
    assert stored is not None
    size = sum(len(k) + len(json.dumps(v)) for k, v in stored.items())  # an upper bound of DynamoDB's count
    assert size < 40_000  # DynamoDB's limit is 400 KB
    assert table.decode_list(stored).item_ids == tuple(i for i, _ in long_ids)


def test_a_model_folder_in_s3_is_published(aws: Aws) -> None:
    local = folder(aws, "v1")
    prefix = "models/v1/"
    for path in local.rglob("*"):
        if path.is_file():
            aws.s3.upload_file(str(path), ARTIFACTS, prefix + path.relative_to(local).as_posix())
    result = aws.publish(f"s3://{ARTIFACTS}/{prefix}")  # type: ignore[arg-type]
    assert (result.users, result.item_vectors_uri) == (3, f"s3://{ARTIFACTS}/models/v1/item_vectors.npz")


def test_retiring_skips_a_version_another_publish_may_still_be_loading(aws: Aws) -> None:
    aws.publish(folder(aws, "v1"))
    pointer.register_version(aws.dynamodb, SERVING, "v2")
    pointer.put_version(
        aws.dynamodb,
        SERVING,
        table.VersionRecord("v2", LOADING, "fm", "", 0, "", updated_at="2999-01-01T00:00:00+00:00"),
    )
    assert retire_versions(aws.dynamodb, aws.publish_settings, {"v1"}, now=1.0) == []


def test_cli_publish_and_rollback(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in NAMES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "entry_points", lambda group: [])  # built-in commands only: no torch import
    assert cli.main(["publish", "--run-dir", str(folder(aws, "v1")), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v1"
    assert cli.main(["publish", "--run-dir", str(folder(aws, "v2"))]) == 0
    assert "published v2" in capsys.readouterr().out
    assert cli.main(["rollback"]) == 0
    assert capsys.readouterr().out.strip() == "live: v1 (previous: v2)"
    assert cli.main(["rollback", "--to", "v7"]) == 1
    assert "v7 does not exist" in capsys.readouterr().err
    assert cli.main(["publish", "--run-dir", str(aws.tmp_path / "missing")]) == 1
    assert "not a directory" in capsys.readouterr().err
    monkeypatch.delenv("RECSYS_SERVING_TABLE")
    assert cli.main(["rollback"]) == 2
    assert "RECSYS_SERVING_TABLE" in capsys.readouterr().err
