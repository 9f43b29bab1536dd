"""What one FM training run needs, whichever backend runs it (`training.fm.api.train_fm`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.fm.hyperparameters import FmHyperparameters


@dataclass(frozen=True, kw_only=True)
class SageMakerJobSettings:
    """The SageMaker backend's extra settings (CreateTrainingJob); the local backend ignores them."""

    role_arn: str
    """Execution role SageMaker assumes (read the run's channels, write the output, pull the image)."""
    instance_type: str = "ml.c5.xlarge"
    """Training instance; sparse FM data trains on CPU instances (SageMaker's own advice)."""
    instance_count: int = 1
    """More than one shards the channels by S3 key (ShardedByS3Key)."""
    volume_size_gb: int = 30
    max_runtime_s: int = 3600
    spot: bool = False
    """Managed spot training (cheaper; resumes from checkpoint_uri when interrupted)."""
    max_wait_s: int | None = None
    """With spot: how long to wait for capacity plus run time (default 2 × max_runtime_s)."""
    checkpoint_uri: str | None = None
    region: str | None = None
    """Default: the boto3 session's region."""
    job_name: str | None = None
    """Default: recsys-fm-<run id>-<UTC time>."""
    kms_key_id: str | None = None
    """Encrypts the output and the training volume when set."""


@dataclass(frozen=True, kw_only=True)
class FmTrainSettings:
    """One training run: where the preprocessing run is, where the model goes, and how to train."""

    run: str
    """The preprocessing run folder (manifest.json, fm/train/, fm/test/, maps): a local path or an
    s3://bucket/curated/runs/<run id>/ URI."""
    output: str
    """Where the model goes: a local folder (local backend) or an s3:// prefix (SageMaker backend)."""
    hyperparameters: FmHyperparameters
    seed: int = 42
    device: str = "auto"
    """Local backend: "auto" (CUDA when present), "cpu" or "cuda"."""
    progress: bool = True
    sagemaker: SageMakerJobSettings | None = field(default=None)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What `train_fm` returns, from either backend."""

    backend: str
    """"local" or "sagemaker"."""
    model_path: str
    """The `.npz` artifact (training.fm.artifact), local path or s3:// URI; for SageMaker, the imported
    artifact when the job's model.tar.gz was imported, else the model.tar.gz URI."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Final test metrics under SageMaker's names (test:rmse, test:binary_classification_accuracy, …)."""
    job_name: str | None = None
