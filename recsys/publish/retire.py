"""Retiring versions: those neither live nor previous get expires_at (DynamoDB TTL deletes them later).

The registry item lists every version a publish has started. A version is retired when it is neither
live nor previous and it is complete, or still loading after `stale_loading_s` (an interrupted publish).
Its record is marked first (so `recsys rollback --to` refuses it), then every item under its key prefix
gets expires_at = now + grace (a parallel Scan for its keys, one UpdateItem per item), then it leaves
the registry. A failure half-way leaves it in the registry, and the next publish finishes the job.

Cost: the Scan reads the whole table, and each UpdateItem is billed like a write of the item. For very
large versions, a table per version dropped whole is cheaper (docs/serving.md).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from recsys.publish import pointer
from recsys.publish.settings import PublishSettings
from recsys.serving import table
from recsys.serving.table import LOADING, RETIRED

logger = logging.getLogger(__name__)


def retire_versions(dynamodb: Any, settings: PublishSettings, keep: set[str], now: float) -> list[str]:
    """Retire what the rules allow; returns the versions retired (in order)."""
    name = settings.serving_table
    expires_at = int(now + settings.grace_s)
    stamp = datetime.fromtimestamp(now, UTC).isoformat()
    retiring = []
    for version in sorted(pointer.registered_versions(dynamodb, name) - keep):
        record = pointer.read_version(dynamodb, name, version)
        if record is None:
            pointer.unregister_version(dynamodb, name, version)
            continue
        if record.status == LOADING and _age_s(record.updated_at, now) < settings.stale_loading_s:
            continue  # maybe another publish still loading it
        if record.status != RETIRED:
            pointer.put_version(
                dynamodb, name, replace(record, status=RETIRED, expires_at=expires_at, updated_at=stamp)
            )
        retiring.append(version)
    if not retiring:
        return []
    keys = _keys_under(dynamodb, settings, [f"{v}#" for v in retiring])
    with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="retire") as pool:
        list(pool.map(lambda pk: _expire(dynamodb, name, pk, expires_at), keys))
    for version in retiring:
        pointer.unregister_version(dynamodb, name, version)
    logger.info("retired %s: %d items expire at epoch %d", ", ".join(retiring), len(keys), expires_at)
    return retiring


def _age_s(updated_at: str, now: float) -> float:
    try:
        return now - datetime.fromisoformat(updated_at).timestamp()
    except ValueError:
        return float("inf")


def _keys_under(dynamodb: Any, settings: PublishSettings, prefixes: list[str]) -> list[str]:
    """Keys starting with any prefix and not yet expiring (parallel Scan, one segment per worker)."""
    names = {"#pk": table.PK, "#ttl": table.TTL}
    values = {f":p{i}": {"S": p} for i, p in enumerate(prefixes)}
    matches = " OR ".join(f"begins_with(#pk, :p{i})" for i in range(len(prefixes)))
    segments = settings.concurrency

    def scan(segment: int) -> list[str]:
        found, start = [], None
        while True:
            request: dict[str, Any] = {
                "TableName": settings.serving_table,
                "ProjectionExpression": "#pk",
                "FilterExpression": f"({matches}) AND attribute_not_exists(#ttl)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "Segment": segment,
                "TotalSegments": segments,
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = dynamodb.scan(**request)
            found += [item[table.PK]["S"] for item in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                return found

    with ThreadPoolExecutor(segments, thread_name_prefix="scan") as pool:
        return sorted(pk for part in pool.map(scan, range(segments)) for pk in part)


def _expire(dynamodb: Any, table_name: str, pk: str, expires_at: int) -> None:
    try:
        dynamodb.update_item(
            TableName=table_name,
            Key=table.key(pk),
            UpdateExpression="SET #ttl = :t",
            ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={"#ttl": table.TTL, "#pk": table.PK},
            ExpressionAttributeValues={":t": {"N": str(expires_at)}},
        )
    except Exception as exc:
        if pointer.error_code(exc) != "ConditionalCheckFailedException":  # deleted meanwhile: nothing to do
            raise
