"""The OpenAPI 3 document of the HTTP API, generated from the routes of `recsys.serving.api`.

Powertools generates paths, operations, path parameters and the declared responses; the parameter
constraints and the events body, which it can only derive from pydantic-validated signatures, come from
`api.OPERATION_DOCS` (the same constants the validator uses). Needs pydantic (the `[parser]` extra).
"""

from __future__ import annotations

import json
from typing import Any

from recsys import __version__
from recsys.serving.api import OPERATION_DOCS, build_app

TITLE = "recsys recommendation API"
DESCRIPTION = (
    "Recommendations for users, similar items and real-time events. Deployed behind a Lambda Function URL "
    "with AWS_IAM auth: sign requests with SigV4 (service `lambda`). See docs/serving.md."
)


def openapi_document() -> dict[str, Any]:
    def no_runtime() -> Any:
        raise RuntimeError("the OpenAPI document is generated without serving anything")

    app = build_app(no_runtime)
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(title=TITLE, version=__version__, description=DESCRIPTION)
    )
    for (path, method), extra in OPERATION_DOCS.items():
        operation = document["paths"][path][method]
        if "parameters" in extra:
            operation["parameters"] = extra["parameters"]
        if "requestBody" in extra:
            operation["requestBody"] = extra["requestBody"]
    return document
