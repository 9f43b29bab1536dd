"""The FM import + top-k Batch job (the state machine's step after SageMaker training).

    RECSYS_FM_MODEL_URI       s3://…/model.tar.gz of the training job (or a model.npz artifact)
    RECSYS_FM_RUN_URI         s3://<curated>/curated/runs/<run id>/ (the preprocessing run it trained on)
    RECSYS_FM_OUTPUT_URI      s3://<artifacts>/models/<version>/ (the publish format goes here)
    RECSYS_FM_MODEL_VERSION   the version to stamp on every list (fm-<run id>)

It downloads only what ranking needs from the run (manifest, id maps, popularity, the train split — not
the FM channels or the DSSTNE text), imports the SageMaker model with the run's layout (numpy only, no
mxnet), ranks every user's unseen items and every item's neighbours (`training.fm.recommend`), and uploads
the folder with model.json last, so `publish` never sees a half-written version. Exit 0: published; 1:
failed, one line says why, nothing complete was published.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from recsys import contracts

LOG = logging.getLogger("recsys.fm.job")
RUN_PARTS = (
    contracts.RUN_MANIFEST_FILE,
    contracts.RUN_USER_MAP_DIR,
    contracts.RUN_ITEM_MAP_DIR,
    contracts.RUN_CATEGORY_MAP_DIR,
    contracts.RUN_POPULARITY_DIR,
    contracts.RUN_TRAIN_DIR,
)
"""What `recommend` reads from a run; the channels (fm/, dsstne/) can be gigabytes and are not needed."""


class JobError(Exception):
    """A failure with a one-line reason."""


def split_uri(uri: str, what: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise JobError(f"{what}: expected an s3://bucket/key URI, got {uri!r}")
    return bucket, key


def download_prefix(s3: Any, uri: str, target: Path, parts: Sequence[str] | None = None) -> int:
    """Copy the objects under an S3 prefix (only those under `parts`, when given) into `target`."""
    bucket, prefix = split_uri(uri, "download")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            path = PurePosixPath(relative)
            if not relative or relative.endswith("/") or ".." in path.parts:
                continue
            if parts is not None and not any(
                relative == part or (part.endswith("/") and relative.startswith(part)) for part in parts
            ):
                continue
            local = target.joinpath(*path.parts)
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(local))
            count += 1
    return count


def upload_folder(s3: Any, folder: Path, uri: str) -> int:
    """Upload every file under `folder` to the prefix, model.json last (it marks the folder complete)."""
    bucket, prefix = split_uri(uri, contracts.FM_TOPK_OUTPUT_URI_ENV)
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")),
        key=lambda p: (p.name == contracts.MODEL_INFO_FILE, str(p)),
    )
    for path in files:
        s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())
    return len(files)


def run(env: Mapping[str, str], s3: Any, workdir: Path) -> dict[str, Any]:
    from training.fm.artifact import ArtifactError, FmModel
    from training.fm.recommend import RecommendError, RecommendSettings, recommend
    from training.fm.sagemaker_model import import_sagemaker_model

    values = {}
    for name in (
        contracts.FM_TOPK_MODEL_URI_ENV,
        contracts.FM_TOPK_RUN_URI_ENV,
        contracts.FM_TOPK_OUTPUT_URI_ENV,
        contracts.FM_TOPK_MODEL_VERSION_ENV,
    ):
        if not env.get(name, "").strip():
            raise JobError(f"environment variable {name} is not set")
        values[name] = env[name].strip()
    run_dir, out = workdir / "run", workdir / "model"
    LOG.info("downloading the run %s", values[contracts.FM_TOPK_RUN_URI_ENV])
    if not download_prefix(s3, values[contracts.FM_TOPK_RUN_URI_ENV], run_dir, RUN_PARTS):
        raise JobError(f"{values[contracts.FM_TOPK_RUN_URI_ENV]}: no preprocessing run there")
    model_uri = values[contracts.FM_TOPK_MODEL_URI_ENV]
    bucket, key = split_uri(model_uri, contracts.FM_TOPK_MODEL_URI_ENV)
    source = workdir / PurePosixPath(key).name
    LOG.info("downloading the model %s", model_uri)
    s3.download_file(bucket, key, str(source))
    artifact = workdir / contracts.FM_MODEL_FILE
    try:
        if source.suffix == ".npz":
            FmModel.load(source).save(artifact)
        else:
            model = import_sagemaker_model(source, manifest=run_dir / contracts.RUN_MANIFEST_FILE)
            model.save(artifact)
        result = recommend(
            RecommendSettings(
                model=artifact,
                run=run_dir,
                out=out,
                model_version=values[contracts.FM_TOPK_MODEL_VERSION_ENV],
                progress=False,
            )
        )
    except (ArtifactError, RecommendError) as exc:
        raise JobError(str(exc)) from None
    uploaded = upload_folder(s3, out, values[contracts.FM_TOPK_OUTPUT_URI_ENV])
    LOG.info("published %s (%d files)", values[contracts.FM_TOPK_OUTPUT_URI_ENV], uploaded)
    return {
        "model_version": result.model_version,
        "users": result.lists_written,
        "similar_items": result.similar_written,
        "files": uploaded,
        "seconds": round(result.seconds, 3),
    }


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None, s3: Any = None) -> int:
    """Run the job; `env` and `s3` (a boto3 S3 client) are injectable for tests."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    LOG.setLevel(logging.INFO)
    try:
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        with tempfile.TemporaryDirectory(prefix="fm-job-") as tmp:
            summary = run(os.environ if env is None else env, s3, Path(tmp))
    except JobError as exc:
        LOG.error("failed: %s", exc)
        return 1
    except Exception as exc:  # S3 errors, bugs: one clear line, then the traceback
        LOG.exception("failed: %s: %s", type(exc).__name__, exc)
        return 1
    LOG.info("done: %s", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
