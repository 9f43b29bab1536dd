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
