"""recsys.pipeline_steps: parsing the branches' output and the step events, gate settings, copying an S3
folder (moto) with skipped parts and refused keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from recsys import contracts
from recsys.pipeline_steps import (
    Candidate,
    GateSettings,
    StepError,
    download_folder,
    finish_event,
    metric_records,
    parse_candidates,
)
from tests.unit.recsys.serving.helpers import DUMMY_CREDENTIALS, REAL_AWS_SWITCHES, REGION

BUCKET = "recsys-test-artifacts"


def test_candidates_keep_models_and_errors() -> None:
    found = parse_candidates(
        [
            {"name": "fm", "model_uri": "s3://b/models/fm-r/", "version": "fm-r"},
            {"name": "dsstne", "error": {"Error": "States.TaskFailed", "Cause": "x" * 2000}},
        ]
    )
    assert found[0] == Candidate("fm", "s3://b/models/fm-r/", "fm-r")
    assert found[1].model_uri is None
    assert found[1].error is not None
    assert found[1].error.startswith("States.TaskFailed: x")
    assert len(found[1].error) < 600  # a Cause can be long; the state stays small


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "non-empty list"),
        ([{"model_uri": "s3://b/m/"}], r"candidates\[0\]: expected an object with a string 'name'"),
        ([{"name": "fm", "model_uri": "/tmp/m", "version": "v"}], r"candidates\[0\] \(fm\)"),
        ([{"name": "fm", "model_uri": "s3://b/m/"}], "version"),
    ],
)
def test_bad_candidates_are_named(value: Any, message: str) -> None:
    with pytest.raises(StepError, match=message):
        parse_candidates(value)


def test_gate_settings_from_the_environment() -> None:
    env = {
        contracts.EVAL_K_ENV: "20",
        contracts.GATE_METRIC_ENV: "ndcg@20",
        contracts.GATE_MARGIN_ENV: "0.05",
        contracts.GATE_TOLERANCE_ENV: "0",
    }
    assert GateSettings.from_env(env) == GateSettings(20, "ndcg@20", 0.05, 0.0)
    assert GateSettings.from_env({}) == GateSettings()
    with pytest.raises(StepError, match=contracts.EVAL_K_ENV):
        GateSettings.from_env({contracts.EVAL_K_ENV: "0"})
    with pytest.raises(StepError, match="gate settings"):
        GateSettings.from_env({contracts.GATE_MARGIN_ENV: "ten percent"})
    with pytest.raises(StepError, match=">= 0"):
        GateSettings.from_env({contracts.GATE_TOLERANCE_ENV: "-0.1"})


def test_finish_event() -> None:
    assert finish_event({"run_id": "r1", "succeeded": False}) == ("r1", False)
    with pytest.raises(StepError, match="JSON object"):
        finish_event(["r1"])


def test_metric_records_cover_models_popularity_and_live() -> None:
    evaluation = {"models": {"fm": {"precision@10": 0.2}}, "popularity": {"precision@10": 0.1}, "live": None}
    assert metric_records(evaluation, "r1") == [
        ("fm", "precision@10", 0.2),
        ("popularity", "precision@10", 0.1),
    ]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in REAL_AWS_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_download_folder_skips_what_no_metric_reads(s3: Any, tmp_path: Path) -> None:
    for key in (
        "models/v1/model.json",
        "models/v1/recommendations/part-0.parquet",
        "models/v1/similar_items/part-0.parquet",
        "models/v1/item_vectors.npz",
        "models/v1/",  # a folder marker
        "models/v10/model.json",  # another folder sharing the prefix
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    folder = download_folder(
        s3, f"s3://{BUCKET}/models/v1", tmp_path / "m", ["similar_items/"], ["item_vectors.npz"]
    )
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["model.json", "recommendations/part-0.parquet"]


def test_download_folder_refuses_an_empty_folder_and_escaping_keys(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(StepError, match="no objects"):
        download_folder(s3, f"s3://{BUCKET}/models/missing/", tmp_path / "a", [], [])
    s3.put_object(Bucket=BUCKET, Key="models/v2/../../escape.txt", Body=b"x")
    with pytest.raises(StepError, match="leaves the folder"):
        download_folder(s3, f"s3://{BUCKET}/models/v2/", tmp_path / "b", [], [])
    with pytest.raises(StepError, match="s3://"):
        download_folder(s3, "/local/folder", tmp_path / "c", [], [])
