"""Generated requests against the local HTTP adapter, backed by the embedded AWS: no 5xx, ever.

Methods, paths (the four routes with arbitrary ids, encoded or raw, and arbitrary paths), query strings
(k of every form), bodies (valid events, JSON of other shapes, text, bytes) and content types.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.local_mode.conftest import Local

URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#?")  # what may appear raw in a path
ids = st.one_of(
    st.text(max_size=300).map(lambda s: quote(s, safe="")),  # any id, percent-encoded
    st.text(alphabet=URL_SAFE, max_size=40),  # raw characters, broken escapes like %zz included
    st.sampled_from(["u1", "u19", "i00", "nobody", "%FF", "%C3", "%00", "x" * 257]),
)
paths = st.one_of(
    st.tuples(st.sampled_from(["/recommendations/", "/similar/"]), ids).map("".join),
    st.sampled_from(["/health", "/events", "/", "/recommendations", "/recommendations/u1/x", "//health"]),
    st.text(alphabet=URL_SAFE, max_size=30).map(lambda s: "/" + s),
)
k_values = st.one_of(
    st.integers(-5, 200).map(str),
    st.text(max_size=6).map(lambda s: quote(s, safe="")),
    st.sampled_from(["", "10", "1e2", "0x10", "5&k=6", "%FF"]),
)
queries = st.one_of(
    st.just(""),
    k_values.map(lambda k: "k=" + k),
    st.text(alphabet=URL_SAFE, max_size=20),
)
posted_event = st.fixed_dictionaries(
    {"user_id": st.sampled_from(["u1", "u2", "new"]), "item_id": st.sampled_from(["i01", "i02", "zz"])},
    optional={
        "event_type": st.sampled_from(["view", "purchase", "", "x" * 100]),
        # any float: out-of-range magnitudes are refused (400), the rest rounded to what DynamoDB stores
        "rating": st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from([float("nan"), float("inf")]),
    },
)
bodies = st.one_of(
    st.none(),
    posted_event.map(json.dumps),
    st.lists(posted_event, max_size=3).map(lambda e: json.dumps({"events": e})),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=3), c),
        max_leaves=8,
    ).map(json.dumps),
    st.text(max_size=50),
    st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
content_types = st.sampled_from(["application/json", "text/plain", "application/octet-stream", ""])
no_body = st.just(None)
# (method, path, query, body): mostly well-aimed requests with bad parts, some aimed at nothing.
requests = st.one_of(
    st.tuples(st.just("GET"), st.tuples(st.just("/recommendations/"), ids).map("".join), queries, no_body),
    st.tuples(st.just("GET"), st.tuples(st.just("/similar/"), ids).map("".join), queries, no_body),
    st.tuples(st.just("POST"), st.just("/events"), st.just(""), bodies),
    st.tuples(st.just("GET"), st.just("/health"), queries, no_body),
    st.tuples(methods, paths, queries, bodies),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests, content_type=content_types)
def test_no_request_gets_a_5xx(
    local: Local, request: tuple[str, str, str, str | None], content_type: str
) -> None:
    method, path, query, body = request
    host, port = local.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    headers = {"Content-Type": content_type} if content_type else {}
    data = None if body is None else body.encode("utf-8", "surrogatepass")
    target = path + ("?" + query if query else "")
    try:
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    event(f"status {response.status}")  # the spread shows with --hypothesis-show-statistics
    assert response.status < 500, (method, target, body, response.status, payload[:300])
    assert local.server.handler_errors == 0
    if method != "HEAD":
        assert isinstance(json.loads(payload), dict)


@pytest.mark.parametrize(("rating", "expected"), [(1e126, 400), (-2e6, 400), (1e-280, 200), (4.5, 200)])
def test_ratings_dynamodb_cannot_store_are_refused_or_rounded(
    local: Local, rating: float, expected: int
) -> None:
    # Found by the fuzz run above: 1e126 used to fail the write (503) and 1e-280 boto3's Decimal conversion
    # (500). Ratings are now bounded (|r| <= 1e6) and rounded to 6 decimals, which DynamoDB always stores.
    body = json.dumps({"user_id": "u1", "item_id": "i01", "event_type": "rating", "rating": rating})
    host, port = local.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    connection.request("POST", "/events", body=body, headers={"Content-Type": "application/json"})
    status = connection.getresponse().status
    connection.close()
    assert status == expected
