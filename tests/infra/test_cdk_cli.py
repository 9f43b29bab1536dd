"""`npx cdk synth` through the pinned CLI works offline, without AWS credentials (one invocation).

This is the path users and `make synth` take: cdk.json's app command, context from cdk.json, cdk-nag on.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stacks.app_factory import DEFAULT_STAGE, stack_id

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.skipif(not CDK.exists(), reason="the pinned CDK CLI is not installed (npm ci)")
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="cdk.json runs .venv/bin/python")
def test_cdk_synth_works_offline_without_credentials(tmp_path: Path) -> None:
    # GIVEN an environment with no AWS credentials or config, and no instance metadata to fall back on
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    outdir = tmp_path / "cdk.out"

    # WHEN the CLI synthesizes the default stage
    result = subprocess.run(
        [str(CDK), "synth", "--no-notices", "-q", "-o", str(outdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # THEN it succeeds and writes the stage's template
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout}\n{result.stderr}"
    assert (outdir / f"{stack_id(DEFAULT_STAGE)}.template.json").is_file()
