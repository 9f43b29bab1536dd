"""`recsys synth`: argument checks (exit 2 with a message) and the files it writes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from recsys import synth as synth_lib
from recsys.cli import synth


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="recsys")
    synth.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synth", *argv])
    code: int = args.handler(args)
    return code


def test_writes_canonical_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "dir"
    argv = ["--users", "40", "--items", "30", "--interactions", "1_000", "--seed", "5", "--out", str(out)]
    assert _run([*argv, "--no-progress"]) == 0
    lines = (out / "transactions.csv").read_text().splitlines()
    assert lines[0] == "user_id,item_id,timestamp,rating"
    assert len(lines) == 1 + 1_000
    assert (out / "catalog.csv").read_text().startswith("item_id,title,categories\n")
    assert "wrote 1,000 interactions of 40 users on 30 items" in capsys.readouterr().out


def test_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--users", "5", "--items", "5", "--interactions", "20", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "transactions" in captured.err
    assert "transactions:" not in captured.out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--users", "10", "--items", "10", "--interactions", "101"], "at most 100"),
        (["--users", "10", "--items", "10", "--interactions", "5"], "at least as many interactions as users"),
    ],
)
def test_impossible_requests_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert _run([*argv, "--out", str(tmp_path / "out")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--users", "0", "--out", "x"],
        ["--items", "-3", "--out", "x"],
        ["--interactions", "lots", "--out", "x"],
        ["--seed", "-1", "--out", "x"],
        ["--users", "10"],  # --out is required
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _run(argv)
    assert caught.value.code == 2
    assert "error" in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("")
    assert _run(["--users", "2", "--items", "2", "--interactions", "2", "--out", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_defaults_match_the_library() -> None:
    assert (synth.ML20M_USERS, synth.ML20M_ITEMS, synth.ML20M_INTERACTIONS) == (
        synth_lib.ML20M_USERS,
        synth_lib.ML20M_ITEMS,
        synth_lib.ML20M_INTERACTIONS,
    )


def test_registering_does_not_import_numpy() -> None:
    code = (
        "import sys, argparse; from recsys.cli import synth; "
        "synth.register(argparse.ArgumentParser().add_subparsers()); "
        "sys.exit('numpy' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
