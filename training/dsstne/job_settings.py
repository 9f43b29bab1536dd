"""Settings of the DSSTNE Batch job, parsed once from the environment (names in `recsys/contracts.py`).

Pure: no AWS calls, so every mistake in a job definition or a submit override is caught, and named by its
environment variable, before the job downloads anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from recsys import contracts

DEFAULT_EPOCHS = 10  # the values of DSSTNE's MovieLens sample (train -b 256 -e 10, predict -k 10)
DEFAULT_BATCH = 256
DEFAULT_TOP_K = 10
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$")  # one S3 key segment, no '/' or '..'


class JobError(Exception):
    """A failure with a one-line reason; the job exits 1 and publishes nothing."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (an object) or a key prefix ending in "/" (a folder)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        return S3Location(self.bucket, self.key + name)


def parse_s3_uri(uri: str, *, folder: bool, what: str) -> S3Location:
    """`s3://bucket/key`; a folder's key gets a trailing "/" (the bucket root is "")."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?(.*)", uri)
    if not match or (not folder and not match.group(2)):
        shape = "s3://bucket/prefix/" if folder else "s3://bucket/key"
        raise JobError(f"{what}: expected {shape}, got {uri!r}")
    key = match.group(2)
    if folder and key and not key.endswith("/"):
        key += "/"
    return S3Location(match.group(1), key)


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """What one run does, parsed once from the environment."""

    run_id: str
    input: S3Location
    output: S3Location
    config: S3Location
    config_explicit: bool = False
    """The config was named by its environment variable (a missing one is then an error, not the default)."""
    epochs: int = DEFAULT_EPOCHS
    batch: int = DEFAULT_BATCH
    top_k: int = DEFAULT_TOP_K
    parallel: str = "data"  # how train splits the work when the job has several GPUs
    precision: str = "fp32"  # train --precision (DSSTNE's fp32 unless the job definition asks)


def settings_from_env(env: Mapping[str, str]) -> JobSettings:
    """Read the job's settings; every problem names its environment variable."""
    run_id = env.get(contracts.DSSTNE_RUN_ID_ENV, "")
    if not _RUN_ID.match(run_id):
        raise JobError(
            f"{contracts.DSSTNE_RUN_ID_ENV}: expected a run id (letters, digits, '.', '_', '=', '-'; "
            f"at most 128), got {run_id!r}"
        )
    run_prefix = f"{contracts.DSSTNE_PREFIX}{run_id}/"
    source = _folder(env, contracts.DSSTNE_INPUT_URI_ENV, contracts.CURATED_BUCKET_ENV, run_prefix)
    target = _folder(env, contracts.DSSTNE_OUTPUT_URI_ENV, contracts.ARTIFACTS_BUCKET_ENV, run_prefix)
    config_uri = env.get(contracts.DSSTNE_CONFIG_URI_ENV)
    config = (
        parse_s3_uri(config_uri, folder=False, what=contracts.DSSTNE_CONFIG_URI_ENV)
        if config_uri
        else source.child(contracts.DSSTNE_CONFIG_FILE)
    )
    return JobSettings(
        run_id=run_id,
        input=source,
        output=target,
        config=config,
        config_explicit=bool(config_uri),
        epochs=_positive(env, contracts.DSSTNE_EPOCHS_ENV, DEFAULT_EPOCHS),
        batch=_positive(env, contracts.DSSTNE_BATCH_ENV, DEFAULT_BATCH),
        top_k=_positive(env, contracts.DSSTNE_TOP_K_ENV, DEFAULT_TOP_K),
        parallel=_parallel(env.get(contracts.DSSTNE_PARALLEL_ENV, "") or "data"),
        precision=_precision(env.get(contracts.DSSTNE_PRECISION_ENV, "") or "fp32"),
    )


def _precision(value: str) -> str:
    if value not in contracts.DSSTNE_PRECISIONS:
        expected = ", ".join(contracts.DSSTNE_PRECISIONS)
        raise JobError(f"{contracts.DSSTNE_PRECISION_ENV}: expected one of {expected}, got {value!r}")
    return value


def _parallel(value: str) -> str:
    if value not in ("data", "model"):
        raise JobError(f"{contracts.DSSTNE_PARALLEL_ENV}: expected 'data' or 'model', got {value!r}")
    return value


def _folder(env: Mapping[str, str], uri_name: str, bucket_name: str, run_prefix: str) -> S3Location:
    if env.get(uri_name):
        return parse_s3_uri(env[uri_name], folder=True, what=uri_name)
    if not env.get(bucket_name):
        raise JobError(f"{uri_name} or {bucket_name}: one of them must be set")
    return parse_s3_uri(f"s3://{env[bucket_name]}/{run_prefix}", folder=True, what=bucket_name)


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise JobError(f"{name}: expected a whole number >= 1, got {text!r}")
    return int(text)
