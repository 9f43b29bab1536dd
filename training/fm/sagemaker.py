"""The SageMaker backend: SageMaker's built-in FM trained by a plain boto3 CreateTrainingJob (no SDK).

`build_training_job_request` turns the settings and the preprocessing run's manifest into the exact
`create_training_job` keyword arguments; `train_sagemaker` sends them, optionally waits (printing status
changes), reads the final metrics and imports `model.tar.gz` into the `.npz` artifact.

Where things go, for run `<id>` (names in `recsys/contracts.py`):

    channels   <run>/fm/train/, <run>/fm/test/        (the run: s3://<curated>/curated/runs/<id>/)
    job output s3://<artifacts>/fm/<id>/<job>/output/model.tar.gz
    artifact   <output>/model.npz when the output is a local folder, else next to model.tar.gz

The job output root is the settings' `output` when it is an s3:// URI (`fm/<id>/` is appended unless it
already ends so), else `s3://$RECSYS_ARTIFACTS_BUCKET/fm/<id>/`. Step Functions builds the same request
from stage config (`stacks/fm_training.py`); tests/infra/test_fm_training.py checks that both
requests have the same shape.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys import contracts
from training.fm.artifact import ArtifactError
from training.fm.image import fm_image_uri
from training.fm.sagemaker_model import import_sagemaker_model
from training.fm.settings import FmTrainSettings, SageMakerJobSettings, TrainResult

CONTENT_TYPE = "application/x-recordio-protobuf"
CHANNELS = {"train": contracts.RUN_FM_TRAIN_DIR, "test": contracts.RUN_FM_TEST_DIR}
MAX_RUNTIME_S = 28 * 24 * 3600
"""SageMaker's ceiling for MaxRuntimeInSeconds (28 days)."""
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
INSTANCE_TYPE = re.compile(r"^ml\.(?P<family>[a-z]+(?P<generation>\d+)(?P<attributes>[a-z-]*))\.[a-z0-9]+$")
ACCELERATED_FAMILIES = re.compile(r"^(p|g|inf|trn|dl)\d")
TAGS = {"project": "recsys-pipeline"}
MODEL_FILE = "model.npz"
TERMINAL_FAILURES = ("Failed", "Stopped")
MAP_DIRS = (contracts.RUN_USER_MAP_DIR, contracts.RUN_ITEM_MAP_DIR, contracts.RUN_CATEGORY_MAP_DIR)


class SageMakerSettingsError(ValueError):
    """Settings or a manifest from which no valid CreateTrainingJob request can be built."""


class TrainingJobError(RuntimeError):
    """The training job ended Failed or Stopped; the message carries SageMaker's FailureReason."""


def normalize_instance_type(name: str) -> str:
    """`ml.c5.xlarge` as is, `c5.xlarge` → `ml.c5.xlarge`; a doubled `ml.ml.` or a GPU type is refused.

    FM trains sparse input on CPU only ("Training with GPUs is available only on dense data")."""
    if name.startswith("ml.ml."):
        raise SageMakerSettingsError(
            f"instance_type {name!r}: doubled 'ml.' prefix (write ml.c5.xlarge or c5.xlarge; CDK's "
            "InstanceType adds 'ml.' itself, so the prefix must be given once at most)"
        )
    full = name if name.startswith("ml.") else f"ml.{name}"
    match = INSTANCE_TYPE.match(full)
    if not match:
        raise SageMakerSettingsError(
            f"instance_type {name!r}: not a SageMaker instance type like ml.c5.xlarge"
        )
    if ACCELERATED_FAMILIES.match(match["family"]):
        raise SageMakerSettingsError(
            f"instance_type {name!r}: FM trains sparse (one-hot) data on CPU instances only; use ml.c5.* or "
            "ml.m5.*"
        )
    return full


def split_s3_uri(uri: str, *, what: str) -> tuple[str, str]:
    """s3://bucket/key → (bucket, key)."""
    match = re.match(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$", uri)
    if not match:
        raise SageMakerSettingsError(f"{what}: {uri!r} is not an s3://bucket/prefix URI")
    return match[1], (match[2] or "/")[1:]


def folder_uri(uri: str) -> str:
    return uri if uri.endswith("/") else f"{uri}/"


def run_id_of(settings: FmTrainSettings, manifest: Mapping[str, Any]) -> str:
    run_id = manifest.get("run_id") or folder_uri(settings.run).rstrip("/").rsplit("/", 1)[-1]
    return str(run_id)


def output_root(settings: FmTrainSettings, run_id: str, artifacts_bucket: str | None) -> str:
    """The job's S3OutputPath: s3://…/fm/<run id>/ (see the module docstring)."""
    run_part = f"{contracts.FM_PREFIX}{run_id}/"
    if settings.output.startswith("s3://"):
        root = folder_uri(settings.output)
        split_s3_uri(root, what="output")
        return root if root.endswith(f"/{run_part}") else root + run_part
    if not artifacts_bucket:
        raise SageMakerSettingsError(
            f"output {settings.output!r} is a local folder, so the job's S3 output needs the artifacts "
            f"bucket: set {contracts.ARTIFACTS_BUCKET_ENV} or give an s3:// output"
        )
    return f"s3://{artifacts_bucket}/{run_part}"


def default_job_name(run_id: str, now: datetime) -> str:
    """recsys-fm-<run id, made name-safe and shortened>-<UTC time>: unique per start, at most 63 chars."""
    prefix = contracts.FM_JOB_NAME_PREFIX
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9]+", "-", run_id).strip("-")
    room = 63 - len(prefix) - 1 - len(stamp)
    safe = safe[:room].rstrip("-")
    return f"{prefix}{safe}-{stamp}" if safe else f"{prefix}{stamp}"


def _job_settings(settings: FmTrainSettings) -> SageMakerJobSettings:
    if settings.sagemaker is None:
        raise SageMakerSettingsError("the SageMaker backend needs settings.sagemaker (role ARN, instance, …)")
    job = settings.sagemaker
    if not ROLE_ARN.match(job.role_arn):
        raise SageMakerSettingsError(f"role_arn {job.role_arn!r}: not an IAM role ARN")
    for name in ("instance_count", "volume_size_gb", "max_runtime_s"):
        value = getattr(job, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SageMakerSettingsError(f"{name}: expected a whole number >= 1, got {value!r}")
    if job.max_runtime_s > MAX_RUNTIME_S:
        raise SageMakerSettingsError(
            f"max_runtime_s: at most {MAX_RUNTIME_S} (28 days), got {job.max_runtime_s}"
        )
    if job.job_name is not None and not JOB_NAME.match(job.job_name):
        raise SageMakerSettingsError(
            f"job_name {job.job_name!r}: 1-63 letters, digits and hyphens, starting with a letter or digit"
        )
    return job


def _channels(
    settings: FmTrainSettings, manifest: Mapping[str, Any], instance_count: int
) -> list[dict[str, Any]]:
    run = folder_uri(settings.run)
    split_s3_uri(run, what="run (the SageMaker backend reads the channels from S3)")
    described = manifest.get("fm", {}).get("channels", {})
    channels = []
    for name, default_path in CHANNELS.items():
        info = described.get(name, {})
        files = info.get("files")
        if name == "test" and files is not None and not files:
            continue  # no test records: SageMaker refuses an empty channel, and test metrics are optional
        if instance_count > 1 and files is not None and len(files) < instance_count:
            raise SageMakerSettingsError(
                f"channel {name}: {len(files)} file(s) for {instance_count} instances; ShardedByS3Key gives "
                "each instance whole files, so some would get none (write more shards or use fewer instances)"
            )
        distribution = "ShardedByS3Key" if instance_count > 1 else "FullyReplicated"
        channels.append(
            {
                "ChannelName": name,
                "ContentType": CONTENT_TYPE,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": run + info.get("path", default_path),
                        "S3DataDistributionType": distribution,
                    }
                },
            }
        )
    return channels


def _has_instance_storage(instance_type: str) -> bool:
    """Types with local NVMe (c5d, m5d, …) refuse VolumeKmsKeyId: their storage is always encrypted."""
    match = INSTANCE_TYPE.match(instance_type)
    return bool(match and "d" in match["attributes"])


def build_training_job_request(
    settings: FmTrainSettings,
    manifest: Mapping[str, Any],
    *,
    region: str,
    now: datetime | None = None,
    artifacts_bucket: str | None = None,
) -> dict[str, Any]:
    """The `create_training_job` keyword arguments (every hyperparameter a string)."""
    job = _job_settings(settings)
    declared = manifest.get("feature_dim")
    if not isinstance(declared, int) or isinstance(declared, bool):
        raise SageMakerSettingsError(f"manifest: feature_dim {declared!r} is not a whole number")
    if settings.hyperparameters.feature_dim != declared:
        raise SageMakerSettingsError(
            f"hyperparameters.feature_dim is {settings.hyperparameters.feature_dim}, but the run's manifest "
            f"says {declared}: the model would not fit the channels"
        )
    content_type = manifest.get("fm", {}).get("content_type", CONTENT_TYPE)
    if content_type != CONTENT_TYPE:
        raise SageMakerSettingsError(f"manifest: fm.content_type {content_type!r}, expected {CONTENT_TYPE!r}")
    instance_type = normalize_instance_type(job.instance_type)
    run_id = run_id_of(settings, manifest)
    output = output_root(settings, run_id, artifacts_bucket)
    name = job.job_name or default_job_name(run_id, now or datetime.now(UTC))
    resources: dict[str, Any] = {
        "InstanceType": instance_type,
        "InstanceCount": job.instance_count,
        "VolumeSizeInGB": job.volume_size_gb,
    }
    output_config: dict[str, Any] = {"S3OutputPath": output}  # gzip-compressed by default
    if job.kms_key_id:
        output_config["KmsKeyId"] = job.kms_key_id
        if not _has_instance_storage(instance_type):
            resources["VolumeKmsKeyId"] = job.kms_key_id
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": job.max_runtime_s}
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": fm_image_uri(region), "TrainingInputMode": "File"},
        "RoleArn": job.role_arn,
        "HyperParameters": settings.hyperparameters.to_sagemaker(),
        "InputDataConfig": _channels(settings, manifest, job.instance_count),
        "OutputDataConfig": output_config,
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": k, "Value": v} for k, v in {**TAGS, contracts.FM_RUN_ID_TAG: run_id}.items()],
    }
    if job.instance_count > 1:
        request["EnableInterContainerTrafficEncryption"] = True
    if job.spot:
        max_wait = job.max_wait_s if job.max_wait_s is not None else 2 * job.max_runtime_s
        if max_wait < job.max_runtime_s:
            raise SageMakerSettingsError(
                f"max_wait_s ({max_wait}) must be at least max_runtime_s ({job.max_runtime_s}): it is the "
                "wait for Spot capacity plus the run time"
            )
        checkpoint = job.checkpoint_uri or f"{output}{name}/checkpoints/"
        split_s3_uri(checkpoint, what="checkpoint_uri")
        stopping["MaxWaitTimeInSeconds"] = max_wait
        request["EnableManagedSpotTraining"] = True
        request["CheckpointConfig"] = {"S3Uri": folder_uri(checkpoint)}
    elif job.max_wait_s is not None:
        raise SageMakerSettingsError("max_wait_s applies to Spot training only (set spot=True)")
    return request


# ---------------------------------------------------------------------------------------------------------
# Running the job


def final_metrics(description: Mapping[str, Any]) -> dict[str, float]:
    """FinalMetricDataList → {"test:rmse": 0.93, …} (SageMaker's metric names)."""
    return {str(m["MetricName"]): float(m["Value"]) for m in description.get("FinalMetricDataList", [])}


def wait_for_job(
    client: Any,
    job_name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
    first_delay_s: float = 10.0,
    max_delay_s: float = 60.0,
) -> dict[str, Any]:
    """Poll DescribeTrainingJob with a growing delay until the job ends; print each status change.

    Returns the final description of a Completed job; raises TrainingJobError (with FailureReason) when it
    ends Failed or Stopped."""
    delay, last = first_delay_s, None
    while True:
        description: dict[str, Any] = client.describe_training_job(TrainingJobName=job_name)
        status, secondary = description["TrainingJobStatus"], description.get("SecondaryStatus")
        if (status, secondary) != last:
            transitions = description.get("SecondaryStatusTransitions") or [{}]
            message = transitions[-1].get("StatusMessage")
            log(f"{job_name}: {status} ({secondary})" + (f": {message}" if message else ""))
            last = (status, secondary)
        if status == "Completed":
            return description
        if status in TERMINAL_FAILURES:
            reason = description.get("FailureReason") or "no FailureReason given"
            raise TrainingJobError(f"training job {job_name} {status.lower()}: {reason}")
        sleep(delay)
        delay = min(max_delay_s, delay * 1.5)


def read_manifest(s3: Any, run: str) -> dict[str, Any]:
    bucket, prefix = split_s3_uri(folder_uri(run), what="run")
    key = prefix + contracts.RUN_MANIFEST_FILE
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        manifest: dict[str, Any] = json.loads(body)
    except s3.exceptions.NoSuchKey as exc:
        raise SageMakerSettingsError(
            f"s3://{bucket}/{key}: no manifest (the run is incomplete or absent)"
        ) from exc
    except ValueError as exc:
        raise SageMakerSettingsError(f"s3://{bucket}/{key}: not JSON ({exc})") from exc
    return manifest


def download_run_layout(s3: Any, run: str, target: Path) -> Path:
    """Copy the run's manifest and id maps (not its channels) into `target`, for `load_layout`."""
    bucket, prefix = split_s3_uri(folder_uri(run), what="run")
    target.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, prefix + contracts.RUN_MANIFEST_FILE, str(target / contracts.RUN_MANIFEST_FILE))
    for folder in MAP_DIRS:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + folder):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if Path(relative).name.startswith(("_", ".")):  # _SUCCESS, .crc files
                    continue
                local = target / relative
                local.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(local))
    return target


def import_job_model(s3: Any, settings: FmTrainSettings, model_uri: str) -> str:
    """model.tar.gz → `.npz` with the run's layout; returns where the artifact went."""
    bucket, key = split_s3_uri(model_uri, what="ModelArtifacts.S3ModelArtifacts")
    with tempfile.TemporaryDirectory(prefix="recsys-fm-import-") as tmp:
        work = Path(tmp)
        tarball = work / "model.tar.gz"
        s3.download_file(bucket, key, str(tarball))
        run_dir = download_run_layout(s3, settings.run, work / "run")
        try:
            model = import_sagemaker_model(tarball, manifest=run_dir / contracts.RUN_MANIFEST_FILE)
        except ArtifactError as exc:
            raise ArtifactError(
                f"{model_uri}: {exc} (the job's model stays there; import it with "
                "`recsys fm import-sagemaker-model`)"
            ) from exc
        if not settings.output.startswith("s3://"):
            out = Path(settings.output) / MODEL_FILE
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(out.name + ".partial")
            model.save(partial)
            partial.replace(out)
            return str(out)
        local = work / MODEL_FILE
        model.save(local)
        target_key = key.rsplit("/", 1)[0] + "/" + MODEL_FILE if "/" in key else MODEL_FILE
        s3.upload_file(str(local), bucket, target_key)
        return f"s3://{bucket}/{target_key}"


def _region(job: SageMakerJobSettings) -> str:
    if job.region:
        return job.region
    import boto3

    region = boto3.session.Session().region_name
    if not region:
        raise SageMakerSettingsError("no AWS region: set settings.sagemaker.region or AWS_REGION")
    return str(region)


def train_sagemaker(
    settings: FmTrainSettings,
    *,
    wait: bool = True,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> TrainResult:
    """Create the training job; with `wait`, follow it to the end, import the model and read its metrics.

    Without `wait` the result names the job and the model.tar.gz it will write, with no metrics."""
    say = log or print
    job = _job_settings(settings)
    region = _region(job)
    if sagemaker_client is None or s3_client is None:
        import boto3

        sagemaker_client = sagemaker_client or boto3.client("sagemaker", region_name=region)
        s3_client = s3_client or boto3.client("s3", region_name=region)
    manifest = read_manifest(s3_client, settings.run)
    request = build_training_job_request(
        settings,
        manifest,
        region=region,
        now=now,
        artifacts_bucket=os.environ.get(contracts.ARTIFACTS_BUCKET_ENV),
    )
    name = request["TrainingJobName"]
    sagemaker_client.create_training_job(**request)
    resources = request["ResourceConfig"]
    say(f"{name}: created ({resources['InstanceType']} × {resources['InstanceCount']})")
    expected_model = f"{request['OutputDataConfig']['S3OutputPath']}{name}/output/model.tar.gz"
    if not wait:
        return TrainResult(backend="sagemaker", model_path=expected_model, job_name=name)
    description = wait_for_job(sagemaker_client, name, sleep=sleep, log=say)
    model_uri = description.get("ModelArtifacts", {}).get("S3ModelArtifacts", expected_model)
    model_path = import_job_model(s3_client, settings, model_uri)
    say(f"{name}: model imported to {model_path}")
    return TrainResult(
        backend="sagemaker", model_path=model_path, metrics=final_metrics(description), job_name=name
    )
