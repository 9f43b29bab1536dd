"""`recsys openapi`: print the HTTP API's OpenAPI 3 document, generated from the routes in the code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "openapi",
        help="print the recommendation API's OpenAPI 3 document (JSON)",
        description="Generate the OpenAPI 3.1 document of the recommendation API from its routes "
        "(recsys.serving.api) and print it, or write it to --out.",
    )
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        from recsys.serving.openapi import openapi_document
    except ImportError as exc:  # Powertools or pydantic missing: the [aws] extra
        print(f"recsys openapi: error: {exc} (install the [aws] extra)", file=sys.stderr)
        return 2
    text = json.dumps(openapi_document(), indent=2) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
