"""The local backend on a tiny run: it learns, writes the artifact and metrics.json, names its metrics as
SageMaker does (values checked by hand), is reproducible, and reads its run and output from S3 too."""

from __future__ import annotations

import json
import math
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from recsys import contracts
from tests.unit.training.fm.fm_run import N_CATS, N_ITEMS, N_USERS, make_fm_run, planted_rows
from training.fm.artifact import FmModel
from training.fm.data import read_channel, read_manifest, rows_from_csr
from training.fm.hyperparameters import FmHyperparameters
from training.fm.local import LocalTrainingError, fit, train_local
from training.fm.metrics import ACCURACY, CROSS_ENTROPY, F_BETA, RMSE, metrics_of
from training.fm.settings import FmTrainSettings

FEATURE_DIM = N_USERS + N_ITEMS + N_CATS


def hyper(**changes: object) -> FmHyperparameters:
    base: dict[str, object] = {
        "feature_dim": FEATURE_DIM,
        "num_factors": 4,
        "epochs": 12,
        "mini_batch_size": 64,
        "factors_lr": 0.05,
        "linear_lr": 0.05,
        "factors_init_sigma": 0.1,
    }
    return FmHyperparameters(**{**base, **changes})  # type: ignore[arg-type]


def settings(run: Path, out: Path, seed: int = 7, **changes: object) -> FmTrainSettings:
    return FmTrainSettings(
        run=str(run), output=str(out), hyperparameters=hyper(**changes), seed=seed, progress=False
    )


def test_metrics_by_hand() -> None:
    yhat = np.array([2.0, -1.0, 0.5, -3.0])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    got = metrics_of(yhat, y, "binary_classifier")
    assert set(got) == {ACCURACY, CROSS_ENTROPY, F_BETA}
    assert got[ACCURACY] == 0.5  # predictions 1, 0, 1, 0
    assert got[F_BETA] == pytest.approx(0.5)  # tp 1, fp 1, fn 1: 2·1 / (2·1 + 2)
    by_hand = [
        -math.log(1 / (1 + math.exp(-s))) if t else -math.log(1 - 1 / (1 + math.exp(-s)))
        for s, t in zip(yhat, y, strict=True)
    ]
    assert got[CROSS_ENTROPY] == pytest.approx(sum(by_hand) / 4)
    assert metrics_of(np.array([800.0]), np.array([0.0]), "binary_classifier")[
        CROSS_ENTROPY
    ] == pytest.approx(800.0)
    assert (
        metrics_of(np.array([-1.0]), np.array([0.0]), "binary_classifier")[F_BETA] == 0.0
    )  # nothing to find
    assert metrics_of(np.array([1.0, 2.0]), np.array([1.5, 4.0]), "regressor") == {
        RMSE: pytest.approx(math.sqrt((0.25 + 4) / 2))
    }


def test_channels_decode_to_the_written_rows(tmp_path: Path) -> None:
    run = make_fm_run(tmp_path)
    manifest = read_manifest(run)
    train = read_channel(run, manifest, "train")
    assert train is not None
    assert len(manifest["fm"]["channels"]["train"]["files"]) > 1  # sharded: files are concatenated in order
    matrix, labels = planted_rows(1500, 0)
    expected = rows_from_csr(matrix, labels, FEATURE_DIM)
    assert train.x is None  # one-hot: no value array
    assert train.idx.dtype.itemsize == 4
    np.testing.assert_array_equal(train.idx.numpy(), expected.idx.numpy())
    np.testing.assert_array_equal(train.y.numpy(), labels)


def test_trains_writes_the_artifact_and_metrics(tmp_path: Path) -> None:
    run = make_fm_run(tmp_path)
    result = train_local(settings(run, tmp_path / "out"))
    assert result.backend == "local"
    assert result.model_path == str(tmp_path / "out" / contracts.FM_MODEL_FILE)
    assert set(result.metrics) == {ACCURACY, CROSS_ENTROPY, F_BETA}
    assert result.metrics[ACCURACY] > 0.9  # the majority baseline is about 0.5
    report = json.loads((tmp_path / "out" / contracts.FM_METRICS_FILE).read_text())
    history = report["history"]
    assert len(history) == 12
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert report["metrics"] == result.metrics
    assert report["hyperparameters"]["epochs"] == "12"
    assert report["train_rows"] == 1500
    assert report["test_rows"] == 400
    model = FmModel.load(result.model_path)
    assert model.feature_dim == FEATURE_DIM
    assert model.num_factors == 4
    assert model.layout is not None
    assert model.layout.user_ids.tolist() == [f"u{i}" for i in range(N_USERS)]
    users, items = np.arange(N_USERS).repeat(N_ITEMS), np.tile(np.arange(N_ITEMS), N_USERS)
    scores = model.score_pairs(users, items)  # the artifact ranks as the planted rule says
    assert np.mean((scores > 0) == ((users % 2) == (items % 2))) > 0.9


def test_regressor_reports_rmse(tmp_path: Path) -> None:
    run = make_fm_run(tmp_path)
    result = train_local(settings(run, tmp_path / "out", predictor_type="regressor"))
    assert set(result.metrics) == {RMSE}
    assert result.metrics[RMSE] < 0.3  # labels are 0/1: predicting 0.5 everywhere gives 0.5


def test_the_seed_makes_it_reproducible(tmp_path: Path) -> None:
    run = make_fm_run(tmp_path)
    models = []
    for out, seed in (("a", 3), ("b", 3), ("c", 4)):
        models.append(
            FmModel.load(train_local(settings(run, tmp_path / out, seed=seed, epochs=2)).model_path)
        )
    assert np.array_equal(models[0].V, models[1].V)
    assert np.array_equal(models[0].w, models[1].w)
    assert not np.array_equal(models[0].V, models[2].V)


def test_fit_needs_rows_and_a_known_device(tmp_path: Path) -> None:
    matrix, labels = planted_rows(0, 0)
    with pytest.raises(LocalTrainingError, match="no training rows"):
        fit(hyper(), rows_from_csr(matrix, labels, FEATURE_DIM), progress=False)
    with pytest.raises(LocalTrainingError, match="device"):
        fit(hyper(), rows_from_csr(*planted_rows(10, 0), FEATURE_DIM), device="tpu", progress=False)
    run = make_fm_run(tmp_path)
    with pytest.raises(LocalTrainingError, match="feature_dim"):
        train_local(settings(run, tmp_path / "out", feature_dim=FEATURE_DIM + 1))


@mock_aws
def test_a_run_and_an_output_on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    run = make_fm_run(tmp_path)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="curated")
    for path in run.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "curated", "runs/tiny/" + path.relative_to(run).as_posix())
    result = train_local(
        FmTrainSettings(
            run="s3://curated/runs/tiny",
            output="s3://curated/models/tiny/",
            hyperparameters=hyper(epochs=2),
            progress=False,
        )
    )
    assert result.model_path == "s3://curated/models/tiny/model.npz"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="curated", Prefix="models/")["Contents"]}
    assert keys == {"models/tiny/model.npz", "models/tiny/metrics.json"}
    s3.download_file("curated", "models/tiny/model.npz", str(tmp_path / "m.npz"))
    assert FmModel.load(tmp_path / "m.npz").layout is not None
