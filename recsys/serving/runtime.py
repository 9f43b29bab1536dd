"""What one container builds once: settings, clients, the recommender, and the events function.

Built on the first request (not at import), so the Lambda's cold import stays lean (boto3 alone costs
~100 ms) and tests or local mode can set the environment first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from recsys.serving.service import Recommender
from recsys.serving.settings import ServingSettings
from recsys.serving.store import ServingStore

logger = logging.getLogger(__name__)


class EventsReply(Protocol):
    """What `recsys.events.service.post_events` returns."""

    @property
    def status(self) -> int: ...
    @property
    def body(self) -> dict[str, Any]: ...


PostEvents = Callable[[str | bytes | None], EventsReply]


@dataclass(frozen=True)
class Runtime:
    settings: ServingSettings
    recommender: Recommender
    post_events: PostEvents | None  # None: events are not configured here (POST /events answers 503)


def client_config(max_attempts: int) -> Any:
    """botocore config: standard retries (throttling, 5xx; backoff with jitter), short timeouts."""
    from botocore.config import Config  # type: ignore[import-untyped]

    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )


def build_runtime(
    settings: ServingSettings, dynamodb: Any, s3: Callable[[], Any], post_events: PostEvents | None
) -> Runtime:
    """The runtime from clients made elsewhere (tests, benchmarks); `s3` is called on first fold-in."""
    return Runtime(settings, Recommender(ServingStore(settings, dynamodb, s3), settings), post_events)


def runtime_from_env(env: Mapping[str, str], post_events: PostEvents | None = None) -> Runtime:
    """Settings from the environment, boto3 clients (endpoint from AWS_ENDPOINT_URL, if set).

    `post_events` defaults to the events domain's `post_events` with `EventSinks.from_env(env)`; if the
    events domain cannot be set up here, POST /events answers 503 and the reason is logged.
    """
    import boto3  # type: ignore[import-untyped]

    settings = ServingSettings.from_env(env)
    session = boto3.session.Session()
    dynamodb = session.client("dynamodb", config=client_config(settings.dynamodb_max_attempts))

    @cache
    def s3() -> Any:
        return session.client("s3", config=client_config(3))

    return build_runtime(settings, dynamodb, s3, post_events or events_from_env(env))


def events_from_env(env: Mapping[str, str]) -> PostEvents | None:
    try:
        from recsys.events.service import EventSinks, post_events

        sinks = EventSinks.from_env(env)
    except Exception:
        logger.exception("POST /events is unavailable: the events domain could not be set up")
        return None

    def post(body: str | bytes | None) -> EventsReply:
        reply: EventsReply = post_events(body, sinks)
        return reply

    return post
