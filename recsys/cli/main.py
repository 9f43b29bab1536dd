"""The `recsys` command line: one sub-command per module in this package.

Each command module exposes `register(subparsers)`, which adds its parser and sets `handler` to a
function `(args) -> int` (the exit code). Heavy imports happen inside the handlers, so `recsys --help`
stays instant.

Runtime packages add their own commands (`recsys dsstne …` from `training/dsstne`) through the entry
point group `recsys.commands` in pyproject.toml, so this core never imports them (DESIGN.md §3).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from recsys import __version__
from recsys.cli import evaluate, openapi, pipeline, publish, synth, validate

COMMANDS = (validate, evaluate, synth, publish, openapi, pipeline)
PLUGIN_GROUP = "recsys.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys",
        description="Recommender pipeline tools: validate CSVs, evaluate models, make synthetic data, "
        "publish and roll back models, request pipeline runs.",
    )
    parser.add_argument("--version", action="version", version=f"recsys {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            plugin.load()(subparsers)
        except ImportError as exc:  # a missing optional extra must not take the core commands down
            print(f"recsys: warning: command {plugin.name!r} unavailable: {exc}", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `recsys ... | head` is not an error
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
