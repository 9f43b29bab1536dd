"""`recsys publish` and `recsys rollback`: load a model version into the serving table and make it live,
or make an earlier version live again.

Table and bucket names come from the environment (RECSYS_SERVING_TABLE, RECSYS_ARTIFACTS_BUCKET) or the
flags; the AWS endpoint from AWS_ENDPOINT_URL or --endpoint (local mode's embedded AWS).
Exit 0: done; 1: the publish or rollback did not happen (the live version is unchanged); 2: bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="load a model folder into the serving table and switch the live version",
        description=(
            "Load one model version (model.json, recommendations/, similar_items/, popularity.parquet, "
            "item_vectors.npz) into the serving table, then switch the live pointer atomically; the live "
            "version becomes the previous one (for `recsys rollback`). Interrupted, it leaves the live "
            "version unchanged."
        ),
    )
    parser.add_argument(
        "--run-dir", required=True, metavar="DIR", help="model folder: a directory or s3:// prefix"
    )
    parser.add_argument("--version", help="version id to publish under (default: model.json's model_version)")
    parser.add_argument("--concurrency", type=int, help="BatchWriteItem requests in flight (default 8)")
    parser.add_argument("--grace-hours", type=float, help="hours before retired versions expire (default 72)")
    _common(parser)
    parser.add_argument(
        "--artifacts-bucket", help="bucket for item vectors (default: $RECSYS_ARTIFACTS_BUCKET)"
    )
    parser.set_defaults(handler=run_publish)

    rollback = subparsers.add_parser(
        "rollback",
        help="make the previous (or a named) model version live again",
        description="Switch the live pointer back to the previous version, or to --to VERSION if that "
        "version is complete and not retired. The version rolled back from becomes the previous one.",
    )
    rollback.add_argument(
        "--to", metavar="VERSION", help="the version to make live (default: the previous one)"
    )
    _common(rollback)
    rollback.set_defaults(handler=run_rollback)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="serving table (default: $RECSYS_SERVING_TABLE)")
    parser.add_argument("--endpoint", metavar="URL", help="AWS endpoint (default: $AWS_ENDPOINT_URL or AWS)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _clients(endpoint: str | None) -> tuple[Any, Any]:
    import boto3  # type: ignore[import-untyped]

    from recsys.serving.runtime import client_config

    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"config": client_config(8)}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return session.client("dynamodb", **kwargs), session.client("s3", **kwargs)


def run_publish(args: argparse.Namespace) -> int:
    from recsys.publish.pointer import PublishError
    from recsys.publish.publish import publish
    from recsys.publish.settings import PublishSettings, PublishSettingsError
    from recsys.publish.writer import LoadError
    from recsys.serving.model_files import ModelFormatError
    from recsys.serving.table import VersionError

    try:
        settings = PublishSettings.from_env(
            os.environ,
            serving_table=args.table,
            artifacts_bucket=args.artifacts_bucket,
            concurrency=args.concurrency,
            grace_s=None if args.grace_hours is None else args.grace_hours * 3600,
        )
        dynamodb, s3 = _clients(args.endpoint)
        result = publish(args.run_dir, dynamodb, s3, settings, version=args.version)
    except (PublishSettingsError, ModelFormatError, VersionError) as exc:
        print(f"recsys publish: error: {exc}", file=sys.stderr)
        return 2
    except (PublishError, LoadError) as exc:
        print(f"recsys publish: not published: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(
            f"published {result.version} ({result.users:,} users, {result.similar_items:,} similar lists, "
            f"{result.popular_items} popular) in {result.seconds:.1f} s; previous: "
            f"{result.previous_version or 'none'}; retired: {', '.join(result.retired) or 'none'}"
        )
    for warning in result.warnings:
        print(f"recsys publish: warning: {warning}", file=sys.stderr)
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from recsys.publish.pointer import PublishError, rollback
    from recsys.publish.publish import iso
    from recsys.publish.settings import PublishSettings, PublishSettingsError

    try:
        settings = PublishSettings.from_env(os.environ, serving_table=args.table)
        dynamodb, _ = _clients(args.endpoint)
        import time

        live = rollback(dynamodb, settings.serving_table, args.to, iso(time.time()))
    except PublishSettingsError as exc:
        print(f"recsys rollback: error: {exc}", file=sys.stderr)
        return 2
    except PublishError as exc:
        print(f"recsys rollback: not rolled back: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"version": live.version, "previous_version": live.previous_version}))
    else:
        print(f"live: {live.version} (previous: {live.previous_version})")
    return 0
