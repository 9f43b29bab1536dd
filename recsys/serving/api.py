"""The HTTP API: a Powertools resolver for Lambda Function URL events (API Gateway HTTP API payload 2.0
events have the same shape), its routes, and how errors become JSON answers.

    GET  /recommendations/{user_id}?k=10    GET /similar/{item_id}?k=10    POST /events    GET /health

Every answer is JSON. Bad input is a 4xx naming the field; throttling that outlasts botocore's retries and
"no model yet" are 503 with Retry-After; only a bug or a broken deployment (a missing table) gives 500.
Validation is hand-written (`recsys.serving.validation`) instead of Powertools' pydantic validation, which
would add ~100 ms to every cold start; `recsys openapi` still generates the spec from these routes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response

from recsys.serving import schemas
from recsys.serving.runtime import Runtime
from recsys.serving.validation import (
    ApiError,
    BadRequestError,
    NotFoundError,
    UnavailableError,
    parse_k,
    path_id,
)

logger = logging.getLogger(__name__)

RECOMMENDATIONS_PATH = "/recommendations/<user_id>"
SIMILAR_PATH = "/similar/<item_id>"
EVENTS_PATH = "/events"
HEALTH_PATH = "/health"

# What Powertools cannot infer from signatures without pydantic: constraints of the path parameters, the
# query parameter k, the events body. `recsys.serving.openapi` adds them to the generated operations.
OPERATION_DOCS: dict[tuple[str, str], dict[str, Any]] = {
    ("/recommendations/{user_id}", "get"): {
        "parameters": [schemas.id_parameter("user_id", "the user's"), schemas.K_PARAMETER]
    },
    ("/similar/{item_id}", "get"): {
        "parameters": [schemas.id_parameter("item_id", "the item's"), schemas.K_PARAMETER]
    },
    ("/events", "post"): {
        "requestBody": {"required": True, "content": {schemas.JSON: {"schema": schemas.EVENTS_REQUEST}}}
    },
}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=schemas.JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def build_app(runtime: Callable[[], Runtime]) -> LambdaFunctionUrlResolver:
    """The resolver; `runtime` builds (once) the settings, clients and the events function."""
    app = LambdaFunctionUrlResolver()

    def query(name: str) -> str | None:
        params = app.current_event.query_string_parameters or {}
        value = params.get(name)
        return None if value is None else str(value)

    @app.get(
        RECOMMENDATIONS_PATH,
        summary="Recommendations for a user",
        description="The live model's list for the user, minus items consumed since; a real-time blend "
        "when the user has recent events; popular items for users the model has not seen.",
        responses={200: schemas.response("recommended items, best first", schemas.RECOMMENDATIONS)}
        | schemas.errors(400, 404, 503),
    )
    def recommendations(user_id: str) -> Response[str]:
        rt = runtime()
        user = path_id(user_id, "user_id", percent_encoded=rt.settings.path_percent_encoded)
        return json_response(200, rt.recommender.recommendations(user, parse_k(query("k"))))

    @app.get(
        SIMILAR_PATH,
        summary="Items similar to an item",
        description="The live model's similar items, best first; 404 for an item the model does not know.",
        responses={200: schemas.response("similar items, best first", schemas.SIMILAR)}
        | schemas.errors(400, 404, 503),
    )
    def similar(item_id: str) -> Response[str]:
        rt = runtime()
        item = path_id(item_id, "item_id", percent_encoded=rt.settings.path_percent_encoded)
        return json_response(200, rt.recommender.similar(item, parse_k(query("k"))))

    @app.post(
        EVENTS_PATH,
        summary="Record events in real time",
        description="Validated and stored by the events domain (recsys.events); the next recommendations "
        "for the user take them into account.",
        responses={
            200: schemas.response("every event accepted", schemas.EVENTS_REPLY),
            207: schemas.response(
                "some events accepted, the others listed as rejected", schemas.EVENTS_REPLY
            ),
        }
        | schemas.errors(400, 413, 503),
    )
    def events() -> Response[str]:
        post = runtime().post_events
        if post is None:
            raise UnavailableError("real-time events are not configured in this deployment", retry_after_s=60)
        reply = post(_body(app.current_event))
        headers = {k: v for k, v in getattr(reply, "headers", {}).items() if k.lower() != "content-type"}
        return json_response(reply.status, reply.body, headers)

    @app.get(
        HEALTH_PATH,
        summary="Health and the live model version",
        responses={200: schemas.response("the API can read the serving table", schemas.HEALTH)}
        | schemas.errors(503),
    )
    def health() -> Response[str]:
        return json_response(200, runtime().recommender.health())

    def api_error(exc: ApiError) -> Response[str]:
        return json_response(exc.status, exc.body(), exc.headers())

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        event = app.current_event
        return json_response(404, NotFoundError(f"no route for {event.http_method} {event.path}").body())

    def unexpected(exc: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return json_response(500, {"error": "internal_error", "message": "internal error (logged)"})

    app.exception_handler(ApiError)(api_error)
    app.exception_handler(Exception)(unexpected)
    return app


def _body(event: Any) -> str | bytes | None:
    raw = event.body
    if raw is None or not event.is_base64_encoded:
        return raw  # type: ignore[no-any-return]
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("the body is marked base64 but is not valid base64") from None
