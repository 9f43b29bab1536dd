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


def _checked_values(stage: str, raw: Mapping[Any, Any]) -> dict[str, Any]:
    """Reject unknown keys and wrong JSON types; `True` is not accepted where a number is expected."""
    defaults = {f.name: f.default for f in fields(StageConfig) if f.name != "name"}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in defaults:
            allowed = ", ".join(sorted(defaults))
            raise ConfigError(f"context 'stages.{stage}.{key}': unknown key (allowed: {allowed})")
        expected = type(defaults[key])
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
    type(None): "null",
}


def _json_type(python_type: type) -> str:
    return _JSON_TYPES.get(python_type, python_type.__name__)
