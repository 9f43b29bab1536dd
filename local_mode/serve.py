"""`recsys serve`: the recommendation Lambda's handler behind a local HTTP server, reading the embedded AWS.

With --endpoint, it reads the embedded AWS already running there (for example `recsys demo`'s); without,
it starts one (a moto server on loopback) and creates the tables; --run-dir publishes a model folder into
it first. Registered through the `recsys.commands` entry point: `recsys` never imports local mode.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the recommendation API on 127.0.0.1 from the embedded AWS",
        description="Serve GET /recommendations/{user_id}, GET /similar/{item_id}, POST /events and "
        "GET /health on 127.0.0.1, with the recommendation Lambda's own handler and the last model "
        "published to the embedded AWS.",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="local port (default %(default)s; 0: any free)"
    )
    parser.add_argument(
        "--endpoint", metavar="URL", help="embedded AWS to read (default: start one on loopback)"
    )
    parser.add_argument("--run-dir", metavar="DIR", help="publish this model folder first")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lambdas.recommend import handler
    from local_mode.aws import EmbeddedAws, clients, ensure_serving_resources, environment
    from local_mode.http import LocalHttpServer

    embedded = None if args.endpoint else EmbeddedAws()
    endpoint = args.endpoint or embedded.endpoint  # type: ignore[union-attr]
    env = environment(endpoint)
    os.environ.update(env)  # the handler builds its clients from the environment, as in AWS
    try:
        ensure_serving_resources(clients(endpoint), env)
        if args.run_dir and not _publish(args.run_dir, endpoint):
            return 1
        handler.runtime.cache_clear()
        server = LocalHttpServer(handler.lambda_handler, port=args.port, verbose=args.verbose)
        print(f"embedded AWS: {endpoint}")
        print(f"serving on {server.url} (Ctrl-C to stop); try:")
        print(f"  curl '{server.url}/health'")
        print(f"  curl '{server.url}/recommendations/<user id>?k=10'")
        print(f"publish another model: AWS_ENDPOINT_URL={endpoint} recsys publish --run-dir DIR", flush=True)
        server.serve_until_interrupted()
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _publish(run_dir: str, endpoint: str) -> bool:
    from recsys.cli.publish import run_publish

    args = argparse.Namespace(
        run_dir=run_dir,
        version=None,
        table=None,
        artifacts_bucket=None,
        concurrency=None,
        grace_hours=None,
        endpoint=endpoint,
        json=False,
    )
    return run_publish(args) == 0
