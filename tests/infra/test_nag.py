"""cdk-nag (AwsSolutions) on the whole app, as `cdk synth` runs it, plus a pin of how acknowledgements work.

cdk-nag 3 is a policy-validation plugin: an unacknowledged error makes `app.synth()` raise, and the
details are in `validation-report.json` in the output directory, which is what the failure lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_s3 as s3

from stacks.app_factory import build_app, stack_id

STAGES = ("dev", "prod")


def synth_findings(app: App, outdir: Path) -> list[str]:
    """Synthesize; return the unacknowledged findings as "rule at construct path" (empty if none)."""
    try:
        app.synth()
    except RuntimeError:
        report = outdir / "validation-report.json"
        if not report.exists():
            raise
        findings = [
            f"{violation['ruleName']} at {construct['constructPath']}"
            for plugin in json.loads(report.read_text(encoding="utf-8"))["pluginReports"]
            for violation in plugin["violations"]
            for construct in violation["violatingConstructs"]
        ]
        if not findings:
            raise  # failed for another reason than a finding
        return sorted(findings)
    return []


def nag_app(stage: str, outdir: Path) -> App:
    return build_app(context={"stage": stage, "aws:cdk:bundling-stacks": []}, outdir=str(outdir), nag=True)


@pytest.mark.parametrize("stage", STAGES)
def test_app_has_no_unacknowledged_findings(stage: str, tmp_path: Path) -> None:
    # GIVEN the app exactly as app.py builds it WHEN synthesized with AwsSolutionsChecks THEN nothing fails
    findings = synth_findings(nag_app(stage, tmp_path), tmp_path)
    advice = "fix them, or acknowledge each next to its construct with a reason"
    assert not findings, f"cdk-nag findings ({advice}):\n" + "\n".join(findings)


def test_app_fails_on_an_unacknowledged_finding_and_honours_an_acknowledgement(tmp_path: Path) -> None:
    # GIVEN the app with two buckets that break AwsSolutions-S1 (no server access logs), one acknowledged
    # by its bare rule id, as the constructs in stacks/ do
    app = nag_app("dev", tmp_path)
    stack = app.node.find_child(stack_id("dev"))
    assert isinstance(stack, Stack)
    baseline = {"enforce_ssl": True, "block_public_access": s3.BlockPublicAccess.BLOCK_ALL}
    s3.Bucket(stack, "Unlogged", **baseline)
    acknowledged = s3.Bucket(stack, "UnloggedAcknowledged", **baseline)
    Validations.of(acknowledged).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason="test of the pin"))

    # WHEN synthesized THEN synth fails, and only on the unacknowledged bucket
    assert synth_findings(app, tmp_path) == [f"AwsSolutions-S1 at {stack_id('dev')}/Unlogged/Resource"]
