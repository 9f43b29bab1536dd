"""The recommendation Lambda with real Function URL (and HTTP API) events against moto: routes, every
bad input of the issue, /events through the events domain, throttling, no model, cold-start imports."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from lambdas.recommend import handler
from recsys import contracts
from recsys.events.service import EventSinks, post_events
from recsys.serving.runtime import Runtime, build_runtime, client_config
from tests.unit.recsys.serving.fixtures import (  # the fixtures register as aws_credentials, clients, aws
    Aws,
    aws_credentials_fixture,  # noqa: F401
    aws_fixture,  # noqa: F401
    clients_fixture,  # noqa: F401
)
from tests.unit.recsys.serving.helpers import (
    EVENTS,
    NAMES,
    REGION,
    put_catalog,
    write_model_folder,
)

STREAM = "recsys-test-events"
INGEST = "recsys-test-ingest"
RECS = {"u1": [(f"i{n:02d}", 1.0 - n / 100) for n in range(15)]}
POPULAR = [("p1", 9.0), ("p2", 8.0)]


def url_event(
    method: str, path: str, query: str = "", body: str | None = None, b64: bool = False
) -> dict[str, Any]:
    """A Lambda Function URL event (payload 2.0), as AWS documents it."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "1.2.3.4",
                "userAgent": "t",
            },
            "requestId": "r1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "isBase64Encoded": b64,
    }
    if query:
        params: dict[str, str] = {}
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if b64 else body
    return event


class Context:
    function_name = "recsys-recommend"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:recsys-recommend"
    memory_limit_in_mb = 512
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/recsys-recommend"
    log_stream_name = "s"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = handler.lambda_handler(event, Context())  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


@pytest.fixture(scope="module")
def service_clients() -> dict[str, Any]:
    """Clients configured as in the Lambda (3 attempts), made once; moto intercepts them per test."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
            monkeypatch.setenv(name, value)
        return {
            "dynamodb": boto3.client("dynamodb", region_name=REGION, config=client_config(3)),
            "firehose": boto3.client("firehose", region_name=REGION),
        }


@pytest.fixture
def rt(aws: Aws, service_clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Runtime:
    aws.s3.create_bucket(Bucket=INGEST)
    service_clients["firehose"].create_delivery_stream(
        DeliveryStreamName=STREAM,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{INGEST}",
            "Prefix": contracts.EVENTS_STREAM_PREFIX,
        },
    )
    sinks = EventSinks(
        EVENTS, STREAM, dynamodb=service_clients["dynamodb"], firehose=service_clients["firehose"]
    )
    runtime = build_runtime(
        aws.settings(), service_clients["dynamodb"], lambda: aws.s3, lambda body: post_events(body, sinks)
    )
    monkeypatch.setattr(handler, "runtime", lambda: runtime)
    return runtime


def publish(aws: Aws) -> None:
    folder = write_model_folder(
        aws.tmp_path / "v1",
        recommendations=RECS,
        popularity=POPULAR,
        similar={"i00": [("i01", 0.9), ("i02", 0.8)]},
        vectors={"i00": ([1.0], 0.0), "i01": ([0.5], 0.0)},
    )
    aws.publish(folder)


def test_recommendations_for_a_known_user(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    put_catalog(aws.dynamodb, {"i00": ("Zero", ["drama"])})
    status, body, headers = invoke(url_event("GET", "/recommendations/u1", "k=2"))
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body == {
        "user_id": "u1",
        "model_version": "v1",
        "source": "personalized",
        "items": [
            {"item_id": "i00", "title": "Zero", "categories": ["drama"], "score": 1.0},
            {"item_id": "i01", "title": None, "categories": [], "score": 0.99},
        ],
    }


def test_k_missing_means_10(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    status, body, _ = invoke(url_event("GET", "/recommendations/u1"))
    assert (status, len(body["items"])) == (200, 10)


def test_an_unknown_user_gets_popular_items(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    status, body, _ = invoke(url_event("GET", "/recommendations/someone%20new"))
    assert (status, body["user_id"], body["source"]) == (200, "someone new", "popular")
    assert [i["item_id"] for i in body["items"]] == ["p1", "p2"]


@pytest.mark.parametrize("query", ["k=0", "k=101", "k=abc", "k=", "k=-1", "k=1.5", "k=5&k=6"])
def test_bad_k_is_400(aws: Aws, rt: Runtime, query: str) -> None:
    publish(aws)
    for path in ("/recommendations/u1", "/similar/i00"):
        status, body, _ = invoke(url_event("GET", path, query))
        assert (status, body["error"], body["field"]) == (400, "invalid_request", "k")


@pytest.mark.parametrize(
    "raw_id", ["a%00b", "a%01", "%0A", "x%7F", "%09tab", "x" * 257, "%C3%A9" * 257, "%20%20", "%FF"]
)
def test_bad_ids_are_400(aws: Aws, rt: Runtime, raw_id: str) -> None:
    publish(aws)
    for path, field in (("/recommendations/", "user_id"), ("/similar/", "item_id")):
        status, body, _ = invoke(url_event("GET", path + raw_id))
        assert (status, body["field"]) == (400, field), body


def test_an_id_of_256_characters_is_fine(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    status, body, _ = invoke(url_event("GET", "/recommendations/" + "%C3%A9" * 256))
    assert (status, body["source"]) == (200, "popular")


def test_similar_items_and_an_unknown_item(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    status, body, _ = invoke(url_event("GET", "/similar/i00", "k=1"))
    assert (status, [i["item_id"] for i in body["items"]]) == (200, ["i01"])
    status, body, _ = invoke(url_event("GET", "/similar/nope"))
    assert (status, body["error"], body["field"]) == (404, "not_found", "item_id")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/recommendations"), ("DELETE", "/health"), ("GET", "/recommendations/u1/extra")],
)
def test_unknown_routes_are_404_json(aws: Aws, rt: Runtime, method: str, path: str) -> None:
    status, body, _ = invoke(url_event(method, path))
    assert (status, body["error"]) == (404, "not_found")


def test_health(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    status, body, _ = invoke(url_event("GET", "/health"))
    assert (status, body["status"], body["model_version"]) == (200, "ok", "v1")


def test_no_model_and_no_catalog_is_503_then_the_catalog_answers(aws: Aws, rt: Runtime) -> None:
    status, body, headers = invoke(url_event("GET", "/recommendations/u1"))
    assert (status, headers["Retry-After"]) == (503, "60")
    assert "no model has been published yet" in body["message"]
    put_catalog(aws.dynamodb, {"c1": ("One", [])})
    status, body, _ = invoke(url_event("GET", "/recommendations/u1"))
    assert (status, body["source"], [i["item_id"] for i in body["items"]]) == (200, "catalog", ["c1"])


def test_a_posted_event_changes_the_next_answer(aws: Aws, rt: Runtime) -> None:
    publish(aws)
    event = {"user_id": "u1", "item_id": "i00", "event_type": "view"}
    status, body, _ = invoke(url_event("POST", "/events", body=json.dumps(event)))
    assert (status, body["accepted"]) == (200, 1)
    status, body, _ = invoke(url_event("GET", "/recommendations/u1", "k=3"))
    assert body["source"] == "realtime"  # an event newer than the model, with vectors
    assert "i00" not in [i["item_id"] for i in body["items"]]  # and the consumed item is gone


def test_events_in_a_base64_body_are_accepted(aws: Aws, rt: Runtime) -> None:
    body = json.dumps({"events": [{"user_id": "u9", "item_id": "i1", "event_type": "view"}]})
    status, reply, _ = invoke(url_event("POST", "/events", body=body, b64=True))
    assert (status, reply["accepted"]) == (200, 1)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ("", 400),
        (json.dumps({"events": [{"user_id": "u", "item_id": "i"}] * 501}), 413),
        (json.dumps({"user_id": "u", "item_id": "i", "pad": "x" * (1 << 20)}), 413),
        (json.dumps({"user_id": "u\u0001", "item_id": "i"}), 400),
    ],
)
def test_bad_event_bodies_are_4xx(aws: Aws, rt: Runtime, body: str, status: int) -> None:
    got, reply, _ = invoke(url_event("POST", "/events", body=body))
    assert got == status
    assert reply["error"]


def test_invalid_base64_is_400(aws: Aws, rt: Runtime) -> None:
    event = url_event("POST", "/events", body="x")
    event["body"], event["isBase64Encoded"] = "***", True
    status, body, _ = invoke(event)
    assert (status, body["error"]) == (400, "invalid_request")


class Throttle:
    """Answers the first `times` GetItem calls with ProvisionedThroughputExceededException."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.attempts = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > self.times:
            return None  # on to moto
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "slow",
            }
        ).encode()
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(("times", "status"), [(2, 200), (10**6, 503)])
def test_throttling_is_retried_then_503_with_retry_after(
    aws: Aws,
    rt: Runtime,
    service_clients: dict[str, Any],
    sleeps: list[float],
    times: int,
    status: int,
) -> None:
    publish(aws)
    throttle = Throttle(times)
    events = service_clients["dynamodb"].meta.events
    events.register_first("before-send.dynamodb.GetItem", throttle)
    try:
        got, body, headers = invoke(url_event("GET", "/recommendations/u1"))
    finally:
        events.unregister("before-send.dynamodb.GetItem", throttle)
    assert got == status
    if status == 503:
        assert throttle.attempts == 3
        assert len(sleeps) == 2
        assert (headers["Retry-After"], body["error"]) == ("1", "unavailable")
    else:
        assert len(sleeps) == 2
        assert body["source"] == "personalized"


def test_a_bug_is_a_json_500_not_a_crash(aws: Aws, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(rt.recommender, "health", broken)
    status, body, _ = invoke(url_event("GET", "/health"))
    assert (status, body) == (500, {"error": "internal_error", "message": "internal error (logged)"})


def test_an_http_api_event_with_a_stage_and_a_decoded_path(
    aws: Aws,
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish(aws)
    decoded = build_runtime(
        aws.settings(path_percent_encoded=False), rt.recommender.store.dynamodb, lambda: aws.s3, None
    )
    monkeypatch.setattr(handler, "runtime", lambda: decoded)
    event = url_event("GET", "/prod/recommendations/a%b", "k=1")
    event["routeKey"] = "GET /prod/recommendations/{user_id}"
    event["requestContext"]["stage"] = "prod"
    event["requestContext"]["http"]["method"] = "GET"
    status, body, _ = invoke(event)
    assert (status, body["user_id"], body["source"]) == (200, "a%b", "popular")


def test_the_runtime_built_from_the_environment_serves(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(aws)
    for name, value in NAMES.items():
        monkeypatch.setenv(name, value)
    handler.runtime.cache_clear()
    try:
        status, body, _ = invoke(url_event("GET", "/recommendations/u1", "k=1"))
        assert (status, body["items"][0]["item_id"]) == (200, "i00")
        status, body, headers = invoke(url_event("POST", "/events", body="{}"))  # no stream configured
        assert (status, headers["Retry-After"]) == (503, "60")
    finally:
        handler.runtime.cache_clear()


def test_the_cold_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, lambdas.recommend.handler\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'boto3', 'pydantic') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_events_reply_is_passed_through_with_its_headers(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys.events.service import EventsReply

    seen: list[str | bytes | None] = []

    def fake_post_events(body: str | bytes | None) -> EventsReply:
        seen.append(body)
        return EventsReply(503, {"error": "busy", "retry_after": 2})

    runtime = build_runtime(aws.settings(), aws.dynamodb, lambda: aws.s3, fake_post_events)
    monkeypatch.setattr(handler, "runtime", lambda: runtime)
    status, body, headers = invoke(url_event("POST", "/events", body='{"x": 1}'))
    assert (status, body, headers["Retry-After"], headers["Content-Type"]) == (
        503,
        {"error": "busy", "retry_after": 2},
        "2",
        "application/json",
    )
    assert seen == ['{"x": 1}']
