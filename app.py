#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` / `npx cdk deploy -c stage=prod` (stage defaults to "dev")."""

import sys

from stacks.app_factory import build_app
from stacks.config import ConfigError

try:
    app = build_app()
except ConfigError as error:
    sys.exit(f"error: {error}")  # a cdk.json mistake deserves one line, not a traceback
app.synth()
