"""Request validation and the API's errors: every bad input becomes a 4xx with a JSON body naming the field.

Ids follow the ingest rule (`recsys.validation.values.check_id`, re-stated here without its Arrow imports
so the Lambda starts lean): not blank, at most MAX_ID_LENGTH characters, no control characters. An id the
catalog accepts can therefore always be asked for.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from recsys.contracts import MAX_ID_LENGTH, MAX_TOP_K

DEFAULT_K = 10
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")  # what the CSV contract forbids in ids
_DIGITS = re.compile(r"[0-9]{1,4}")


class ApiError(Exception):
    """An answer other than 200: HTTP status, a stable code, a message for people, the field at fault."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class BadRequestError(ApiError):
    status = 400
    code = "invalid_request"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class UnavailableError(ApiError):
    """Temporarily unable to answer (throttled, no model yet): clients retry after Retry-After seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


def check_id(value: str, field: str) -> str:
    """The id itself, or BadRequestError naming the field and the reason."""
    if not value.strip(" "):
        raise BadRequestError(f"{field} is empty", field=field)
    if len(value) > MAX_ID_LENGTH:
        raise BadRequestError(
            f"{field} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed", field=field
        )
    if CONTROL_CHARACTERS.search(value):
        raise BadRequestError(f"{field} contains a control character", field=field)
    return value


def path_id(raw: str, field: str, *, percent_encoded: bool) -> str:
    """An id from a path segment: percent-decoded as UTF-8 (Function URLs pass the path encoded), checked."""
    if percent_encoded:
        if len(raw) > 3 * 4 * MAX_ID_LENGTH:  # longer than any valid id, even fully encoded: skip decoding
            raise BadRequestError(f"{field} is longer than {MAX_ID_LENGTH} characters", field=field)
        try:
            raw = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError(f"{field} is not valid UTF-8 once percent-decoded", field=field) from None
    return check_id(raw, field)


def parse_k(raw: str | None) -> int:
    """`?k=`: absent means DEFAULT_K; otherwise a plain decimal integer in 1..MAX_TOP_K."""
    if raw is None:
        return DEFAULT_K
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_TOP_K:
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        raise BadRequestError(f"k must be an integer from 1 to {MAX_TOP_K}; got {shown!r}", field="k")
    return int(raw)
