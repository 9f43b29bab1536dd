"""Where a model folder comes from: a local directory, or an S3 prefix copied to a temporary directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from recsys.publish.pointer import PublishError


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise PublishError(f"{uri!r} is not an s3://bucket/prefix URI")
    return bucket, key


@contextmanager
def model_folder(run_dir: str, s3: Any) -> Iterator[Path]:
    """A local path to the model folder (an S3 prefix is downloaded first, deleted after)."""
    if not run_dir.startswith("s3://"):
        path = Path(run_dir)
        if not path.is_dir():
            raise PublishError(f"{run_dir}: not a directory")
        yield path
        return
    bucket, prefix = split_s3_uri(run_dir)
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    with tempfile.TemporaryDirectory(prefix="recsys-publish-") as tmp:
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = PurePosixPath(obj["Key"][len(prefix) :])
                if not relative.parts or ".." in relative.parts or obj["Key"].endswith("/"):
                    continue
                target = Path(tmp, *relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
                count += 1
        if count == 0:
            raise PublishError(f"{run_dir}: no objects under this prefix")
        yield Path(tmp)
