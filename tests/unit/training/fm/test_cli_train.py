"""`recsys fm train`: a local run end to end, the SageMaker flags reaching the backend, and every bad
flag value refused with exit code 2 and a message that names the flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from recsys import contracts
from recsys.cli.main import main
from tests.unit.training.fm.fm_run import make_fm_run
from training.fm.settings import FmTrainSettings, TrainResult

FAST = ["--epochs", "3", "--num-factors", "4", "--mini-batch-size", "64", "--no-progress"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_fm_run(tmp_path, n_train=300, n_test=100)


def test_trains_locally(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(
        ["fm", "train", "--run", str(run), "--out", str(out), *FAST, "--hp", "factors_lr=0.01", "--seed", "3"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == "local"
    assert summary["model"] == str(out / contracts.FM_MODEL_FILE)
    assert "test:binary_classification_accuracy" in summary["metrics"]
    report = json.loads((out / contracts.FM_METRICS_FILE).read_text())
    assert report["hyperparameters"]["factors_lr"] == "0.01"
    assert report["hyperparameters"]["feature_dim"] == str(
        json.loads((run / "manifest.json").read_text())["feature_dim"]
    )
    assert report["seed"] == 3


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "two"], "--epochs"),
        (["--num-factors", "-1"], "--num-factors"),
        (["--mini-batch-size", "1.5"], "--mini-batch-size"),
        (["--predictor-type", "ranker"], "--predictor-type"),
        (["--hp", "factors_lr=-1"], "--hp factors_lr"),
        (["--hp", "factors_lr=fast"], "--hp factors_lr"),
        (["--hp", "bias_init_method=constant"], "--hp bias_init_method"),
        (["--hp", "learning_rate=0.1"], "--hp: unknown hyperparameter"),
        (["--hp", "factors_lr"], "--hp: expected NAME=VALUE"),
        (["--hp", "feature_dim=7"], "--hp feature_dim"),
        (["--seed", "-1"], "--seed"),
        (["--device", "tpu"], "--device"),
        (["--role-arn", "arn:aws:iam::123456789012:role/r"], "--role-arn: only with --backend sagemaker"),
        (["--spot"], "--spot: only with --backend sagemaker"),
        (["--backend", "sagemaker"], "--role-arn: required"),
        (["--backend", "sagemaker", "--role-arn", "arn:x", "--instance-count", "0"], "--instance-count"),
    ],
)
def test_bad_values_name_their_flag(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], flag: str
) -> None:
    code = main(["fm", "train", "--run", str(run), "--out", str(tmp_path / "out"), "--no-progress", *flags])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"recsys fm train: error: {flag}"), error
    assert not (tmp_path / "out").exists()


def test_a_missing_run_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fm", "train", "--run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "--run" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["fm", "train", "--run", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "--run" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_usage_error(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["fm", "train", "--run", str(run), "--out", str(tmp_path / "o"), "--device", "cuda", *FAST]) == 2
    )
    assert "--device" in capsys.readouterr().err


def test_sagemaker_flags_reach_the_backend(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def fake(settings: FmTrainSettings, *, wait: bool = True) -> TrainResult:
        seen["settings"], seen["wait"] = settings, wait
        return TrainResult(
            backend="sagemaker", model_path="s3://b/fm/tiny/job/output/model.tar.gz", job_name="job"
        )

    monkeypatch.setattr("training.fm.sagemaker.train_sagemaker", fake)
    argv = [
        "fm",
        "train",
        "--run",
        str(run),
        "--out",
        "s3://b/fm/",
        "--backend",
        "sagemaker",
        "--epochs",
        "7",
    ]
    argv += ["--role-arn", "arn:aws:iam::123456789012:role/fm", "--instance-type", "ml.m5.large"]
    argv += [
        "--instance-count",
        "2",
        "--spot",
        "--region",
        "eu-west-1",
        "--no-wait",
        "--hp",
        "factors_wd=0.001",
    ]
    assert main(argv) == 0
    settings: FmTrainSettings = seen["settings"]
    assert seen["wait"] is False
    assert settings.hyperparameters.epochs == 7
    assert settings.hyperparameters.factors_wd == 0.001
    assert settings.sagemaker is not None
    job = settings.sagemaker
    assert (job.role_arn, job.instance_type, job.instance_count, job.spot, job.region) == (
        "arn:aws:iam::123456789012:role/fm",
        "ml.m5.large",
        2,
        True,
        "eu-west-1",
    )
    assert json.loads(capsys.readouterr().out)["job"] == "job"
