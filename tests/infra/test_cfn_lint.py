"""cfn-lint on every synthesized template, one per stage in cdk.json: errors fail, warnings do not.

CDK output routinely draws warnings such as W3005 (a DependsOn already implied by a GetAtt), which are
harmless, so only error-severity matches count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from stacks.app_factory import cdk_json_context, stack_id
from stacks.config import StageConfig
from stacks.pipeline_stack import RecsysPipelineStack

REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """All stages' stacks in one app, so one synth covers every template."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = {**cdk_json_context(), "aws:cdk:bundling-stacks": []}
    app = App(context=context, outdir=str(outdir))
    stages = context["stages"]
    for stage in stages:
        RecsysPipelineStack(app, stack_id(stage), config=StageConfig.from_context(stage, stages))
    app.synth()
    return {stage: outdir / f"{stack_id(stage)}.template.json" for stage in stages}


def test_every_stage_was_synthesized(templates: dict[str, Path]) -> None:
    assert set(templates) == set(cdk_json_context()["stages"])
    assert all(path.is_file() for path in templates.values())


@pytest.mark.parametrize("stage", sorted(cdk_json_context()["stages"]))
def test_template_has_no_cfn_lint_errors(templates: dict[str, Path], stage: str) -> None:
    matches = lint(templates[stage].read_text(encoding="utf-8"), config=ManualArgs(regions=REGIONS))
    errors = [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches if m.rule.severity == "error"]
    assert not errors, f"cfn-lint errors in {templates[stage].name}:\n" + "\n".join(errors)
