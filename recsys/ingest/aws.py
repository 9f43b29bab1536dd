"""The AWS calls ingest makes, as protocols (boto3 clients satisfy them; tests can pass fakes), the retry
configuration of those clients, and how S3 errors are told apart."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

# The object (or the version an event names) no longer exists: nothing to process, nothing to retry.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
# The key holds other content than the event saw (unversioned bucket, IfMatch on the ETag): the newer
# upload has its own event.
SUPERSEDED_CODES = frozenset({"PreconditionFailed", "412"})


class S3Client(Protocol):
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def upload_part(self, **kwargs: Any) -> dict[str, Any]: ...
    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def copy(self, CopySource: dict[str, str], Bucket: str, Key: str, **kwargs: Any) -> None: ...  # noqa: N803


class ManifestTable(Protocol):
    """A DynamoDB Table resource (boto3.resource("dynamodb").Table(name))."""

    def put_item(self, **kwargs: Any) -> dict[str, Any]: ...


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ClientError (or its HTTP status as a string), else None."""
    if not isinstance(exc, ClientError):
        return None
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else None


def client_config(max_attempts: int) -> Any:
    """botocore config for the ingest clients: standard retries (throttling, 5xx, with backoff)."""
    from botocore.config import Config  # type: ignore[import-untyped]

    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},  # the first call included
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )
