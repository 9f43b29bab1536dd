"""The file operations Spark's writers do not cover: files written by executors' Python (the per-user
pass's Parquet and text parts, recordIO shards) and by the driver (small maps, JSON), reads, clean-up.

Paths are local (the local runner, tests) or `s3://bucket/key` (Glue). Spark itself writes only tables
too large for the driver (maps beyond `glue.maps.DRIVER_MAPS_MAX`) and the popularity. S3 goes through
boto3, imported only when an `s3://` URI is used: Glue provides it, and the local runner never needs it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

S3_SCHEME = "s3://"
FILE_SCHEME = "file://"
PARQUET_COMPRESSION = "snappy"  # what Spark's writer uses


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEME)


def join(base: str, *parts: str) -> str:
    """`base/part/…` with exactly one slash between parts (a trailing slash on a part is kept)."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out + ("/" if parts and parts[-1].endswith("/") else "")


def local_path(uri: str) -> Path:
    return Path(uri[len(FILE_SCHEME) :] if uri.startswith(FILE_SCHEME) else uri)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    return bucket, key


def _client() -> Any:
    import boto3  # type: ignore[import-untyped]  # Glue provides it; only S3 URIs get here

    return boto3.client("s3")


def read_bytes(uri: str) -> bytes | None:
    """The bytes at `uri`, or None when there is no such file."""
    if not is_s3(uri):
        path = local_path(uri)
        return path.read_bytes() if path.is_file() else None
    bucket, key = _split(uri)
    client = _client()
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def read_text(uri: str) -> str | None:
    """The UTF-8 text at `uri`, or None when there is no such file."""
    body = read_bytes(uri)
    return None if body is None else body.decode("utf-8")


def write_text(uri: str, text: str) -> None:
    if not is_s3(uri):
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)  # readers never see half a manifest
        return
    bucket, key = _split(uri)
    _client().put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json")


def put_file(source: Path, uri: str) -> None:
    """Copy a finished local file to `uri` (an upload on S3)."""
    if not is_s3(uri):
        target = local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return
    bucket, key = _split(uri)
    _client().upload_file(str(source), bucket, key)


@contextmanager
def files_for(folder: str) -> Iterator[Path]:
    """A local folder for an executor to write finished files into, which end up under `folder`: the
    folder itself when it is local (created if missing), else a scratch folder whose files are uploaded
    when the block ends without an error (and deleted either way)."""
    if not is_s3(folder):
        path = local_path(folder)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    scratch = Path(tempfile.mkdtemp(prefix="recsys-part-"))
    try:
        yield scratch
        for path in sorted(scratch.iterdir()):
            put_file(path, join(folder, path.name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_parquet(table: pa.Table, folder: str, name: str) -> None:
    """One Parquet file `name` under `folder` (local or S3), compressed as Spark's writer does."""
    with files_for(folder) as local:
        pq.write_table(table, local / name, compression=PARQUET_COMPRESSION)


def read_parquet(uri: str, columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet file (local or S3) that a pass wrote; a missing file is an error naming it."""
    if not is_s3(uri):
        return pq.read_table(local_path(uri), columns=columns)
    body = read_bytes(uri)
    if body is None:
        raise FileNotFoundError(f"{uri}: a file an earlier pass reported writing is missing")
    return pq.read_table(pa.BufferReader(body), columns=columns)


def delete_tree(uri: str) -> None:
    """Remove everything under `uri` (a folder, or a key prefix on S3); nothing there is fine."""
    if not is_s3(uri):
        path = local_path(uri)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        return
    bucket, prefix = _split(uri.rstrip("/") + "/")
    client = _client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
