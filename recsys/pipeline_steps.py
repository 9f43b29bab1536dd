"""The state machine's own steps (lambdas/pipeline): evaluate the candidates and gate them, finish a run.

The metric and gate functions are passed in (`recsys.model_eval`, `recsys.gate` in the Lambda, fakes in
tests), so this module depends on their signatures only:

    evaluate_outputs(model_dir, run_dir, k) -> {metric: value}
    evaluate_popularity(run_dir, k) -> {metric: value}
    decide(candidates, popularity, live, *, metric, margin, tolerance, failed)
        -> GateDecision(winner, reason, rejected)

Evaluation works on local folders: the run's held-out split and maps, and each model's lists, are copied
from S3 into a scratch folder first (the Lambda's /tmp bounds their size, see docs/infrastructure.md). A
candidate that failed upstream (its branch caught an error) or whose evaluation fails is left out with its
reason; the gate then sees only what could be measured. The live model is measured again on this run's
held-out split, so the gate compares like with like.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recsys import contracts

logger = logging.getLogger(__name__)

Metrics = dict[str, float]
DEFAULT_K = 10
DEFAULT_METRIC = "precision@10"
DEFAULT_MARGIN = 0.10
DEFAULT_TOLERANCE = 0.02
RUN_SKIPPED_DIRS = ("fm/", "dsstne/")
"""Training inputs of a run (recordIO shards, DSSTNE text): large, and no metric reads them."""
MODEL_SKIPPED_DIRS = (contracts.MODEL_SIMILAR_DIR,)
MODEL_SKIPPED_FILES = (contracts.MODEL_ITEM_VECTORS_FILE,)
LIVE = "live"
POPULARITY = "popularity"


class StepError(ValueError):
    """A step event or setting that cannot be used; the message names the field."""


class NoModelError(RuntimeError):
    """No candidate of the run could be evaluated (every branch failed or left an unreadable folder): the
    run fails, so its alarm fires, and the live model stays."""


class Decision(Protocol):
    winner: str | None
    reason: str


EvaluateOutputs = Callable[..., Mapping[str, float]]
EvaluatePopularity = Callable[..., Mapping[str, float]]
Decide = Callable[..., Decision]
Fetch = Callable[[str, Path, Sequence[str], Sequence[str]], Path]
"""fetch(s3 folder uri, local target, skipped sub-folders, skipped file names) -> the local folder."""


@dataclass(frozen=True)
class GateSettings:
    """How models are compared: list length k, the metric, the margin over popularity, the tolerance."""

    k: int = DEFAULT_K
    metric: str = DEFAULT_METRIC
    margin: float = DEFAULT_MARGIN
    tolerance: float = DEFAULT_TOLERANCE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GateSettings:
        try:
            k = int(env.get(contracts.EVAL_K_ENV, DEFAULT_K))
            margin = float(env.get(contracts.GATE_MARGIN_ENV, DEFAULT_MARGIN))
            tolerance = float(env.get(contracts.GATE_TOLERANCE_ENV, DEFAULT_TOLERANCE))
        except ValueError as exc:
            raise StepError(f"gate settings in the environment: {exc}") from None
        settings = cls(k, env.get(contracts.GATE_METRIC_ENV, DEFAULT_METRIC), margin, tolerance)
        if not 1 <= settings.k <= contracts.MAX_TOP_K:
            raise StepError(f"{contracts.EVAL_K_ENV}: expected 1 to {contracts.MAX_TOP_K}, got {settings.k}")
        if settings.margin < 0 or settings.tolerance < 0:
            raise StepError(f"{contracts.GATE_MARGIN_ENV} and {contracts.GATE_TOLERANCE_ENV} must be >= 0")
        return settings


@dataclass(frozen=True)
class Candidate:
    """One model of the run: where its publish-format folder is, or why there is none."""

    name: str
    model_uri: str | None
    version: str | None
    error: str | None = None


def parse_candidates(value: Any) -> list[Candidate]:
    """The Parallel state's output: one object per branch, {name, model_uri, version} or {name, error}."""
    if not isinstance(value, list) or not value:
        raise StepError(f"candidates: expected a non-empty list of branch results, got {value!r}")
    found = []
    for n, raw in enumerate(value):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise StepError(f"candidates[{n}]: expected an object with a string 'name', got {raw!r}")
        error = raw.get("error")
        uri, version = raw.get("model_uri"), raw.get("version")
        if error is None and not (
            isinstance(uri, str) and uri.startswith("s3://") and isinstance(version, str)
        ):
            raise StepError(
                f"candidates[{n}] ({raw['name']}): expected model_uri s3://… and version, or error"
            )
        found.append(
            Candidate(
                raw["name"],
                uri if error is None else None,
                version if error is None else None,
                None if error is None else _error_text(error),
            )
        )
    return found


def _error_text(error: Any) -> str:
    """A Catch's {Error, Cause} as one line."""
    if isinstance(error, Mapping):
        return f"{error.get('Error', 'error')}: {str(error.get('Cause', ''))[:500]}"
    return str(error)[:500]


def evaluate_and_gate(
    run_uri: str,
    candidates: Sequence[Candidate],
    live_uri: str | None,
    scratch: Path,
    settings: GateSettings,
    *,
    fetch: Fetch,
    evaluate_outputs: EvaluateOutputs,
    evaluate_popularity: EvaluatePopularity,
    decide: Decide,
) -> dict[str, Any]:
    """Measure every usable candidate, popularity and the live model on the run's held-out split; gate.

    Returns plain JSON for the state: metrics per model, what was left out and why, and the decision
    (`publish`, and the winner's `model_uri` and `version` when it is true). Raises NoModelError when no
    candidate could be measured: that run failed, it is not a gate decision."""
    run_dir = fetch(run_uri, scratch / "run", RUN_SKIPPED_DIRS, ())
    k = settings.k
    measured: dict[str, Metrics] = {}
    skipped: dict[str, str] = {}
    for candidate in candidates:
        if candidate.error is not None or candidate.model_uri is None:
            skipped[candidate.name] = candidate.error or "no model folder"
            continue
        try:
            folder = fetch(
                candidate.model_uri, scratch / candidate.name, MODEL_SKIPPED_DIRS, MODEL_SKIPPED_FILES
            )
            measured[candidate.name] = _floats(evaluate_outputs(folder, run_dir, k=k))
        except Exception as exc:  # a corrupt or missing model folder is not published; the others may be
            logger.warning("evaluation of %s failed", candidate.name, exc_info=True)
            skipped[candidate.name] = f"{type(exc).__name__}: {exc}"[:500]
    popularity = _floats(evaluate_popularity(run_dir, k))
    live: Metrics | None = None
    if live_uri is not None:
        try:
            folder = fetch(live_uri, scratch / LIVE, MODEL_SKIPPED_DIRS, MODEL_SKIPPED_FILES)
            live = _floats(evaluate_outputs(folder, run_dir, k=k))
        except Exception as exc:  # the gate then compares with popularity only, and says so
            logger.warning("evaluation of the live model %s failed", live_uri, exc_info=True)
            skipped[LIVE] = f"{type(exc).__name__}: {exc}"[:500]
    result: dict[str, Any] = {
        "k": k,
        "metric": settings.metric,
        "models": measured,
        POPULARITY: popularity,
        LIVE: live,
        "live_uri": live_uri,
        "skipped": skipped,
        "publish": False,
        "winner": None,
    }
    if not measured:
        reasons = "; ".join(f"{name}: {why}" for name, why in sorted(skipped.items()) if name != LIVE)
        raise NoModelError(f"no candidate model could be evaluated ({reasons})")
    decision = decide(
        measured,
        popularity,
        live,
        metric=settings.metric,
        margin=settings.margin,
        tolerance=settings.tolerance,
        failed={name: why for name, why in skipped.items() if name != LIVE},
    )
    result["reason"] = decision.reason
    result["rejected"] = dict(getattr(decision, "rejected", {}) or {})
    by_name = {c.name: c for c in candidates}
    if decision.winner in measured:
        winner = by_name[decision.winner]
        result.update(publish=True, winner=winner.name, model_uri=winner.model_uri, version=winner.version)
    return result


def _floats(metrics: Mapping[str, Any]) -> Metrics:
    """Finite numbers only (JSON for the state has no NaN); the gate rejects a model missing its metric."""
    return {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def metric_records(evaluation: Mapping[str, Any], run_id: str) -> list[tuple[str, str, float]]:
    """(model, metric, value) for every measured number: what the Lambda emits as CloudWatch metrics."""
    rows: list[tuple[str, str, float]] = []
    models: Mapping[str, Mapping[str, float]] = evaluation.get("models") or {}
    for model, values in sorted(models.items()):
        rows += [(model, metric, value) for metric, value in sorted(values.items())]
    for model in (POPULARITY, LIVE):
        values = evaluation.get(model) or {}
        rows += [(model, metric, value) for metric, value in sorted(values.items())]
    logger.debug("run %s: %d model metrics", run_id, len(rows))
    return rows


def download_folder(
    s3: Any, uri: str, target: Path, skip_dirs: Sequence[str], skip_files: Sequence[str]
) -> Path:
    """Copy the objects under an s3:// folder to `target`, keeping their relative paths.

    Keys ending in '/' (folder markers) and keys under `skip_dirs` or named in `skip_files` are left out;
    a key that would land outside `target` (`..`) is refused. An empty folder is an error: a model or run
    that is not there must not look like an empty one."""
    if not uri.startswith("s3://"):
        raise StepError(f"{uri!r}: expected an s3://bucket/prefix/ folder")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    root = target.resolve()
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = str(item["Key"])[len(prefix) :]
            if not relative or relative.endswith("/"):
                continue
            if any(relative.startswith(d) for d in skip_dirs) or relative.rsplit("/", 1)[-1] in skip_files:
                continue
            destination = (root / relative).resolve()
            if root not in destination.parents:
                raise StepError(f"s3://{bucket}/{item['Key']}: key leaves the folder")
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], os.fspath(destination))
            count += 1
    if count == 0:
        raise StepError(f"{uri}: no objects (the folder is missing or empty)")
    return root


def live_model_uri(dynamodb: Any, table_name: str) -> str | None:
    """The folder the live version was published from (its version record's source); None before any."""
    from recsys.publish.pointer import read_live, read_version

    live = read_live(dynamodb, table_name)
    if live is None:
        return None
    record = read_version(dynamodb, table_name, live.version)
    if record is None or not record.source.startswith("s3://"):
        logger.warning("live version %s has no s3:// source to evaluate", live.version)
        return None
    return record.source


def finish_event(event: Any) -> tuple[str, bool]:
    """(run_id, succeeded) of the finish step's event {"run_id": str, "succeeded": bool}."""
    if not isinstance(event, Mapping):
        raise StepError(f"expected a JSON object, got {type(event).__name__}")
    run_id, succeeded = event.get("run_id"), event.get("succeeded")
    if not isinstance(run_id, str) or not run_id:
        raise StepError(f"run_id: expected a non-empty string, got {run_id!r}")
    if not isinstance(succeeded, bool):
        raise StepError(f"succeeded: expected true or false, got {succeeded!r}")
    return run_id, succeeded
