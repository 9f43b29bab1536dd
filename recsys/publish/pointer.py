"""The live pointer, version records and the registry of versions: small items, written with conditions.

The switch is one DynamoDB transaction: the new version's record must say "complete", and the pointer
must still name the version this publish started from (or be absent). Two publishes racing cannot both
win, and a version that did not finish loading can never become live.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from recsys.serving import table
from recsys.serving.table import COMPLETE, LivePointer, VersionRecord

CONDITION_FAILED = ("ConditionalCheckFailedException", "TransactionCanceledException")


class PublishError(RuntimeError):
    """The publish or rollback cannot go on; the message says why and what is live."""


class LiveChangedError(PublishError):
    """The live pointer changed since this publish read it: another publish or a rollback won."""


def error_code(exc: BaseException) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def read_live(dynamodb: Any, table_name: str) -> LivePointer | None:
    item = dynamodb.get_item(TableName=table_name, Key=table.key(table.LIVE_KEY), ConsistentRead=True).get(
        "Item"
    )
    return table.decode_live(item) if item else None


def read_version(dynamodb: Any, table_name: str, version: str) -> VersionRecord | None:
    item = dynamodb.get_item(
        TableName=table_name, Key=table.key(table.version_key(version)), ConsistentRead=True
    ).get("Item")
    return table.decode_version(item) if item else None


def put_version(dynamodb: Any, table_name: str, record: VersionRecord) -> None:
    dynamodb.put_item(TableName=table_name, Item=table.encode_version(record))


def registered_versions(dynamodb: Any, table_name: str) -> set[str]:
    item = dynamodb.get_item(
        TableName=table_name, Key=table.key(table.VERSIONS_KEY), ConsistentRead=True
    ).get("Item")
    return set(item["versions"]["SS"]) if item and "versions" in item else set()


def register_version(dynamodb: Any, table_name: str, version: str) -> None:
    dynamodb.update_item(
        TableName=table_name,
        Key=table.key(table.VERSIONS_KEY),
        UpdateExpression="ADD versions :v",
        ExpressionAttributeValues={":v": {"SS": [version]}},
    )


def unregister_version(dynamodb: Any, table_name: str, version: str) -> None:
    dynamodb.update_item(
        TableName=table_name,
        Key=table.key(table.VERSIONS_KEY),
        UpdateExpression="DELETE versions :v",
        ExpressionAttributeValues={":v": {"SS": [version]}},
    )


def switch_live(dynamodb: Any, table_name: str, new: LivePointer, expected: str | None) -> None:
    """Point `live` at `new.version`, if its record is complete and `live` still names `expected`."""
    if expected is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#pk)"}
        names = {"#pk": table.PK}
        values: dict[str, Any] = {}
    else:
        condition = {"ConditionExpression": "#version = :expected"}
        names = {"#version": "version"}
        values = {":expected": {"S": expected}}
    put: dict[str, Any] = {
        "TableName": table_name,
        "Item": table.encode_live(new),
        "ExpressionAttributeNames": names,
        **condition,
    }
    if values:
        put["ExpressionAttributeValues"] = values
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": table_name,
                        "Key": table.key(table.version_key(new.version)),
                        "ConditionExpression": "#status = :complete",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {":complete": {"S": COMPLETE}},
                    }
                },
                {"Put": put},
            ]
        )
    except Exception as exc:
        if error_code(exc) not in CONDITION_FAILED:
            raise
        current = read_live(dynamodb, table_name)
        record = read_version(dynamodb, table_name, new.version)
        if record is None or record.status != COMPLETE:
            raise PublishError(f"version {new.version} is not complete; live stays {_name(current)}") from exc
        raise LiveChangedError(
            f"the live version changed during the publish (expected {expected or 'none'}, found "
            f"{_name(current)}); {new.version} is loaded but not live: publish or roll back again"
        ) from exc


def rollback(dynamodb: Any, table_name: str, to: str | None, published_at: str) -> LivePointer:
    """Make `to` (default: the previous version) live again; the version rolled back from becomes previous."""
    live = read_live(dynamodb, table_name)
    if live is None:
        raise PublishError("nothing is live: there is nothing to roll back")
    target = to or live.previous_version
    if target is None:
        raise PublishError(f"live version {live.version} has no previous version; name one with --to")
    if target == live.version:
        raise PublishError(f"version {target} is already live")
    record = read_version(dynamodb, table_name, target)
    if record is None:
        raise PublishError(f"version {target} does not exist")
    if record.status != COMPLETE:
        state = record.status + (f", expires at epoch {record.expires_at}" if record.expires_at else "")
        raise PublishError(f"version {target} cannot be made live: it is {state}; publish it again instead")
    new = LivePointer(
        version=target,
        previous_version=live.version,
        model_created_ms=record.model_created_ms,
        item_vectors_uri=record.item_vectors_uri,
        published_at=published_at,
    )
    switch_live(dynamodb, table_name, new, expected=live.version)
    return new


def completed(
    record: VersionRecord, counts: dict[str, int], vectors_uri: str | None, at: str
) -> VersionRecord:
    return replace(record, status=COMPLETE, counts=counts, item_vectors_uri=vectors_uri, updated_at=at)


def _name(live: LivePointer | None) -> str:
    return live.version if live else "none"
