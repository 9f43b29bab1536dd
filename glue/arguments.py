"""The Glue job's arguments (`--NAME value`, names in `recsys.contracts`) parsed into typed settings.

Kept apart from `glue.job` so the parsing is plain Python: `job.py` only adds the `awsglue` calls.
`getResolvedOptions` fails on any name it is asked for that is absent, so optional names are asked for
only when they appear on the command line (`present_options`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from glue.pipeline import PREVIOUS_AUTO
from glue.settings import PreprocessSettings, SettingsError, check_run_id
from recsys import contracts

JOB_NAME = "JOB_NAME"  # set by Glue itself
REQUIRED = (JOB_NAME, contracts.GLUE_ARG_INPUT_URI, contracts.GLUE_ARG_OUTPUT_URI, contracts.GLUE_ARG_RUN_ID)
OPTIONAL = (
    contracts.GLUE_ARG_PREVIOUS_RUN,
    contracts.GLUE_ARG_TEST_RATIO,
    contracts.GLUE_ARG_POSITIVE_THRESHOLD,
    contracts.GLUE_ARG_NEGATIVES,
    contracts.GLUE_ARG_SEED,
    contracts.GLUE_ARG_CATEGORY_FEATURES,
)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True)
class JobArguments:
    job_name: str
    input_uri: str
    output_uri: str
    run_id: str
    previous: str
    settings: PreprocessSettings


def present_options(argv: Sequence[str]) -> list[str]:
    """The optional argument names given in `argv` (as `--NAME value` or `--NAME=value`)."""
    given = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
    return [name for name in OPTIONAL if name in given]


def _number(resolved: Mapping[str, str], name: str, kind: type[float] | type[int]) -> float | int | None:
    if name not in resolved:
        return None
    try:
        return kind(resolved[name])
    except ValueError:
        raise SettingsError(
            f"--{name}: expected {'an integer' if kind is int else 'a number'}, got {resolved[name]!r}"
        ) from None


def _flag(resolved: Mapping[str, str], name: str) -> bool | None:
    if name not in resolved:
        return None
    value = resolved[name].strip().lower()
    if value not in _TRUE + _FALSE:
        raise SettingsError(f"--{name}: expected true or false, got {resolved[name]!r}")
    return value in _TRUE


def parse_job_arguments(resolved: Mapping[str, str]) -> JobArguments:
    """Typed job arguments; raises SettingsError naming the bad argument."""
    overrides: dict[str, object] = {}
    for name, key, kind in (
        (contracts.GLUE_ARG_TEST_RATIO, "test_ratio", float),
        (contracts.GLUE_ARG_POSITIVE_THRESHOLD, "positive_threshold", float),
        (contracts.GLUE_ARG_NEGATIVES, "negatives_per_positive", int),
        (contracts.GLUE_ARG_SEED, "seed", int),
    ):
        value = _number(resolved, name, kind)
        if value is not None:
            overrides[key] = value
    categories = _flag(resolved, contracts.GLUE_ARG_CATEGORY_FEATURES)
    if categories is not None:
        overrides["categories"] = categories
    for name in (contracts.GLUE_ARG_INPUT_URI, contracts.GLUE_ARG_OUTPUT_URI):
        if not resolved[name].strip():
            raise SettingsError(f"--{name} is empty")
    return JobArguments(
        job_name=resolved[JOB_NAME],
        input_uri=resolved[contracts.GLUE_ARG_INPUT_URI].strip(),
        output_uri=resolved[contracts.GLUE_ARG_OUTPUT_URI].strip(),
        run_id=check_run_id(resolved[contracts.GLUE_ARG_RUN_ID]),
        previous=resolved.get(contracts.GLUE_ARG_PREVIOUS_RUN, PREVIOUS_AUTO).strip() or PREVIOUS_AUTO,
        settings=PreprocessSettings(**overrides),  # type: ignore[arg-type]
    )
