"""Runtime packages add `recsys` sub-commands through entry points; a broken one only warns."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from recsys.cli import main as cli


class FakeEntryPoint:
    def __init__(self, name: str, register: Any) -> None:
        self.name = name
        self._register = register

    def load(self) -> Any:
        if isinstance(self._register, Exception):
            raise self._register
        return self._register


def register_hello(subparsers: Any) -> None:
    parser = subparsers.add_parser("hello")
    parser.set_defaults(handler=lambda args: 7)


def test_a_plugin_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [FakeEntryPoint("hello", register_hello)])
    assert cli.main(["hello"]) == 7


def test_a_broken_plugin_warns_and_the_core_commands_still_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = FakeEntryPoint("dsstne", ImportError("No module named 'torch'"))
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    parser = cli.build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    assert "command 'dsstne' unavailable: No module named 'torch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--version"])
