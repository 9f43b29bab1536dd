"""The typed stage configuration, parsed once from `cdk.json` context (`stages.<name>`).

Parsing is strict on purpose: a misspelt key or a quoted number in `cdk.json` would otherwise fall back
to a default silently and deploy something other than what the file says. No AWS calls, no CDK imports,
so it is cheap to test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, cast

RemovalPolicyName = Literal["destroy", "retain"]
REMOVAL_POLICIES: tuple[str, ...] = ("destroy", "retain")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# An accelerated type, e.g. g5.xlarge, g4dn.12xlarge, p4d.24xlarge: family letter g or p, generation digits,
# attribute letters. Attributes "g" (Graviton, as in g5g) and "a" (AMD, as in g4ad) are not NVIDIA on x86_64.
_GPU_INSTANCE_TYPE = re.compile(r"^[gp]\d+(?P<attributes>[a-z]*)\.(\d*xlarge|large|metal(-\d+xl)?)$")
MAX_GPUS_PER_INSTANCE = 8  # p5, g5.48xlarge, g6e.48xlarge
VCPUS_PER_GPU = 4  # what each GPU of a job definition asks for (stacks/dsstne.py)
# Glue 5.0 worker types of a Spark ETL job (G.025X is for streaming jobs only).
GLUE_WORKER_TYPES: tuple[str, ...] = (
    "G.1X",
    "G.2X",
    "G.4X",
    "G.8X",
    "G.12X",
    "G.16X",
    "R.1X",
    "R.2X",
    "R.4X",
    "R.8X",
)
MAX_GLUE_TIMEOUT_MINUTES = 10080  # 7 days, Glue's ceiling for a batch job
LAMBDA_MEMORY_MB = (128, 10240)  # Lambda's range of memory sizes
MAX_LAMBDA_TIMEOUT_SECONDS = 900
LAMBDA_EPHEMERAL_STORAGE_MB = (512, 10240)  # Lambda's range of /tmp sizes
MAX_HTTP_API_TIMEOUT_SECONDS = 30  # API Gateway's integration timeout ceiling for an HTTP API
SERVING_APIS: tuple[str, ...] = ("function-url", "http-api")  # recsys.contracts.SERVING_API_* (a test checks)
MIN_SQS_MAX_CONCURRENCY = 2  # an SQS event source's maximum concurrency is at least 2
# The retention periods CloudWatch Logs accepts (days).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653
)  # fmt: skip
# SageMaker FM training (stacks/fm_training.py): a CPU instance type, with or without the "ml." prefix
# (written once: CDK adds it, so "ml.ml." is refused); FM trains sparse data on CPU only.
_FM_INSTANCE_TYPE = re.compile(r"^(ml\.)?(?P<family>[a-z]+\d+[a-z-]*)\.[a-z0-9]+$")
_ACCELERATED_FAMILY = re.compile(r"^(p|g|inf|trn|dl)\d")
FM_PREDICTOR_TYPES: tuple[str, ...] = ("binary_classifier", "regressor")
MAX_FM_RUNTIME_MINUTES = 40320  # 28 days, SageMaker's ceiling for MaxRuntimeInSeconds
MAX_FM_VOLUME_GB = 16384
# The pipeline state machine (stacks/orchestration.py).
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\))$")
MAX_PIPELINE_TIMEOUT_MINUTES = 24 * 60  # the trigger's lease (recsys.ingest.trigger.DEFAULT_LEASE_S)
MAX_TOP_K = 100  # recsys.contracts.MAX_TOP_K
GATE_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map")  # recsys.model_eval's metrics
FARGATE_VCPUS: tuple[int, ...] = (1, 2, 4, 8, 16)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A stage configuration that cannot be used; the message names the offending context key."""


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    """Settings that differ between stages. Defaults are the safe (production-like) choice."""

    name: str
    removal_policy: RemovalPolicyName = "retain"
    """What CloudFormation does with the buckets when the stack is deleted."""
    auto_delete_objects: bool = False
    """Empty the buckets on stack deletion (only with removal_policy "destroy")."""
    termination_protection: bool = False
    quarantine_expiry_days: int = 90
    """How long rejected rows under `quarantine/` are kept for inspection."""
    noncurrent_version_expiry_days: int = 90
    """How long overwritten or deleted object versions are kept (the undo window)."""
    abort_incomplete_upload_days: int = 7
    access_log_retention_days: int = 365
    """How long S3 server access logs are kept."""
    dsstne_instance_types: tuple[str, ...] = ("g5.xlarge",)
    """EC2 types of the DSSTNE Batch compute environment: NVIDIA GPUs on x86_64 (the GPU AMI's only kind)."""
    dsstne_spot: bool = False
    """Run DSSTNE jobs on Spot capacity (cheaper; an interrupted job is retried)."""
    dsstne_max_vcpus: int = 16
    """Ceiling of the compute environment, in vCPUs of whole instances (g5.xlarge: 4, g5.12xlarge: 48)."""
    dsstne_multi_gpu_count: int = 4
    """GPUs of the multi-GPU job definition; it runs only if an instance type has that many GPUs."""
    preprocessing_worker_type: str = "G.1X"
    """Glue worker type of the preprocessing job (G.1X: 4 vCPUs, 16 GB; R.*: memory-optimised)."""
    preprocessing_worker_count: int = 2
    """Glue workers, the driver included (at least 2)."""
    preprocessing_timeout_minutes: int = 120
    """A preprocessing run still going after this is stopped (and fails)."""
    ingest_memory_mb: int = 3584
    """Memory of the ingest Lambda. CPU grows with it: 3,584 MB gives two full vCPUs (1,769 MB per vCPU),
    which the handler uses at once — validation on one, the curated Parquet's encoding and upload and the
    S3 read-ahead on the other (benchmarks/RESULTS.md: 1.3× the bare validator's time with two cores,
    1.9–2.1× with one)."""
    ingest_timeout_seconds: int = 900
    """Time limit of one ingest invocation; the queue's visibility timeout is six times this."""
    ingest_reserved_concurrency: int = 10
    """Ingest Lambdas at most at once; also the queue poller's maximum concurrency, so none is throttled."""
    events_memory_mb: int = 256
    """Memory of the real-time events Lambda."""
    events_timeout_seconds: int = 30
    """Time limit of one events request (up to 500 events, with retries of DynamoDB and Firehose)."""
    events_reserved_concurrency: int = 50
    """Events Lambdas at most at once; requests beyond it are throttled (HTTP 429 once behind the API)."""
    lambda_log_retention_days: int = 365
    """How long the Lambdas' logs are kept (one of CloudWatch Logs' retention periods)."""
    fm_instance_type: str = "ml.c5.xlarge"
    """SageMaker FM training instance (a CPU type: ml.c5.*, ml.m5.*; "c5.xlarge" works too)."""
    fm_instance_count: int = 1
    """More than one shards the channels by S3 key (each instance needs at least one file)."""
    fm_volume_size_gb: int = 30
    fm_max_runtime_minutes: int = 120
    """A training job still running after this is stopped (and fails)."""
    fm_spot: bool = False
    """Managed Spot training (cheaper; waits up to twice the max runtime for capacity)."""
    fm_predictor_type: str = "binary_classifier"
    fm_num_factors: int = 64
    fm_epochs: int = 20
    """Always sent: the service's default is 1 epoch."""
    fm_mini_batch_size: int = 1000
    serving_api: str = "function-url"
    """Front end of the recommendation Lambda: "function-url" (a Function URL, AWS_IAM auth) or "http-api"
    (an API Gateway HTTP API with an IAM authorizer on every route, access logs, stage throttling)."""
    recommend_memory_mb: int = 1024
    """Memory of the recommendation Lambda (CPU grows with it: fold-in scores every item with numpy)."""
    recommend_timeout_seconds: int = 10
    """Time limit of one API request (at most 30 with "http-api": API Gateway gives up after 30 s)."""
    recommend_reserved_concurrency: int = 100
    """Recommendation Lambdas at most at once; requests beyond it get HTTP 429 (Function URL) or 503."""
    recommend_provisioned_concurrency: int = 0
    """Pre-initialized copies (no cold starts) on the alias "live"; 0: none. At most the reserved one."""
    serving_throttle_rate_limit: int = 1000
    """"http-api" only: the stage's steady request rate per second."""
    serving_throttle_burst_limit: int = 500
    """"http-api" only: the stage's burst of requests."""
    publish_memory_mb: int = 2048
    """Memory of the publish Lambda (Parquet reading and parallel BatchWriteItem)."""
    publish_timeout_seconds: int = 900
    """Time limit of one publish; a model too large to load in it needs a bigger Lambda or a Batch step."""
    publish_ephemeral_storage_mb: int = 2048
    """/tmp of the publish Lambda: the model folder is copied there first, so it bounds the model's size."""
    pipeline_schedule: str = ""
    """EventBridge Scheduler expression ("rate(1 day)", "cron(0 3 * * ? *)") that requests a run, through the
    same one-run lock as uploads; "" (the default): runs start from uploads only."""
    pipeline_timeout_minutes: int = 720
    """A pipeline run still going after this fails (and frees the lock); below the trigger's 24 h lease."""
    eval_k: int = 10
    """List length of the gate's metrics (precision, recall, nDCG at k)."""
    gate_metric: str = "precision@10"
    """The metric the gate compares: precision, recall, ndcg or map, "@" eval_k (recsys.model_eval's keys)."""
    gate_margin: float = 0.10
    """The best model is published only if its metric beats popularity's by this fraction (0.10: by 10 %)."""
    gate_tolerance: float = 0.02
    """... and is not below the live model's, measured on the same split, by more than this (absolute)."""
    evaluate_memory_mb: int = 3008
    """Memory of the evaluate Lambda (it loads the held-out split and every model's lists)."""
    evaluate_timeout_seconds: int = 900
    evaluate_ephemeral_storage_mb: int = 4096
    """/tmp of the evaluate Lambda: the run's split and maps plus each model's lists are copied there."""
    fm_topk_vcpus: int = 4
    """vCPUs of the Fargate job that imports the SageMaker FM model and writes each user's top-k."""
    fm_topk_memory_mb: int = 16384
    """Memory of that job (Fargate: 2 to 8 GiB per vCPU, whole GiB)."""
    alarm_email: str = ""
    """An address subscribed to the alarm and pipeline topic (it must confirm); "": none."""

    @classmethod
    def from_context(cls, stage: object, stages: object) -> StageConfig:
        """Build the config of `stage` from the `stages` context object (`{"dev": {...}, ...}`)."""
        if not isinstance(stage, str) or not _STAGE_NAME.match(stage):
            raise ConfigError(
                "context 'stage': expected a lower-case name like 'dev' (letters, digits, '-'), "
                f"got {stage!r}"
            )
        if not isinstance(stages, Mapping):
            raise ConfigError(
                f"context 'stages': expected an object of stage names, got {type(stages).__name__}"
            )
        if stage not in stages:
            known = ", ".join(sorted(str(k) for k in stages)) or "none"
            raise ConfigError(f"context 'stage': unknown stage {stage!r} (stages in cdk.json: {known})")
        raw = stages[stage]
        if not isinstance(raw, Mapping):
            raise ConfigError(f"context 'stages.{stage}': expected an object, got {type(raw).__name__}")
        return cls(name=stage, **_checked_values(stage, raw))

    def __post_init__(self) -> None:
        where = f"stages.{self.name}"
        if self.removal_policy not in REMOVAL_POLICIES:
            raise ConfigError(
                f"context '{where}.removal_policy': expected one of {REMOVAL_POLICIES}, "
                f"got {self.removal_policy!r}"
            )
        if self.auto_delete_objects and self.removal_policy != "destroy":
            raise ConfigError(
                f"context '{where}.auto_delete_objects': true needs removal_policy 'destroy' "
                f"(got {self.removal_policy!r}); a retained bucket cannot be emptied on delete"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_days") and value < 1:
                raise ConfigError(f"context '{where}.{f.name}': expected a whole number >= 1, got {value!r}")
        self._check_dsstne(where)
        self._check_preprocessing(where)
        self._check_lambdas(where)
        self._check_fm(where)
        self._check_serving(where)
        self._check_pipeline(where)

    def _check_pipeline(self, where: str) -> None:
        if self.pipeline_schedule and not _SCHEDULE.match(self.pipeline_schedule):
            raise ConfigError(
                f"context '{where}.pipeline_schedule': expected \"\" or an EventBridge Scheduler expression "
                f"like 'rate(1 day)' or 'cron(0 3 * * ? *)', got {self.pipeline_schedule!r}"
            )
        if not 1 <= self.pipeline_timeout_minutes < MAX_PIPELINE_TIMEOUT_MINUTES:
            raise ConfigError(
                f"context '{where}.pipeline_timeout_minutes': expected 1 to "
                f"{MAX_PIPELINE_TIMEOUT_MINUTES - 1} "
                f"(below the run lock's 24 h lease), got {self.pipeline_timeout_minutes!r}"
            )
        if not 1 <= self.eval_k <= MAX_TOP_K:
            raise ConfigError(f"context '{where}.eval_k': expected 1 to {MAX_TOP_K}, got {self.eval_k!r}")
        name, _, k = self.gate_metric.partition("@")
        if name not in GATE_METRICS or k != str(self.eval_k):
            raise ConfigError(
                f"context '{where}.gate_metric': expected one of {GATE_METRICS} followed by '@{self.eval_k}' "
                f"(eval_k), got {self.gate_metric!r}"
            )
        for key in ("gate_margin", "gate_tolerance"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"context '{where}.{key}': expected 0.0 to 1.0, got {getattr(self, key)!r}")
        low, high = LAMBDA_MEMORY_MB
        if not low <= self.evaluate_memory_mb <= high:
            raise ConfigError(
                f"context '{where}.evaluate_memory_mb': expected {low} to {high} (MB), "
                f"got {self.evaluate_memory_mb!r}"
            )
        if not 1 <= self.evaluate_timeout_seconds <= MAX_LAMBDA_TIMEOUT_SECONDS:
            raise ConfigError(
                f"context '{where}.evaluate_timeout_seconds': expected 1 to {MAX_LAMBDA_TIMEOUT_SECONDS} "
                f"(Lambda's limit), got {self.evaluate_timeout_seconds!r}"
            )
        low, high = LAMBDA_EPHEMERAL_STORAGE_MB
        if not low <= self.evaluate_ephemeral_storage_mb <= high:
            raise ConfigError(
                f"context '{where}.evaluate_ephemeral_storage_mb': expected {low} to {high} (MB), "
                f"got {self.evaluate_ephemeral_storage_mb!r}"
            )
        vcpus, memory = self.fm_topk_vcpus, self.fm_topk_memory_mb
        if vcpus not in FARGATE_VCPUS:
            raise ConfigError(
                f"context '{where}.fm_topk_vcpus': expected one of {FARGATE_VCPUS}, got {vcpus!r}"
            )
        if memory % 1024 or not 2048 * vcpus <= memory <= 8192 * vcpus:
            raise ConfigError(
                f"context '{where}.fm_topk_memory_mb': expected whole GiB from {2048 * vcpus} to "
                f"{8192 * vcpus} "
                f"(Fargate: 2 to 8 GiB per vCPU), got {memory!r}"
            )
        if self.alarm_email and not _EMAIL.match(self.alarm_email):
            raise ConfigError(
                f"context '{where}.alarm_email': expected \"\" or an e-mail address, got {self.alarm_email!r}"
            )

    def _check_lambdas(self, where: str) -> None:
        low, high = LAMBDA_MEMORY_MB
        for key in ("ingest_memory_mb", "events_memory_mb"):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"context '{where}.{key}': expected {low} to {high} (MB), got {value!r}")
        for key in ("ingest_timeout_seconds", "events_timeout_seconds"):
            if not 1 <= getattr(self, key) <= MAX_LAMBDA_TIMEOUT_SECONDS:
                raise ConfigError(
                    f"context '{where}.{key}': expected 1 to {MAX_LAMBDA_TIMEOUT_SECONDS} (Lambda's limit), "
                    f"got {getattr(self, key)!r}"
                )
        if self.ingest_reserved_concurrency < MIN_SQS_MAX_CONCURRENCY:
            raise ConfigError(
                f"context '{where}.ingest_reserved_concurrency': expected a whole number >= "
                f"{MIN_SQS_MAX_CONCURRENCY} (the queue poller's least maximum concurrency), "
                f"got {self.ingest_reserved_concurrency!r}"
            )
        if self.events_reserved_concurrency < 1:
            raise ConfigError(
                f"context '{where}.events_reserved_concurrency': expected a whole number >= 1 (0 would "
                f"throttle every request), got {self.events_reserved_concurrency!r}"
            )
        if self.lambda_log_retention_days not in LOG_RETENTION_DAYS:
            raise ConfigError(
                f"context '{where}.lambda_log_retention_days': expected one of CloudWatch Logs' periods "
                f"{LOG_RETENTION_DAYS}, got {self.lambda_log_retention_days!r}"
            )

    def _check_serving(self, where: str) -> None:
        if self.serving_api not in SERVING_APIS:
            raise ConfigError(
                f"context '{where}.serving_api': expected one of {SERVING_APIS}, got {self.serving_api!r}"
            )
        low, high = LAMBDA_MEMORY_MB
        for key in ("recommend_memory_mb", "publish_memory_mb"):
            if not low <= getattr(self, key) <= high:
                raise ConfigError(
                    f"context '{where}.{key}': expected {low} to {high} (MB), got {getattr(self, key)!r}"
                )
        timeout_limit = MAX_LAMBDA_TIMEOUT_SECONDS
        if self.serving_api == "http-api":
            timeout_limit = MAX_HTTP_API_TIMEOUT_SECONDS
        for key, limit, why in (
            ("recommend_timeout_seconds", timeout_limit, f"the {self.serving_api} front end's limit"),
            ("publish_timeout_seconds", MAX_LAMBDA_TIMEOUT_SECONDS, "Lambda's limit"),
        ):
            if not 1 <= getattr(self, key) <= limit:
                raise ConfigError(
                    f"context '{where}.{key}': expected 1 to {limit} ({why}), got {getattr(self, key)!r}"
                )
        reserved = self.recommend_reserved_concurrency
        if reserved < 1:
            raise ConfigError(
                f"context '{where}.recommend_reserved_concurrency': expected a whole number >= 1 (0 would "
                f"throttle every request), got {reserved!r}"
            )
        if not 0 <= self.recommend_provisioned_concurrency <= reserved:
            raise ConfigError(
                f"context '{where}.recommend_provisioned_concurrency': expected 0 to {reserved} (at most the "
                f"reserved concurrency), got {self.recommend_provisioned_concurrency!r}"
            )
        for key in ("serving_throttle_rate_limit", "serving_throttle_burst_limit"):
            if getattr(self, key) < 1:
                raise ConfigError(
                    f"context '{where}.{key}': expected a whole number >= 1, got {getattr(self, key)!r}"
                )
        low, high = LAMBDA_EPHEMERAL_STORAGE_MB
        if not low <= self.publish_ephemeral_storage_mb <= high:
            raise ConfigError(
                f"context '{where}.publish_ephemeral_storage_mb': expected {low} to {high} (MB), "
                f"got {self.publish_ephemeral_storage_mb!r}"
            )

    def _check_fm(self, where: str) -> None:
        name = self.fm_instance_type
        if name.startswith("ml.ml."):
            raise ConfigError(
                f"context '{where}.fm_instance_type': {name!r} has a doubled 'ml.' prefix "
                "(write ml.c5.xlarge or c5.xlarge)"
            )
        match = _FM_INSTANCE_TYPE.match(name)
        if not match or _ACCELERATED_FAMILY.match(match["family"]):
            raise ConfigError(
                f"context '{where}.fm_instance_type': {name!r} is not a CPU instance type like ml.c5.xlarge "
                "(SageMaker's FM trains sparse data on CPU instances only)"
            )
        if self.fm_predictor_type not in FM_PREDICTOR_TYPES:
            raise ConfigError(
                f"context '{where}.fm_predictor_type': expected one of {FM_PREDICTOR_TYPES}, "
                f"got {self.fm_predictor_type!r}"
            )
        limits = {
            "fm_instance_count": 100,
            "fm_volume_size_gb": MAX_FM_VOLUME_GB,
            "fm_max_runtime_minutes": MAX_FM_RUNTIME_MINUTES,
            "fm_num_factors": 10000,
            "fm_epochs": 10000,
            "fm_mini_batch_size": 1000000,
        }
        for key, high in limits.items():
            value = getattr(self, key)
            if not 1 <= value <= high:
                raise ConfigError(f"context '{where}.{key}': expected 1 to {high}, got {value!r}")

    def _check_preprocessing(self, where: str) -> None:
        if self.preprocessing_worker_type not in GLUE_WORKER_TYPES:
            raise ConfigError(
                f"context '{where}.preprocessing_worker_type': expected one of {GLUE_WORKER_TYPES}, "
                f"got {self.preprocessing_worker_type!r}"
            )
        if self.preprocessing_worker_count < 2:
            raise ConfigError(
                f"context '{where}.preprocessing_worker_count': expected a whole number >= 2 (a driver and "
                f"an executor), got {self.preprocessing_worker_count!r}"
            )
        if not 1 <= self.preprocessing_timeout_minutes <= MAX_GLUE_TIMEOUT_MINUTES:
            raise ConfigError(
                f"context '{where}.preprocessing_timeout_minutes': expected 1 to {MAX_GLUE_TIMEOUT_MINUTES}, "
                f"got {self.preprocessing_timeout_minutes!r}"
            )

    def _check_dsstne(self, where: str) -> None:
        if not self.dsstne_instance_types:
            raise ConfigError(f"context '{where}.dsstne_instance_types': expected at least one instance type")
        for name in self.dsstne_instance_types:
            match = _GPU_INSTANCE_TYPE.match(name)
            if not match or set(match["attributes"]) & {"a", "g"}:
                raise ConfigError(
                    f"context '{where}.dsstne_instance_types': {name!r} is not an NVIDIA GPU type on x86_64 "
                    "(e.g. g4dn.xlarge, g5.xlarge, g6.xlarge, p4d.24xlarge), which the ECS GPU AMI needs"
                )
        gpus = self.dsstne_multi_gpu_count
        if not 2 <= gpus <= MAX_GPUS_PER_INSTANCE:
            raise ConfigError(
                f"context '{where}.dsstne_multi_gpu_count': expected 2 to {MAX_GPUS_PER_INSTANCE} "
                f"(GPUs of one instance), got {gpus!r}"
            )
        if self.dsstne_max_vcpus < VCPUS_PER_GPU * gpus:
            raise ConfigError(
                f"context '{where}.dsstne_max_vcpus': expected at least {VCPUS_PER_GPU * gpus} "
                f"({VCPUS_PER_GPU} per GPU of the {gpus}-GPU job definition), got {self.dsstne_max_vcpus!r}"
            )


def _checked_values(stage: str, raw: Mapping[Any, Any]) -> dict[str, Any]:
    """Reject unknown keys and wrong JSON types; `True` is not accepted where a number is expected."""
    defaults = {f.name: f.default for f in fields(StageConfig) if f.name != "name"}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in defaults:
            allowed = ", ".join(sorted(defaults))
            raise ConfigError(f"context 'stages.{stage}.{key}': unknown key (allowed: {allowed})")
        expected = type(defaults[key])
        if expected is tuple and type(value) is list and all(type(item) is str for item in value):
            value = tuple(value)  # a JSON list of strings; kept as a tuple so the config stays immutable
        if type(value) is not expected:
            raise ConfigError(
                f"context 'stages.{stage}.{key}': expected {_json_type(expected)}, "
                f"got {_json_type(type(value))} {value!r}"
            )
        values[cast(str, key)] = value
    return values


_JSON_TYPES: dict[type, str] = {
    bool: "true/false",
    int: "a whole number",
    float: "a decimal",
    str: "a string",
    tuple: "a list of strings",
    list: "a list",
    type(None): "null",
}


def _json_type(python_type: type) -> str:
    return _JSON_TYPES.get(python_type, python_type.__name__)
