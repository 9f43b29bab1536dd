"""Recommendation Lambda: Function URL (or API Gateway HTTP API) events → `recsys.serving.api`.

Thin on purpose: the routes, validation and logic live in `recsys.serving`; this module builds the
resolver at import (Powertools and pure-Python modules only, ~80 ms) and the clients on the first request
(boto3, ~100 ms more, then cached for the container's life). numpy loads with the first fold-in.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from recsys import contracts
from recsys.serving.api import build_app
from recsys.serving.runtime import Runtime, runtime_from_env

logger = Logger(service=contracts.RECOMMEND_SERVICE_NAME)


@cache
def runtime() -> Runtime:
    """Built on the first event, so a test or local mode can set the environment first."""
    return runtime_from_env(os.environ)


app = build_app(lambda: runtime())  # looked up per call: tests may replace `runtime`


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
