"""JSON schemas of the API's answers, as plain dicts: the routes declare them (OpenAPI) without pydantic.

Powertools would build these from pydantic models, but importing pydantic costs the Lambda ~100 ms of
cold start; `recsys openapi` only needs the schemas themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from recsys.contracts import MAX_EVENTS_PER_REQUEST, MAX_ID_LENGTH, MAX_TOP_K
from recsys.serving.validation import DEFAULT_K

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

JSON = "application/json"

ITEM = {
    "type": "object",
    "required": ["item_id", "title", "categories", "score"],
    "properties": {
        "item_id": {"type": "string"},
        "title": {
            "type": ["string", "null"],
            "description": "from the items table; null if not in the catalog",
        },
        "categories": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number", "description": "higher is better; see docs/serving.md for each source"},
    },
}
RECOMMENDATIONS = {
    "type": "object",
    "required": ["user_id", "model_version", "source", "items"],
    "properties": {
        "user_id": {"type": "string"},
        "model_version": {"type": ["string", "null"], "description": "null before the first publish"},
        "source": {
            "type": "string",
            "enum": ["personalized", "realtime", "popular", "catalog"],
            "description": "personalized: the precomputed list; realtime: blended with a fold-in of recent "
            "events; popular: the model does not know the user; catalog: no model published yet",
        },
        "items": {"type": "array", "items": ITEM, "maxItems": MAX_TOP_K},
    },
}
SIMILAR = {
    "type": "object",
    "required": ["item_id", "model_version", "items"],
    "properties": {
        "item_id": {"type": "string"},
        "model_version": {"type": "string"},
        "items": {"type": "array", "items": ITEM, "maxItems": MAX_TOP_K},
    },
}
HEALTH = {
    "type": "object",
    "required": ["status", "model_version", "published_at"],
    "properties": {
        "status": {"type": "string", "enum": ["ok"]},
        "model_version": {"type": ["string", "null"]},
        "published_at": {"type": ["string", "null"]},
    },
}
ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {
            "type": "string",
            "description": "a stable code: invalid_request, not_found, unavailable, ...",
        },
        "message": {"type": "string"},
        "field": {"type": "string", "description": "the parameter at fault, when there is one"},
    },
}
EVENTS_REQUEST = {
    "description": f'One event object, or {{"events": [...]}} with at most {MAX_EVENTS_PER_REQUEST} events '
    "(fields: docs/serving.md and recsys.events.model).",
    "type": "object",
}
EVENTS_REPLY = {
    "type": "object",
    "description": "the events domain's reply (recsys.events.service): accepted, rejected, events",
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {"type": "array", "items": {"type": "object"}},
        "events": {"type": "array", "items": {"type": "object"}},
    },
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}


def response(
    description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None
) -> OpenAPIResponse:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return cast("OpenAPIResponse", answer)


def errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    text = {
        400: "invalid input (the body names the field)",
        404: "unknown item, or no such route",
        413: "request body too large",
        503: "throttled, or no model published yet: retry after Retry-After seconds",
    }
    return {s: response(text[s], ERROR, RETRY_AFTER if s == 503 else None) for s in statuses}


def id_parameter(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"{what} id, percent-encoded: 1 to {MAX_ID_LENGTH} characters, no control characters",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
    }


K_PARAMETER = {
    "name": "k",
    "in": "query",
    "required": False,
    "description": f"how many items (default {DEFAULT_K})",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": DEFAULT_K},
}
