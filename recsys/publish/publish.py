"""One publish, in the order that keeps the live version safe:

1. read model.json; refuse a version that is already live;
2. write the version record as "loading" and add it to the registry;
3. load per-user lists, similar items and the popularity list (BatchWriteItem, in parallel);
4. check the item vectors and copy them to s3://<artifacts>/models/<version>/item_vectors.npz;
5. mark the version record "complete";
6. switch `live` in one conditional transaction (still the version read in 1., and this one complete);
   the version that was live becomes `previous_version`, for rollback;
7. retire versions neither live nor previous (TTL after the grace period).

Stopped anywhere before 6, the live version is unchanged and the API never reads the half-loaded one
(it only follows `live`); step 7 of a later publish retires it. A failure in 7 is logged: the publish
itself has succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys import contracts
from recsys.publish import pointer
from recsys.publish.pointer import PublishError
from recsys.publish.retire import retire_versions
from recsys.publish.settings import PublishSettings
from recsys.publish.source import model_folder
from recsys.publish.writer import BatchWriter
from recsys.serving import model_files, table
from recsys.serving.model_files import RECOMMENDATIONS, SIMILAR, ModelInfo
from recsys.serving.table import LOADING, LivePointer, VersionRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    version: str
    previous_version: str | None
    users: int
    similar_items: int
    popular_items: int
    item_vectors_uri: str | None
    retired: list[str]
    seconds: float
    items_written: int
    batch_requests: int
    retried_items: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def publish(
    run_dir: str,
    dynamodb: Any,
    s3: Any,
    settings: PublishSettings,
    *,
    version: str | None = None,
    clock: Callable[[], float] = time.time,
    writer: BatchWriter | None = None,
) -> PublishResult:
    """Publish the model folder at `run_dir` (a path or an s3:// prefix) as `version` (default: its own)."""
    started = time.perf_counter()
    name = settings.serving_table
    with model_folder(run_dir, s3) as folder:
        info = model_files.read_model_info(folder)
        version = table.check_version(version or info.version)
        live = pointer.read_live(dynamodb, name)
        if live is not None and live.version == version:
            raise PublishError(f"version {version} is already live")
        record = VersionRecord(
            version=version,
            status=LOADING,
            model_kind=info.kind,
            created_at=info.created_at,
            model_created_ms=info.created_ms,
            source=run_dir,
            updated_at=iso(clock()),
        )
        pointer.put_version(dynamodb, name, record)
        pointer.register_version(dynamodb, name, version)
        writer = writer or BatchWriter(dynamodb, settings)
        counts = _load(folder, info, version, writer, settings)
        vectors_uri = _copy_vectors(folder, run_dir, version, s3, settings)
        pointer.put_version(dynamodb, name, pointer.completed(record, counts, vectors_uri, iso(clock())))
    new = LivePointer(
        version=version,
        previous_version=live.version if live else None,
        model_created_ms=info.created_ms,
        item_vectors_uri=vectors_uri,
        published_at=iso(clock()),
    )
    pointer.switch_live(dynamodb, name, new, expected=live.version if live else None)
    warnings, retired = [], []
    try:
        retired = retire_versions(
            dynamodb, settings, {v for v in (version, new.previous_version) if v}, clock()
        )
    except Exception as exc:  # the switch is done; the next publish retires what is left
        logger.exception("retiring old versions failed")
        warnings.append(f"retiring old versions failed ({exc}); the next publish retries")
    return PublishResult(
        version=version,
        previous_version=new.previous_version,
        users=counts["users"],
        similar_items=counts["similar_items"],
        popular_items=counts["popular_items"],
        item_vectors_uri=vectors_uri,
        retired=retired,
        seconds=round(time.perf_counter() - started, 3),
        items_written=counts["users"] + counts["similar_items"] + 1,  # + the popularity list
        batch_requests=writer.requests,
        retried_items=writer.retried_items,
        warnings=warnings,
    )


def _load(
    folder: Path, info: ModelInfo, version: str, writer: BatchWriter, settings: PublishSettings
) -> dict[str, int]:
    users = writer.write(
        table.encode_list(table.user_key(version, user), ids, scores)
        for user, ids, scores in model_files.iter_lists(folder, RECOMMENDATIONS, info.version)
    )
    similar = 0
    if model_files.has_similar_items(folder):
        similar = writer.write(
            table.encode_list(table.item_key(version, item), ids, scores)
            for item, ids, scores in model_files.iter_lists(folder, SIMILAR, info.version)
        )
    popular_ids, popular_scores = model_files.read_popularity(folder, settings.popular_size)
    writer.write([table.encode_list(table.popular_key(version), popular_ids, popular_scores)])
    return {"users": users, "similar_items": similar, "popular_items": len(popular_ids)}


def _copy_vectors(folder: Path, run_dir: str, version: str, s3: Any, settings: PublishSettings) -> str | None:
    path = folder / contracts.MODEL_ITEM_VECTORS_FILE
    if not path.is_file():
        return None
    if not settings.artifacts_bucket:
        raise PublishError(
            f"{path} needs an artifacts bucket: set {contracts.ARTIFACTS_BUCKET_ENV} or --artifacts-bucket"
        )
    data = path.read_bytes()
    model_files.read_item_vectors(data, str(path))  # a broken file fails the publish, not every fold-in
    key = f"{contracts.MODELS_PREFIX}{version}/{contracts.MODEL_ITEM_VECTORS_FILE}"
    uri = f"s3://{settings.artifacts_bucket}/{key}"
    if run_dir.rstrip("/") + "/" + contracts.MODEL_ITEM_VECTORS_FILE != uri:  # not already there
        s3.put_object(Bucket=settings.artifacts_bucket, Key=key, Body=data)
    return uri
