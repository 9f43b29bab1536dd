"""The local HTTP adapter: HTTP requests become Function URL events, handler answers become responses."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_mode.http import MAX_BODY_BYTES, LocalHttpServer, function_url_event


def test_the_event_has_the_function_url_shape() -> None:
    event = function_url_event(
        "GET",
        "/recommendations/caf%C3%A9?k=5&k=6&x=a%20b",
        [("Host", "127.0.0.1:8080"), ("X-Multi", "1"), ("x-multi", "2"), ("Cookie", "a=1; b=2")],
        b"",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/recommendations/caf%C3%A9"  # percent-encoded, as a Function URL passes it
    assert event["rawQueryString"] == "k=5&k=6&x=a%20b"
    assert event["queryStringParameters"] == {"k": "5,6", "x": "a b"}
    assert event["headers"]["x-multi"] == "1,2"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "GET"
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_text_bodies_stay_text_and_others_are_base64() -> None:
    text = function_url_event("POST", "/events", [("Content-Type", "application/json")], b'{"a": 1}')
    assert (text["body"], text["isBase64Encoded"]) == ('{"a": 1}', False)
    binary = function_url_event("POST", "/events", [("Content-Type", "application/json")], b"\xff\xfe")
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\xff\xfe", True)
    octets = function_url_event("POST", "/events", [("Content-Type", "application/octet-stream")], b"abc")
    assert octets["isBase64Encoded"] is True


class Recorder:
    """A Lambda handler that records its events and answers with what the test sets."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer: dict[str, Any] = {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": "{}",
        }
        self.fail = False

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("handler bug")
        return self.answer


@pytest.fixture
def served() -> Iterator[tuple[Recorder, http.client.HTTPConnection, LocalHttpServer]]:
    recorder = Recorder()
    server = LocalHttpServer(recorder).start()
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    yield recorder, connection, server
    connection.close()
    server.stop()


def request(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection.request(method, target, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_a_round_trip_over_one_kept_alive_connection(served: Any) -> None:
    recorder, connection, server = served
    recorder.answer = {"statusCode": 503, "headers": {"Retry-After": "1"}, "body": '{"error":"unavailable"}'}
    for _ in range(3):
        status, headers, body = request(connection, "GET", "/health?x=1")
        assert (status, headers["retry-after"], json.loads(body)) == (503, "1", {"error": "unavailable"})
    assert len(recorder.events) == 3
    assert recorder.events[0]["rawPath"] == "/health"
    recorder.answer = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    assert (
        request(connection, "POST", "/events", b'{"a":1}', {"Content-Type": "application/json"})[2]
        == b"\x00\x01"
    )
    assert recorder.events[-1]["body"] == '{"a":1}'
    assert server.url.startswith("http://127.0.0.1:")


def test_too_large_bodies_are_refused_before_the_handler(served: Any) -> None:
    recorder, connection, _ = served
    status, _, body = request(connection, "POST", "/events", b"x" * (MAX_BODY_BYTES + 1))
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    assert recorder.events == []


def test_a_handler_that_raises_is_a_502_like_a_function_url(served: Any) -> None:
    recorder, connection, server = served
    recorder.fail = True
    assert request(connection, "GET", "/health")[0] == 502
    assert server.handler_errors == 1
