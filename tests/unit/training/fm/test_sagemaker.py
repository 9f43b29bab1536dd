"""The SageMaker backend: the exact CreateTrainingJob request, and a job followed to its end.

botocore's Stubber plays SageMaker (it also validates every request against the service model, so a
malformed request fails here as it would against AWS); moto plays S3. No test reaches AWS.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from recsys import contracts
from tests.unit.training.fm.ndarray_writer import fm_model_tar, fm_params
from training.fm.artifact import FmModel
from training.fm.hyperparameters import FmHyperparameters
from training.fm.image import UnknownRegionError
from training.fm.sagemaker import (
    SageMakerSettingsError,
    TrainingJobError,
    build_training_job_request,
    final_metrics,
    normalize_instance_type,
    train_sagemaker,
    wait_for_job,
)
from training.fm.settings import FmTrainSettings, SageMakerJobSettings

ROLE = "arn:aws:iam::123456789012:role/recsys-fm-training"
CURATED, ARTIFACTS = "curated-bucket", "artifacts-bucket"
RUN = f"s3://{CURATED}/curated/runs/r1/"
NOW = datetime(2026, 11, 28, 16, 1, 51, tzinfo=UTC)
REGION = "eu-west-1"
IMAGE = "438346466558.dkr.ecr.eu-west-1.amazonaws.com/factorization-machines:1"


def _manifest(feature_dim: int = 10371, train_files: int = 2, test_files: int = 1) -> dict[str, Any]:
    def channel(path: str, n: int) -> dict[str, Any]:
        return {"path": path, "files": [f"part-{i:05d}-00000.pbr" for i in range(n)], "records": 10 * n}

    return {
        "run_id": "r1",
        "feature_dim": feature_dim,
        "fm": {
            "content_type": "application/x-recordio-protobuf",
            "channels": {"train": channel("fm/train/", train_files), "test": channel("fm/test/", test_files)},
        },
    }


def _settings(output: str = f"s3://{ARTIFACTS}/", feature_dim: int = 10371, **job: Any) -> FmTrainSettings:
    hyperparameters = FmHyperparameters(feature_dim=feature_dim, num_factors=64, epochs=20)
    return FmTrainSettings(
        run=RUN,
        output=output,
        hyperparameters=hyperparameters,
        sagemaker=SageMakerJobSettings(role_arn=ROLE, region=REGION, **job),
    )


def _request(
    settings: FmTrainSettings | None = None, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    return build_training_job_request(
        settings or _settings(), manifest or _manifest(), region=REGION, now=NOW
    )


def _channel(name: str, distribution: str = "FullyReplicated") -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": "application/x-recordio-protobuf",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"{RUN}fm/{name}/",
                "S3DataDistributionType": distribution,
            }
        },
    }


# --- the request ---------------------------------------------------------------------------------------


def test_the_request_has_exactly_this_shape() -> None:
    assert _request() == {
        "TrainingJobName": "recsys-fm-r1-20261128-160151",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": _settings().hyperparameters.to_sagemaker(),
        "InputDataConfig": [_channel("train"), _channel("test")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{ARTIFACTS}/fm/r1/"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": "project", "Value": "recsys-pipeline"}, {"Key": "recsys:run-id", "Value": "r1"}],
    }


def test_the_request_passes_botocores_validation_of_create_training_job() -> None:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    multi = _request(_settings(instance_count=2, spot=True, kms_key_id="alias/fm"), _manifest(test_files=2))
    for request in (_request(), multi):
        with Stubber(client) as stub:
            stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, request)
            client.create_training_job(**request)
            stub.assert_no_pending_responses()


def test_hyperparameters_are_strings_with_epochs_and_the_manifests_feature_dim() -> None:
    hyperparameters = _request()["HyperParameters"]
    assert all(isinstance(v, str) for v in hyperparameters.values())
    assert hyperparameters["feature_dim"] == "10371"
    assert hyperparameters["epochs"] == "20"  # never the service default of 1
    assert hyperparameters["num_factors"] == "64"
    assert hyperparameters["predictor_type"] == "binary_classifier"
    assert hyperparameters["factors_wd"] == "1e-05"


def test_a_feature_dim_other_than_the_manifests_is_refused() -> None:
    with pytest.raises(SageMakerSettingsError, match="feature_dim is 100, but the run's manifest says 10371"):
        _request(_settings(feature_dim=100))


def test_more_than_one_instance_shards_the_channels_and_encrypts_traffic() -> None:
    request = _request(_settings(instance_count=2), _manifest(train_files=4, test_files=2))
    assert request["InputDataConfig"] == [
        _channel("train", "ShardedByS3Key"),
        _channel("test", "ShardedByS3Key"),
    ]
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert "EnableInterContainerTrafficEncryption" not in _request()


def test_sharding_needs_a_file_per_instance() -> None:
    with pytest.raises(SageMakerSettingsError, match=r"channel test: 1 file.*for 2 instances"):
        _request(_settings(instance_count=2), _manifest(train_files=2, test_files=1))


def test_an_empty_test_channel_is_left_out() -> None:
    request = _request(manifest=_manifest(test_files=0))
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train"]


def test_managed_spot_with_checkpoints_and_a_max_wait_at_least_the_run_time() -> None:
    request = _request(_settings(spot=True, max_runtime_s=1800))
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    name = request["TrainingJobName"]
    assert request["CheckpointConfig"] == {"S3Uri": f"s3://{ARTIFACTS}/fm/r1/{name}/checkpoints/"}
    custom = _request(_settings(spot=True, max_wait_s=7200, checkpoint_uri=f"s3://{ARTIFACTS}/ckpt"))
    assert custom["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    assert custom["CheckpointConfig"] == {"S3Uri": f"s3://{ARTIFACTS}/ckpt/"}
    with pytest.raises(
        SageMakerSettingsError, match=r"max_wait_s \(600\) must be at least max_runtime_s \(3600\)"
    ):
        _request(_settings(spot=True, max_wait_s=600))
    with pytest.raises(SageMakerSettingsError, match="max_wait_s applies to Spot training only"):
        _request(_settings(max_wait_s=7200))
    assert "EnableManagedSpotTraining" not in _request()


@pytest.mark.parametrize(
    ("given", "expected"),
    [("ml.c5.xlarge", "ml.c5.xlarge"), ("c5.xlarge", "ml.c5.xlarge"), ("m5.large", "ml.m5.large")],
)
def test_instance_types_get_the_ml_prefix_once(given: str, expected: str) -> None:
    assert normalize_instance_type(given) == expected
    assert _request(_settings(instance_type=given))["ResourceConfig"]["InstanceType"] == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("ml.ml.c5.xlarge", "doubled 'ml.' prefix"),
        ("ml.p3.2xlarge", "CPU instances only"),
        ("g5.xlarge", "CPU instances only"),
        ("c5", "not a SageMaker instance type"),
        ("ML.C5.XLARGE", "not a SageMaker instance type"),
    ],
)
def test_bad_instance_types_are_refused_and_say_why(given: str, message: str) -> None:
    with pytest.raises(SageMakerSettingsError, match=f"instance_type '{given}': .*{message}"):
        _request(_settings(instance_type=given))


def test_kms_encrypts_output_and_volume_except_on_instance_storage() -> None:
    request = _request(_settings(kms_key_id="alias/fm"))
    assert request["OutputDataConfig"]["KmsKeyId"] == "alias/fm"
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == "alias/fm"
    local_nvme = _request(_settings(kms_key_id="alias/fm", instance_type="ml.c5d.xlarge"))
    assert local_nvme["OutputDataConfig"]["KmsKeyId"] == "alias/fm"
    assert "VolumeKmsKeyId" not in local_nvme["ResourceConfig"]
    assert "KmsKeyId" not in _request()["OutputDataConfig"]


def test_output_paths_per_run() -> None:
    def output(settings: FmTrainSettings, bucket: str | None = None) -> str:
        request = build_training_job_request(
            settings, _manifest(), region=REGION, now=NOW, artifacts_bucket=bucket
        )
        return str(request["OutputDataConfig"]["S3OutputPath"])

    assert output(_settings(output=f"s3://{ARTIFACTS}")) == f"s3://{ARTIFACTS}/fm/r1/"
    assert output(_settings(output=f"s3://{ARTIFACTS}/team/")) == f"s3://{ARTIFACTS}/team/fm/r1/"
    assert output(_settings(output=f"s3://{ARTIFACTS}/fm/r1/")) == f"s3://{ARTIFACTS}/fm/r1/"
    assert output(_settings(output="/tmp/models"), bucket=ARTIFACTS) == f"s3://{ARTIFACTS}/fm/r1/"
    with pytest.raises(SageMakerSettingsError, match=f"local folder.*set {contracts.ARTIFACTS_BUCKET_ENV}"):
        output(_settings(output="/tmp/models"))


def test_job_names_are_valid_and_unique_per_start() -> None:
    manifest = {**_manifest(), "run_id": "2026_11_28.nightly-run_" + "x" * 80}
    name = _request(manifest=manifest)["TrainingJobName"]
    assert len(name) <= 63
    assert name.startswith("recsys-fm-2026-11-28-nightly-run-")
    assert name.endswith("-20261128-160151")
    assert _request(_settings(job_name="my-job-1"))["TrainingJobName"] == "my-job-1"
    with pytest.raises(SageMakerSettingsError, match="job_name 'my_job'"):
        _request(_settings(job_name="my_job"))


def test_other_settings_errors() -> None:
    with pytest.raises(SageMakerSettingsError, match="not an IAM role ARN"):
        build_training_job_request(
            FmTrainSettings(
                run=RUN,
                output="s3://b/",
                hyperparameters=FmHyperparameters(feature_dim=10371),
                sagemaker=SageMakerJobSettings(role_arn="fm-role"),
            ),
            _manifest(),
            region=REGION,
        )
    with pytest.raises(SageMakerSettingsError, match=r"needs settings\.sagemaker"):
        _request(
            FmTrainSettings(run=RUN, output="s3://b/", hyperparameters=FmHyperparameters(feature_dim=10371))
        )
    with pytest.raises(SageMakerSettingsError, match="max_runtime_s: at most 2419200"):
        _request(_settings(max_runtime_s=30 * 86400))
    with pytest.raises(SageMakerSettingsError, match="reads the channels from S3"):
        _request(FmTrainSettings(**{**_settings().__dict__, "run": "/tmp/runs/r1"}))
    with pytest.raises(UnknownRegionError, match="xx-east-9"):
        build_training_job_request(_settings(), _manifest(), region="xx-east-9")


# --- following a job ------------------------------------------------------------------------------------


def _describe(status: str, secondary: str, **extra: Any) -> dict[str, Any]:
    """A DescribeTrainingJob response with the fields the service model requires."""
    return {
        "TrainingJobName": "job",
        "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/job",
        "ModelArtifacts": {"S3ModelArtifacts": extra.pop("model", "s3://b/fm/r1/job/output/model.tar.gz")},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": NOW,
        **extra,
    }


def test_waiting_prints_each_status_change_and_backs_off() -> None:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    states = [
        ("InProgress", "Starting"),
        ("InProgress", "Starting"),
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Training"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
    ]
    metrics = [
        {"MetricName": "test:binary_classification_accuracy", "Value": 0.693, "Timestamp": NOW},
        {"MetricName": "test:binary_f_beta", "Value": 0.7336, "Timestamp": NOW},
    ]
    lines: list[str] = []
    sleeps: list[float] = []
    with Stubber(client) as stub:
        for status, secondary in states:
            stub.add_response(
                "describe_training_job", _describe(status, secondary), {"TrainingJobName": "job"}
            )
        stub.add_response(
            "describe_training_job",
            _describe(
                "Completed",
                "Completed",
                FinalMetricDataList=metrics,
                SecondaryStatusTransitions=[
                    {"Status": "Completed", "StartTime": NOW, "StatusMessage": "Training job completed"}
                ],
            ),
            {"TrainingJobName": "job"},
        )
        description = wait_for_job(client, "job", sleep=sleeps.append, log=lines.append)
    assert lines == [
        "job: InProgress (Starting)",
        "job: InProgress (Downloading)",
        "job: InProgress (Training)",
        "job: InProgress (Uploading)",
        "job: Completed (Completed): Training job completed",
    ]
    assert sleeps == [10.0, 15.0, 22.5, 33.75, 50.625, 60.0, 60.0]
    assert final_metrics(description) == {
        "test:binary_classification_accuracy": 0.693,
        "test:binary_f_beta": 0.7336,
    }


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_failed_job_raises_with_its_failure_reason(status: str) -> None:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    reason = "ClientError: feature_dim must be larger than the largest key (got key 10371)"
    with Stubber(client) as stub:
        stub.add_response("describe_training_job", _describe(status, status, FailureReason=reason))
        with pytest.raises(
            TrainingJobError, match=rf"training job job {status.lower()}: ClientError: feature_dim"
        ):
            wait_for_job(client, "job", sleep=lambda _: None, log=lambda _: None)


# --- end to end: moto's S3, a stubbed SageMaker ---------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv(contracts.ARTIFACTS_BUCKET_ENV, raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (CURATED, ARTIFACTS):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield s3


def _parquet(table: dict[str, list[Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(table), buffer)
    return buffer.getvalue()


def _upload_run(s3: Any) -> None:
    """A 7-feature run: 3 users, 3 items, 1 category, with Spark's _SUCCESS markers."""
    manifest = {
        **_manifest(feature_dim=7, train_files=1),
        "blocks": {
            "users": {"offset": 0, "size": 3},
            "items": {"offset": 3, "size": 3},
            "categories": {"offset": 6, "size": 1},
        },
    }
    prefix = "curated/runs/r1/"
    objects = {
        contracts.RUN_MANIFEST_FILE: json.dumps(manifest).encode(),
        f"{contracts.RUN_USER_MAP_DIR}part-0.parquet": _parquet(
            {"user_idx": [0, 1, 2], "user_id": ["u0", "u1", "u2"]}
        ),
        f"{contracts.RUN_USER_MAP_DIR}_SUCCESS": b"",
        f"{contracts.RUN_ITEM_MAP_DIR}part-0.parquet": _parquet(
            {"item_idx": [0, 1, 2], "item_id": ["a", "b", "c"], "categories": ["X", "", "X"]}
        ),
        f"{contracts.RUN_CATEGORY_MAP_DIR}part-0.parquet": _parquet({"category_idx": [0], "category": ["X"]}),
        "fm/train/part-00000-00000.pbr": b"not read here",
    }
    for key, body in objects.items():
        s3.put_object(Bucket=CURATED, Key=prefix + key, Body=body)


def _upload_model(s3: Any, tmp_path: Path, key: str) -> tuple[float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    w0, w, v = 0.5, rng.normal(size=7).astype(np.float32), rng.normal(size=(7, 4)).astype(np.float32)
    tarball = fm_model_tar(
        tmp_path / "model.tar.gz", fm_params(w0, w, v, scheme="B"), feature_dim=7, num_factors=4
    )
    s3.upload_file(str(tarball), ARTIFACTS, key)
    return w0, w, v


def _stubbed_sagemaker(job_name: str, model_uri: str, *, fail: str | None = None) -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(client)
    stub.add_response("create_training_job", {"TrainingJobArn": f"arn:x:{job_name}"})
    stub.add_response("describe_training_job", _describe("InProgress", "Training"))
    final = (
        _describe("Failed", "Failed", FailureReason=fail)
        if fail
        else _describe(
            "Completed",
            "Completed",
            model=model_uri,
            FinalMetricDataList=[{"MetricName": "test:rmse", "Value": 0.91, "Timestamp": NOW}],
        )
    )
    stub.add_response("describe_training_job", final)
    stub.activate()
    return client, stub


def test_a_job_followed_to_the_end_leaves_an_imported_model_with_the_runs_layout(
    aws: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _upload_run(aws)
    name = "recsys-fm-r1-20261128-160151"
    key = f"fm/r1/{name}/output/model.tar.gz"
    w0, w, v = _upload_model(aws, tmp_path, key)
    client, stub = _stubbed_sagemaker(name, f"s3://{ARTIFACTS}/{key}")
    settings = _settings(output=str(tmp_path / "out"), feature_dim=7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(contracts.ARTIFACTS_BUCKET_ENV, ARTIFACTS)
        result = train_sagemaker(
            settings, sagemaker_client=client, s3_client=aws, sleep=lambda _: None, now=NOW
        )
    stub.assert_no_pending_responses()
    assert result.backend == "sagemaker"
    assert result.job_name == name
    assert result.metrics == {"test:rmse": 0.91}
    assert result.model_path == str(tmp_path / "out" / "model.npz")
    model = FmModel.load(result.model_path)
    assert model.w0 == pytest.approx(w0)
    np.testing.assert_array_equal(model.w, w)
    np.testing.assert_array_equal(model.V, v)
    assert model.layout is not None
    assert list(model.layout.item_ids) == ["a", "b", "c"]
    out = capsys.readouterr().out
    assert f"{name}: created (ml.c5.xlarge × 1)" in out
    assert f"{name}: InProgress (Training)" in out
    assert f"{name}: model imported to {result.model_path}" in out


def test_with_an_s3_output_the_artifact_goes_next_to_model_tar_gz(aws: Any, tmp_path: Path) -> None:
    _upload_run(aws)
    name = "recsys-fm-r1-20261128-160151"
    key = f"fm/r1/{name}/output/model.tar.gz"
    _upload_model(aws, tmp_path, key)
    client, _ = _stubbed_sagemaker(name, f"s3://{ARTIFACTS}/{key}")
    result = train_sagemaker(
        _settings(feature_dim=7),
        sagemaker_client=client,
        s3_client=aws,
        sleep=lambda _: None,
        log=lambda _: None,
        now=NOW,
    )
    assert result.model_path == f"s3://{ARTIFACTS}/fm/r1/{name}/output/model.npz"
    aws.download_file(ARTIFACTS, f"fm/r1/{name}/output/model.npz", str(tmp_path / "got.npz"))
    assert FmModel.load(tmp_path / "got.npz").feature_dim == 7


def test_a_failed_job_surfaces_its_reason_and_imports_nothing(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upload_run(aws)
    monkeypatch.setenv(contracts.ARTIFACTS_BUCKET_ENV, ARTIFACTS)
    client, _ = _stubbed_sagemaker("job", "", fail="AlgorithmError: out of memory")
    settings = _settings(output=str(tmp_path / "out"), feature_dim=7)
    with pytest.raises(TrainingJobError, match="failed: AlgorithmError: out of memory"):
        train_sagemaker(
            settings, sagemaker_client=client, s3_client=aws, sleep=lambda _: None, log=lambda _: None
        )
    assert not (tmp_path / "out").exists()


def test_without_waiting_the_result_names_the_job_and_its_future_model(aws: Any) -> None:
    _upload_run(aws)
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"})
        result = train_sagemaker(
            _settings(feature_dim=7),
            wait=False,
            sagemaker_client=client,
            s3_client=aws,
            log=lambda _: None,
            now=NOW,
        )
        stub.assert_no_pending_responses()
    name = "recsys-fm-r1-20261128-160151"
    assert result.job_name == name
    assert result.model_path == f"s3://{ARTIFACTS}/fm/r1/{name}/output/model.tar.gz"
    assert result.metrics == {}


def test_a_run_without_manifest_is_refused_before_any_job_starts(aws: Any) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    with (
        Stubber(client) as stub,
        pytest.raises(SageMakerSettingsError, match=r"curated/runs/r1/manifest\.json: no manifest"),
    ):
        train_sagemaker(_settings(), sagemaker_client=client, s3_client=aws, log=lambda _: None)
    stub.assert_no_pending_responses()
