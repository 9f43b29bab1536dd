"""Builds the CDK app: stage config from context, one stack, cdk-nag on every synth.

Shared by `app.py` and the tests, so what the tests synthesize is what `cdk synth` synthesizes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import StageConfig
from stacks.pipeline_stack import RecsysPipelineStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
DEFAULT_STAGE = "dev"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` block of cdk.json (feature flags and stages).

    The CLI passes it to the app itself; reading it here as a fallback makes `python app.py` and the
    tests see the same flags and stages as `cdk synth`.
    """
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["context"]
    return context


def stack_id(stage: str) -> str:
    return f"RecsysPipeline-{stage}"


def stage_config(app: App) -> StageConfig:
    """The typed config of the stage chosen with `-c stage=<name>` (default "dev")."""
    stage = app.node.try_get_context("stage") or DEFAULT_STAGE
    return StageConfig.from_context(stage, app.node.try_get_context("stages"))


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None, *, nag: bool = True
) -> App:
    """An app holding the one stack of the chosen stage; with `nag`, an unacknowledged finding fails synth.

    `context` overrides cdk.json's context; context from the CLI (`-c`) overrides both.
    """
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = stage_config(app)
    RecsysPipelineStack(app, stack_id(config.name), config=config)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
