"""The FM import + top-k Batch job on moto S3: run + SageMaker model in, the publish format out."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from recsys import contracts
from tests.unit.training.fm.ndarray_writer import fm_model_tar, fm_params
from tests.unit.training.fm.test_recommend import N_ITEMS, N_USERS, make_run
from training.fm.job import main

CURATED, ARTIFACTS = "curated", "artifacts"
RUN_PREFIX = "curated/runs/t1/"
OUT_PREFIX = "models/fm-t1/"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (CURATED, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        yield client


def env() -> dict[str, str]:
    return {
        contracts.FM_TOPK_MODEL_URI_ENV: f"s3://{ARTIFACTS}/fm/t1/job/output/model.tar.gz",
        contracts.FM_TOPK_RUN_URI_ENV: f"s3://{CURATED}/{RUN_PREFIX}",
        contracts.FM_TOPK_OUTPUT_URI_ENV: f"s3://{ARTIFACTS}/{OUT_PREFIX}",
        contracts.FM_TOPK_MODEL_VERSION_ENV: "fm-t1",
    }


def upload_run(s3: Any, run: Path) -> None:
    for path in run.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), CURATED, RUN_PREFIX + path.relative_to(run).as_posix())
    s3.put_object(Bucket=CURATED, Key=RUN_PREFIX + "fm/train/part-0.pbr", Body=b"not needed by top-k")


def test_a_sagemaker_model_becomes_a_published_folder(s3: Any, tmp_path: Path) -> None:
    # GIVEN a preprocessing run and a SageMaker model.tar.gz trained on it
    run = make_run(tmp_path)
    upload_run(s3, run)
    feature_dim = json.loads((run / contracts.RUN_MANIFEST_FILE).read_text())["blocks"]["categories"]
    dim = feature_dim["offset"] + feature_dim["size"]
    rng = np.random.default_rng(3)
    params = fm_params(
        0.1, rng.normal(size=dim).astype(np.float32), rng.normal(size=(dim, 4)).astype(np.float32)
    )
    tar = fm_model_tar(tmp_path / "model.tar.gz", params, feature_dim=dim, num_factors=4)
    s3.upload_file(str(tar), ARTIFACTS, "fm/t1/job/output/model.tar.gz")

    # WHEN the job runs
    assert main(env=env(), s3=s3) == 0

    # THEN the publish format is under the version's prefix, every user ranked, model.json present
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=OUT_PREFIX)["Contents"]}
    names = {key.removeprefix(OUT_PREFIX).split("/")[0] for key in keys}
    assert {
        contracts.MODEL_INFO_FILE,
        contracts.MODEL_POPULARITY_FILE,
        contracts.MODEL_ITEM_VECTORS_FILE,
    } <= names
    parts = sorted(key for key in keys if key.startswith(OUT_PREFIX + contracts.MODEL_RECS_DIR))
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=ARTIFACTS, Key=parts[0])["Body"].read()))
    assert table.num_rows == N_USERS
    assert set(table.column(contracts.RECS_MODEL_VERSION_COLUMN).to_pylist()) == {"fm-t1"}
    assert all(
        len(items) == min(contracts.MAX_TOP_K, N_ITEMS) - 0 or items
        for items in table.column(contracts.RECS_ITEM_IDS_COLUMN).to_pylist()
    )
    info = json.loads(
        s3.get_object(Bucket=ARTIFACTS, Key=OUT_PREFIX + contracts.MODEL_INFO_FILE)["Body"].read()
    )
    assert info["model_version"] == "fm-t1"


def test_missing_settings_and_inputs_fail_with_one_line(
    s3: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    partial = env()
    del partial[contracts.FM_TOPK_MODEL_VERSION_ENV]
    assert main(env=partial, s3=s3) == 1
    assert contracts.FM_TOPK_MODEL_VERSION_ENV in caplog.text
    assert main(env=env(), s3=s3) == 1  # no run uploaded
    assert "no preprocessing run there" in caplog.text
    assert "Contents" not in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=OUT_PREFIX)
